"""Reproduce the default models from scratch: phantom data -> two-stage training of both directions at once
(paired L1 warm-up, then CycleGAN fine-tuning) -> ONNX export + manifests with provenance and held-out
scores -> comparison figure.

Usage: /usr/bin/python3 -m training.build_default_models [--resume]
Writes models/mr2ct-phantom/, models/ct2mr-phantom/ and models/phantom-examples.png."""
import argparse
import dataclasses
import datetime
import json
import os

from .evaluate import evaluate
from .export import REPO_ROOT, export_model
from .figure import write_figure
from .phantom import CT_NOISE_HU, MR_NOISE, BIAS_AMPLITUDE
from .testdata import TEST_SUBJECTS
from .train import TrainConfig, train

SIZE = 256
# Whole 256x256 slices, not crops: instance norm removes each image's own mean and scale, so an all-air crop
# and an all-brain crop of CT look alike to the generator; whole slices always carry the head's context and
# give the statistics the generator sees at inference.
ARCHITECTURE = dict(ngf=32, n_blocks=6, ndf=32, batch=2, crop=256, subjects=24, slices=24, seed=0)
# Stage 1 fits both generators to the paired slices with L1 alone (no discriminators, no cycle: half the cost
# of a CycleGAN step); stage 2 fine-tunes them from there with the CycleGAN objective plus the paired term,
# as the method fine-tunes from a pre-trained CycleGAN.
STAGES = {
    'warmup': dict(steps=500, lambda_gan=0.0, lambda_cycle=0.0, lambda_supervised=1.0, checkpoint_every=50),
    'cyclegan': dict(steps=100, category='photography', lambda_identity=0.0, lambda_supervised=50.0,
                     checkpoint_every=25),
}
MODELS = {  # direction: (generator attribute, model name, description)
    'mr2ct': ('G_A', 'mr2ct-phantom', 'MR (T1-weighted) to synthetic CT; trained on a digital head phantom, '
                                      'not for clinical use'),
    'ct2mr': ('G_B', 'ct2mr-phantom', 'CT to synthetic T1-weighted MR; trained on a digital head phantom, '
                                      'not for clinical use'),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run-dir', default=os.path.join(REPO_ROOT, 'training', 'runs', 'default'))
    p.add_argument('--resume', action='store_true', help='continue an interrupted build from its checkpoints')
    p.add_argument('--out', default=os.path.join(REPO_ROOT, 'models'))
    args = p.parse_args()
    warmup = TrainConfig(run_dir=os.path.join(args.run_dir, 'warmup'), **ARCHITECTURE, **STAGES['warmup'])
    _, warmup_summary = train(warmup, resume=args.resume)
    cfg = TrainConfig(run_dir=os.path.join(args.run_dir, 'cyclegan'), **ARCHITECTURE, **STAGES['cyclegan'],
                      init_from=os.path.join(warmup.run_dir, 'latest_net_G_A.pth'),
                      init_from_b=os.path.join(warmup.run_dir, 'latest_net_G_B.pth'))
    model, summary = train(cfg, resume=args.resume)
    steps = warmup_summary['steps'] + summary['steps']
    wall = round(warmup_summary['wall_time_s'] + summary['wall_time_s'], 1)
    scores = evaluate(model.G_A, model.G_B)
    print(json.dumps({'steps': steps, 'wall_time_s': wall, 'held_out': scores}, indent=2))
    stage = lambda c: {**dataclasses.asdict(c), 'run_dir': os.path.relpath(c.run_dir, REPO_ROOT),
                       'init_from': c.init_from and os.path.relpath(c.init_from, REPO_ROOT),
                       'init_from_b': c.init_from_b and os.path.relpath(c.init_from_b, REPO_ROOT),
                       'lambda_cycle': c.cycle_weight}
    for direction, (attr, name, description) in MODELS.items():
        provenance = {
            'data': {'source': 'digital head phantom, training/phantom.py (no patient data)',
                     'train_subjects': f'1..{cfg.subjects} ({cfg.slices} axial slices each, whole slices, '
                                       'random left-right flips)',
                     'held_out_subjects': [f'subject-{s}' for s in TEST_SUBJECTS],
                     'mr_noise_rician_sigma_of_wm': MR_NOISE, 'mr_bias_amplitude': BIAS_AMPLITUDE,
                     'ct_noise_hu': CT_NOISE_HU},
            'init': 'random normal(0, 0.02); no pre-trained checkpoint (none is reachable offline)',
            'training': {
                'objective': 'stage 1: paired L1 only; stage 2: CycleGAN (LSGAN + lambda * cycle L1) + paired L1',
                'optimizer': 'Adam lr 2e-4 betas (0.5, 0.999); per stage constant for half the steps, then '
                             'linear decay to 0',
                'stages': {'warmup': {**stage(warmup), **warmup_summary}, 'cyclegan': {**stage(cfg), **summary}},
            },
            'steps': steps, 'wall_time_s': wall,
            'hardware': f'CPU, {cfg.threads} thread(s), 2-core machine shared with other work',
            'held_out_scores': {**scores[direction], 'computed_by': 'training/evaluate.py (Python monitoring '
                                'metrics; official: medsynth eval)'},
            'made_by': 'python3 -m training.build_default_models',
            'date': datetime.date.today().isoformat(),
        }
        export_model(getattr(model, attr), os.path.join(args.out, name), name=name, direction=direction,
                     size=SIZE, default=True, description=description, provenance=provenance)
    write_figure(model.G_A, model.G_B, os.path.join(args.out, 'phantom-examples.png'))


if __name__ == '__main__':
    main()
