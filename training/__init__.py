"""medsynth training: real heads' label maps, domain-randomised synthesis, CycleGAN networks, training, ONNX export,
real-scan report (run with .venv/bin/python; see training/requirements.txt)."""
