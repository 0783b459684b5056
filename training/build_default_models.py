"""Reproduce the default models from scratch: phantom data -> CycleGAN training (both directions in one run)
-> ONNX export + manifests with provenance and held-out scores -> comparison figure.

Usage: /usr/bin/python3 -m training.build_default_models [--steps N] [--resume]
Writes models/mr2ct-phantom/, models/ct2mr-phantom/ and models/phantom-examples.png."""
import argparse
import dataclasses
import datetime
import json
import os

import torch

from .evaluate import evaluate
from .export import REPO_ROOT, export_model
from .figure import write_figure
from .phantom import CT_NOISE_HU, MR_NOISE, BIAS_AMPLITUDE
from .testdata import TEST_SUBJECTS
from .train import TrainConfig, train

SIZE = 256
DEFAULT_CONFIG = dict(steps=1000, batch=2, crop=128, ngf=32, n_blocks=6, ndf=32, category='photography',
                      lambda_identity=0.0, lambda_supervised=50.0, subjects=24, slices=24, seed=0,
                      checkpoint_every=100)
MODELS = {  # direction: (generator attribute, model name, description)
    'mr2ct': ('G_A', 'mr2ct-phantom', 'MR (T1-weighted) to synthetic CT; trained on a digital head phantom, '
                                      'not for clinical use'),
    'ct2mr': ('G_B', 'ct2mr-phantom', 'CT to synthetic T1-weighted MR; trained on a digital head phantom, '
                                      'not for clinical use'),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--steps', type=int, default=DEFAULT_CONFIG['steps'])
    p.add_argument('--run-dir', default=os.path.join(REPO_ROOT, 'training', 'runs', 'default'))
    p.add_argument('--resume', action='store_true', help='continue an interrupted run from its checkpoint')
    p.add_argument('--out', default=os.path.join(REPO_ROOT, 'models'))
    args = p.parse_args()
    cfg = TrainConfig(run_dir=args.run_dir, **{**DEFAULT_CONFIG, 'steps': args.steps})
    model, summary = train(cfg, resume=args.resume)
    scores = evaluate(model.G_A, model.G_B)
    print(json.dumps({'training': summary, 'held_out': scores}, indent=2))
    for direction, (attr, name, description) in MODELS.items():
        provenance = {
            'data': {'source': 'digital head phantom, training/phantom.py (no patient data)',
                     'train_subjects': f'1..{cfg.subjects} ({cfg.slices} axial slices each, {cfg.crop}x{cfg.crop} '
                                       'random crops, left-right flips)',
                     'held_out_subjects': [f'subject-{s}' for s in TEST_SUBJECTS],
                     'mr_noise_rician_sigma_of_wm': MR_NOISE, 'mr_bias_amplitude': BIAS_AMPLITUDE,
                     'ct_noise_hu': CT_NOISE_HU},
            'init': cfg.init_from or 'random normal(0, 0.02); no pre-trained checkpoint',
            'training': {**dataclasses.asdict(cfg), 'run_dir': os.path.relpath(cfg.run_dir, REPO_ROOT),
                         'lambda_cycle': cfg.cycle_weight, 'objective': 'CycleGAN (LSGAN + cycle L1) + paired L1',
                         'optimizer': f'Adam lr {cfg.lr} betas ({cfg.beta1}, 0.999), constant then linear decay'},
            'steps': summary['steps'], 'wall_time_s': summary['wall_time_s'],
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
