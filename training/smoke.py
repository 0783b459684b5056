"""CI smoke test: phantom -> 2 CycleGAN steps on 64x64 crops -> resume -> export both generators to ONNX
(checked with onnx.checker and against PyTorch in ONNX Runtime) -> manifests -> strict reload of the
CycleGAN-format checkpoints. Exits non-zero on any failure. Needs node + onnxruntime-node (the service's).

Usage: /usr/bin/python3 -m training.smoke"""
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

from .data import build_training_set
from .export import export_model
from .networks import load_cyclegan_generator
from .train import TrainConfig, train

SIZE = 64


def main() -> int:
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        data = build_training_set(subjects=2, slices=2, cache_dir=os.path.join(tmp, 'cache'))
        assert data.shape == (4, 2, 256, 256) and np.isfinite(data.astype(np.float32)).all()
        assert data.min() >= -1 and data.max() <= 1, 'training data must be normalised to [-1, 1]'
        cfg = TrainConfig(run_dir=os.path.join(tmp, 'run'), steps=1, crop=SIZE, lambda_supervised=10.0,
                          lambda_identity=0.5, checkpoint_every=1, ngf=16, n_blocks=2, ndf=16)
        train(cfg, data=data)
        cfg.steps = 2
        model, summary = train(cfg, resume=True, data=data)  # step 2 continues from the step-1 checkpoint
        assert summary['steps'] == 2, summary
        losses = [json.loads(line) for line in open(os.path.join(cfg.run_dir, 'losses.jsonl'))]
        assert all(np.isfinite(v) for row in losses for v in row.values()), 'non-finite loss'
        for direction, attr in (('mr2ct', 'G_A'), ('ct2mr', 'G_B')):
            out = os.path.join(tmp, direction)
            doc = export_model(getattr(model, attr), out, name=f'smoke-{direction}', direction=direction,
                               size=SIZE, default=False, description='CI smoke test', provenance={'steps': 2})
            assert doc['input']['channels'] == 1 and os.path.getsize(os.path.join(out, 'model.onnx')) > 0
            reloaded = load_cyclegan_generator(os.path.join(cfg.run_dir, f'latest_net_{attr}.pth'))
            x = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
            with torch.no_grad():
                assert torch.equal(reloaded.eval()(x), getattr(model, attr).eval()(x)), 'checkpoint reload differs'
            print(f'{direction}: exported, ONNX Runtime vs PyTorch max diff '
                  f"{doc['provenance']['export']['onnxruntime_vs_torch_max_abs_diff']:.2e}")
    print(f'training smoke test passed in {time.monotonic() - began:.1f} s')
    return 0


if __name__ == '__main__':
    torch.set_num_threads(2)
    sys.exit(main())
