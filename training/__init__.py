"""medsynth training: head phantom, CycleGAN networks, training, ONNX export (run with /usr/bin/python3)."""
