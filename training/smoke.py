"""CI smoke test: derived heads -> synthesised pairs (checked) -> 2 training steps at 64x64 with every loss term
(paired, brain and bone windows, SSIM, checkerboard spectrum, CSF, CycleGAN) and a phantom share -> resume -> ONNX export of both generators (checked
with onnx.checker and against PyTorch in ONNX Runtime) -> manifests -> strict reload of the checkpoints -> one
step on a .npy of your own pairs.
Exits non-zero on any failure. Needs node + onnxruntime-node (the service's).

Usage: .venv/bin/python -m training.smoke"""
import dataclasses
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

from .data import build_training_set
from .export import as_shipped, export_model
from .networks import ResnetGenerator, load_cyclegan_generator
from .synth import PairSynthesizer, SliceBank, SynthConfig
from .train import BatchSource, TrainConfig, quantile_l1, spectral_loss, train

SIZE = 64


def check_batch(batch: dict) -> None:
    for key in ('mr_in', 'ct_target', 'ct_in', 'mr_target'):
        value = batch[key]
        assert value.shape == (4, 1, SIZE, SIZE), (key, value.shape)
        assert torch.isfinite(value).all() and value.min() >= -1 and value.max() <= 1, f'{key} leaves [-1, 1]'
        assert value.std() > 0.05, f'{key} is flat'
    hu = batch['ct_target_hu']
    assert hu.min() >= -1024 and hu.max() > 300, 'synthetic CT has no bone'


