"""Reproduce the default models from scratch: phantom data -> training of both directions at once (paired L1
warm-up, then CycleGAN fine-tuning), then more paired L1 steps for CT->MR alone -> ONNX export + manifests with
provenance and held-out scores -> comparison figure.

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
# Two torch threads: on the quiet 2-core machine a CT->MR step takes 1.16 s with 2 threads and 1.87 s with 1
# (1 is faster only while other work shares the cores).
ARCHITECTURE = dict(ngf=32, n_blocks=6, ndf=32, batch=2, crop=256, subjects=24, slices=24, seed=0, threads=2)
# Stage 1 fits both generators to the paired slices with L1 alone (no discriminators, no cycle: half the cost
# of a CycleGAN step); stage 2 fine-tunes them from there with the CycleGAN objective plus the paired term,
# as the method fine-tunes from a pre-trained CycleGAN.
# Stage 3 trains CT->MR (G_B) alone with paired L1 (half the cost of a stage-1 step): after stage 2 MR->CT
# meets its bar but CT->MR has only learnt a smooth average brain (10-45 HU contrasts on CT) and was still
# improving.
STAGES = {
    'warmup': dict(steps=500, lambda_gan=0.0, lambda_cycle=0.0, lambda_supervised=1.0, checkpoint_every=50),
    'cyclegan': dict(steps=100, category='photography', lambda_identity=0.0, lambda_supervised=50.0,
                     checkpoint_every=25),
    'ct2mr': dict(steps=750, generators=('G_B',), lambda_gan=0.0, lambda_cycle=0.0, lambda_supervised=1.0,
                  checkpoint_every=50),
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
    stages, summaries, init = {}, {}, {}
    for name, options in STAGES.items():  # each stage starts from the generators the previous one left
        stages[name] = TrainConfig(run_dir=os.path.join(args.run_dir, name), **ARCHITECTURE, **options, **init)
        model, summaries[name] = train(stages[name], resume=args.resume)
        init = {f'init_from{suffix}': os.path.join(stages[name].run_dir, f'latest_net_{g}.pth')
                for suffix, g in (('', 'G_A'), ('_b', 'G_B'))}
    scores = evaluate(model.G_A, model.G_B)
    stage = lambda c: {**dataclasses.asdict(c), 'run_dir': os.path.relpath(c.run_dir, REPO_ROOT),
                       'init_from': c.init_from and os.path.relpath(c.init_from, REPO_ROOT),
                       'init_from_b': c.init_from_b and os.path.relpath(c.init_from_b, REPO_ROOT),
                       'lambda_cycle': c.cycle_weight}
    cfg = stages['warmup']
    for direction, (attr, name, description) in MODELS.items():
        trained = {n: {**stage(c), **summaries[n]} for n, c in stages.items() if attr in c.generators}
        steps = sum(t['steps'] for t in trained.values())
        wall = round(sum(t['wall_time_s'] for t in trained.values()), 1)
        print(json.dumps({'model': name, 'steps': steps, 'wall_time_s': wall, 'held_out': scores[direction]}))
        provenance = {
            'data': {'source': 'digital head phantom, training/phantom.py (no patient data)',
                     'train_subjects': f'1..{cfg.subjects} ({cfg.slices} axial slices each, whole slices, '
                                       'random left-right flips)',
                     'held_out_subjects': [f'subject-{s}' for s in TEST_SUBJECTS],
                     'mr_noise_rician_sigma_of_wm': MR_NOISE, 'mr_bias_amplitude': BIAS_AMPLITUDE,
                     'ct_noise_hu': CT_NOISE_HU},
            'init': 'random normal(0, 0.02); no pre-trained checkpoint (none is reachable offline)',
            'training': {
                'objective': 'warmup: paired L1 only; cyclegan: CycleGAN (LSGAN + lambda * cycle L1) + paired '
                             'L1; ct2mr: paired L1 only, CT->MR generator alone (MR->CT frozen)',
                'optimizer': 'Adam lr 2e-4 betas (0.5, 0.999); per stage constant for half the steps, then '
                             'linear decay to 0',
                'stages': trained,
            },
            'steps': steps, 'wall_time_s': wall,
            'build_wall_time_s': round(sum(t['wall_time_s'] for t in summaries.values()), 1),  # all stages
            'hardware': f'CPU, {cfg.threads} thread(s), {os.cpu_count()}-core machine',
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