def check_spectral_term() -> None:
    """The checkerboard term sees a period-2 and a period-4 texture of 1 % and not a smooth bump of 10 %."""
    gen = torch.Generator().manual_seed(0)
    image = torch.nn.functional.interpolate(torch.rand(1, 1, 8, 8, generator=gen), size=(SIZE, SIZE), mode='bilinear')
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing='ij')
    bump = 0.1 * torch.exp(-((xx - SIZE / 2) ** 2 + (yy - SIZE / 2) ** 2) / (2 * (SIZE / 8) ** 2))
    for period in (2, 4):
        texture = 0.01 * torch.where(((yy // (period // 2)) + (xx // (period // 2))) % 2 == 0, 1.0, -1.0)
        assert spectral_loss(image + texture, image) > 100 * spectral_loss(image + bump, image), period
    assert spectral_loss(image, image) == 0
    # The generator's output filter removes a Nyquist checkerboard and leaves a constant image as it is.
    net = ResnetGenerator(1, 1, 4, 1, smooth_output=1)
    net.model = torch.nn.Identity()
    checker = torch.where((yy + xx) % 2 == 0, 1.0, -1.0)[None, None]
    assert net(checker)[..., 1:-1, 1:-1].abs().max() < 1e-6 and torch.allclose(net(image), image, atol=0.1)
    assert torch.allclose(net(torch.full_like(image, 0.3)), torch.full_like(image, 0.3), rtol=0, atol=1e-7)


def check_body_mask() -> None:
    """The CT->MR generator as shipped: a thin head-holder arc outside the head and a 6-pixel table cut by the
    image's edge become the output's own background (its mean over the CT's air); the head, a thin part
    joined to it and the air stay what the generator drew."""
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing='ij')
    radius = ((yy - SIZE / 2) ** 2 + (xx - SIZE / 2) ** 2).sqrt()
    head, arc = radius < SIZE / 4, (radius - (SIZE / 4 + 14)).abs() < 1.5
    arc |= yy >= SIZE - 6  # the table
    joined = (xx >= SIZE / 2 + SIZE / 4 - 1) & (xx < SIZE / 2 + SIZE / 4 + 4) & ((yy - SIZE / 2).abs() <= 1)
    hu = torch.where(head | joined, 30.0, torch.where(arc, 200.0, -1000.0))
    x = ((hu + 1024) / 4095 * 2 - 1)[None, None]
    net = as_shipped(ResnetGenerator(1, 1, 4, 1), 'ct2mr')
    net.model = torch.nn.Identity()  # the "generator" draws its input: the holder too
    net.smooth_output(0)
    y = net(x)[0, 0]
    air = x[0, 0, 0, 0]
    assert (y[arc] - air).abs().max() < 1e-6, 'holder drawn'
    assert torch.equal(y[radius < SIZE / 4 - 1], x[0, 0][radius < SIZE / 4 - 1]), 'head changed'
    assert torch.equal(y[joined], x[0, 0][joined]), 'a thin part joined to the head went'
    assert (y[radius > SIZE / 4 + 12] - air).abs().max() < 1e-6, 'air changed'


def check_csf_mask(source: BatchSource) -> None:
    """The CSF term's mask marks pixels darker than the head in the T1 target, and nothing on the phantom's rows
    (paired rows: the same image is input and target)."""
    seen = phantom_rows = 0
    for number in range(6):
        batch = source.batch(number)
        for csf, mr_in, target in zip(batch['csf'] > 0, batch['mr_in'], batch['mr_target']):
            if torch.equal(mr_in, target):
                assert not csf.any(), 'CSF marked on a phantom row'
                phantom_rows += 1
            elif csf.any():
                assert target[csf].mean() < target[target > -0.9].mean(), 'CSF brighter than the head'
                seen += 1
    assert seen and phantom_rows, f'{seen} slices with CSF, {phantom_rows} phantom rows in {6 * source.cfg.batch}'


def check_quantile_term() -> None:
    """The bone term's pinball loss is the L1 at 0.5, and above it the constant that minimises it over a sample
    is the sample's quantile (here 0.65 of 0..99: 64.35), not its median."""
    a, b = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(quantile_l1(a, b, 0.5), torch.nn.functional.l1_loss(a, b))
    sample = torch.arange(100.0)
    candidates = torch.arange(0.0, 99.0, 0.05)
    best = min(candidates, key=lambda c: quantile_l1(torch.full_like(sample, float(c)), sample, 0.65).item())
    assert 64.0 <= best <= 65.0, best


def main() -> int:
    began = time.monotonic()
    bank = SliceBank()
    assert len(bank) > 100 and len(bank.names) >= 3, f'{len(bank)} slices of {bank.names}'
    check_batch(PairSynthesizer(bank, SynthConfig(size=SIZE), seed=1).batch(4))
    check_spectral_term()
    check_quantile_term()
    check_body_mask()
    with tempfile.TemporaryDirectory() as tmp:
        phantom = build_training_set(subjects=2, slices=2, cache_dir=os.path.join(tmp, 'cache'))
        cfg = TrainConfig(run_dir=os.path.join(tmp, 'run'), steps=1, size=SIZE, batch=2, lambda_gan=1.0,
                          lambda_identity=0.5, lambda_bone=4.0, bone_quantile=0.65, lambda_spectral=10.0, lambda_csf=2.0,
                          smooth_output=1, phantom_share=0.5, checkpoint_every=1, ngf=16, n_blocks=2, ndf=16,
                          ct_brain_channel=True)
        source = lambda: BatchSource(cfg, bank=bank, phantom=phantom)
        check_csf_mask(BatchSource(dataclasses.replace(cfg, batch=4), bank=bank, phantom=phantom))
        train(cfg, source=source())
        cfg.steps = 2
        model, summary = train(cfg, resume=True, source=source())  # step 2 continues from the step-1 checkpoint
        assert summary['steps'] == 2, summary
        losses = [json.loads(line) for line in open(os.path.join(cfg.run_dir, 'losses.jsonl'))]
        assert {'l1_ct', 'brain', 'bone', 'ssim_ct', 'spec_ct', 'l1_mr', 'ssim_mr', 'spec_mr', 'csf_mr', 'cyc', 'D_A'} <= set(losses[-1]), losses[-1]
        assert all(np.isfinite(v) for row in losses for v in row.values()), 'non-finite loss'
        for direction, attr in (('mr2ct', 'G_A'), ('ct2mr', 'G_B')):
            out = os.path.join(tmp, direction)
            doc = export_model(getattr(model, attr), out, name=f'smoke-{direction}', direction=direction,
                               size=SIZE, default=False, description='CI smoke test', provenance={'steps': 2})
            assert doc['input']['channels'] == 1 and os.path.getsize(os.path.join(out, 'model.onnx')) > 0
            reloaded = load_cyclegan_generator(os.path.join(cfg.run_dir, f'latest_net_{attr}.pth'))
            # The CT->MR generator takes the CT's brain window as a second channel, computed in the graph.
            assert len(reloaded.input_windows) == (attr == 'G_B') and reloaded.model[1].in_channels == 1 + (attr == 'G_B')
            reloaded.smooth_output(cfg.smooth_output)
            x = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
            with torch.no_grad():
                assert torch.equal(reloaded.eval()(x), getattr(model, attr).eval()(x)), 'checkpoint reload differs'
            print(f'{direction}: exported, ONNX Runtime vs PyTorch max diff (noise, held-out head) '
                  + ', '.join(f'{d:.2e}' for d in doc['provenance']['export']['onnxruntime_vs_torch_max_abs_diff'].values()))
        # Your own pairs instead of the heads (models/README.md, "Train your own").
        np.save(os.path.join(tmp, 'pairs.npy'), phantom)
        own = TrainConfig(run_dir=os.path.join(tmp, 'own'), steps=1, size=SIZE, batch=2, data=os.path.join(tmp, 'pairs.npy'),
                          checkpoint_every=1, ngf=16, n_blocks=2, ndf=16, loader_workers=0)
        assert train(own)[1]['steps'] == 1
    print(f'training smoke test passed in {time.monotonic() - began:.1f} s')
    return 0


if __name__ == '__main__':
    torch.set_num_threads(2)
    sys.exit(main())
