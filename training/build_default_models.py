"""Rebuild the default models from scratch: real heads -> label maps -> domain-randomised synthetic pairs ->
fine-tuning of both generators -> ONNX export + manifests with provenance and scores -> figure.

Steps:
  0. derive the heads' label maps from ../shared/anatomy (training/anatomy.py; skipped with --skip-derive, which
     uses the committed training/heads/)
  1. low: both generators on whole slices at 64x64 (3-4 mm pixels: a sixteenth of the cost of a 256 slice),
     paired L1 + brain-window L1 + SSIM, fine-tuned from the phantom-trained generators
     models/{mr2ct,ct2mr}-phantom (the method fine-tunes generators pre-trained elsewhere; no generic-image
     checkpoint is reachable offline)
  2. coarse: the same at 128x128 (1.5-2 mm pixels)
  3. fine: the same at 256x256 (the service's input size)
  4. bone: 256x256 again with an added MR->CT L1 in the bone window [0, 1600] HU (weight 4): without it the
     brain-window terms, which are flat above 120 HU, dominate: after 'fine' the MR->CT generator put nothing
     above 600 HU, and 17 HU on average where its own training slices had bone
  5. polish: 256x256 at half the learning rate, the generators with a fixed 3x3 binomial filter on their output
     and a spectral L1 on the checkerboard bands (weight 10, both directions): after 'bone' the real-scan
     report's checkerboard measure (power at the period-2 and period-4 frequencies of the two transposed
     convolutions over the neighbouring frequencies) was 1.5-6.2 on the generators' outputs for 8 of their own
     training slices, 0.5-1.1 on the targets. The filter alone, untrained, brought its mean over 24 slices from
     2.2-2.5 to 1.0-1.1 at 0.1-0.2 dB of PSNR; training through it wins the detail back. A quarter of each batch from the phantom
     (the held-out phantom scores had fallen below their bar with a tenth). Both generators are exported
     with a second pass of the filter, the CT->MR one with its background outside the body the CT shows
     (export.py, as_shipped).
  6. window: the CT->MR generator alone, given the CT's brain window [-40, 120] HU as a second input channel
     (computed in the graph from the one the service sends; its first-layer weights start at zero), 256x256
     at lr 2e-4 with the polish stage's terms: in the full window the 20 HU between CSF and brain are a step of
     0.01 in the input's [-1, 1]. The same 300 steps without the channel (same seed) left the synthetic MR's CSF as
     it was (CSF/brain 0.79 and 0.97 on two real CTs; with the channel 0.71 and 0.63).
  7. skull: the MR->CT generator alone, as polish but with the bone-window term at its 0.65 quantile instead of
     the L1 (a pinball loss: drawing too little bone costs 1.86 times drawing too much). Under the L1 the
     generator drew the median where a T1's dark band may be cortical bone or not, and so too little bone: 7.8-13.5 %
     of the head above 300 HU on the real MR volumes and series of the real-scan report against 15-21 % on real CTs, and 9.7-12.9 %
     on its own training heads' T1s against 11.2-14.2 % of labelled bone. Doubling the term's weight (8) had
     left the bone fraction as it was.
(train.py also has the CycleGAN adversarial and cycle terms, --lambda-gan/--lambda-cycle; the default build does not
use them: on this CPU budget every step went to the paired terms, which the PSNR/SSIM goals reward.)
Each stage resumes from its checkpoints with --resume.

Usage: .venv/bin/python -m training.build_default_models [--resume] [--device cuda] [--scale 1.0]
Writes models/mr2ct-heads/, models/ct2mr-heads/ and models/heads-examples.png; prints the wall time."""
import argparse
import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time

import torch

from . import anatomy
from .evaluate import evaluate
from .export import BODY_MASK, EXPORT_FILTER_PASSES, REPO_ROOT, as_shipped, export_model
from .figure import write_figure
from .synth import describe as describe_synthesis
from .testdata import TEST_SUBJECTS
from .train import TrainConfig, train

SIZE = 256
ARCHITECTURE = dict(ngf=32, n_blocks=6, ndf=32, seed=0, phantom_share=0.1)
PHANTOM_INIT = {'init_from': os.path.join(REPO_ROOT, 'models', 'mr2ct-phantom', 'model.onnx'),
                'init_from_b': os.path.join(REPO_ROOT, 'models', 'ct2mr-phantom', 'model.onnx')}
PHANTOM_PROVENANCE = ('models/mr2ct-phantom and models/ct2mr-phantom (trained on the digital phantom from random '
                      'normal(0, 0.02) init by the phantom-only recipe of training/build_default_models.py at '
                      'commit d52fb91)')
# Steps per stage on the 2-core CPU; --scale multiplies them (a GPU affords far more).
STAGES = {
    'low': dict(size=64, batch=16, steps=1500, checkpoint_every=100),
    'coarse': dict(size=128, batch=8, steps=300, checkpoint_every=25),
    'fine': dict(size=256, batch=4, steps=300, checkpoint_every=20),
    'bone': dict(size=256, batch=4, steps=800, checkpoint_every=50, lambda_bone=4.0),
    'polish': dict(size=256, batch=4, steps=500, checkpoint_every=50, lambda_bone=4.0, lambda_spectral=10.0,
                   lr=1e-4, phantom_share=0.25, smooth_output=1),
    'window': dict(size=256, batch=4, steps=300, checkpoint_every=25, lambda_bone=4.0, lambda_spectral=10.0,
                   lr=2e-4, phantom_share=0.25, smooth_output=1, generators=('G_B',), ct_brain_channel=True, seed=7),
    'skull': dict(size=256, batch=4, steps=300, checkpoint_every=25, lambda_bone=4.0, bone_quantile=0.65,
                  lambda_spectral=10.0, lr=1e-4, phantom_share=0.25, smooth_output=1, generators=('G_A',), seed=13),
}
MODELS = {  # direction: (generator attribute, model name, description)
    'mr2ct': ('G_A', 'mr2ct-heads', 'MR (T1-weighted and other contrasts) to synthetic CT; trained on images '
                                    'synthesised from real heads, not for clinical use'),
    'ct2mr': ('G_B', 'ct2mr-heads', 'CT to synthetic T1-weighted MR; trained on images synthesised from real '
                                    'heads, not for clinical use'),
}


def derive_heads() -> float:
    began = time.monotonic()
    subprocess.run([sys.executable, '-m', 'training.anatomy'], cwd=REPO_ROOT, check=True)
    return round(time.monotonic() - began, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run-dir', default=os.path.join(REPO_ROOT, 'training', 'runs', 'heads'))
    p.add_argument('--resume', action='store_true', help='continue an interrupted build from its checkpoints')
    p.add_argument('--skip-derive', action='store_true', help='use the committed training/heads/')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--scale', type=float, default=1.0, help='multiplies every stage\'s steps')
    p.add_argument('--threads', type=int, default=min(os.cpu_count() or 1, 16),
                   help='torch threads (1 beats 2 on a 2-core machine that other work shares: OpenMP spins)')
    p.add_argument('--out', default=os.path.join(REPO_ROOT, 'models'))
    args = p.parse_args()
    began = time.monotonic()
    derive_s = None if args.skip_derive else derive_heads()
    stages, summaries, init = {}, {}, dict(PHANTOM_INIT)
    threads = args.threads
    for name, options in STAGES.items():  # each stage starts from the generators the previous one left
        options = {**options, 'steps': max(1, int(options['steps'] * args.scale))}
        stages[name] = TrainConfig(run_dir=os.path.join(args.run_dir, name), **{**ARCHITECTURE, **options}, **init,
                                   device=args.device, threads=threads)
        model, summaries[name] = train(stages[name], resume=args.resume)
        init = {f'init_from{suffix}': os.path.join(stages[name].run_dir, f'latest_net_{g}.pth')
                for suffix, g in (('', 'G_A'), ('_b', 'G_B'))}
    model.G_A.cpu(), model.G_B.cpu()
    for direction, (attr, _, _) in MODELS.items():
        as_shipped(getattr(model, attr), direction)
    scores = evaluate(model.G_A, model.G_B)
    rel = lambda path: path and os.path.relpath(path, REPO_ROOT)
    stage = lambda c: {**dataclasses.asdict(c), 'run_dir': rel(c.run_dir), 'init_from': rel(c.init_from),
                       'init_from_b': rel(c.init_from_b), 'lambda_cycle': c.cycle_weight}
    heads = json.load(open(os.path.join(anatomy.DEFAULT_OUT, 'heads.json')))
    for direction, (attr, name, description) in MODELS.items():
        trained = {n: {**stage(c), **summaries[n]} for n, c in stages.items()}
        own = [n for n in trained if attr in stages[n].generators]  # the stages that trained this generator
        steps = sum(trained[n]['steps'] for n in own)
        wall = round(sum(trained[n]['wall_time_s'] for n in own), 1)
        print(json.dumps({'model': name, 'steps': steps, 'wall_time_s': wall, 'phantom_held_out': scores[direction]}))
        provenance = {
            'data': {
                'heads': {k: {f: v[f] for f in ('source', 'licence', 'file')} for k, v in heads['heads'].items()},
                'label_maps': 'training/anatomy.py (N4, Colin27 brain mask by affine + B-spline registration, '
                              'ICBM152 2009a tissue priors, intensity classes); held out: Visible Human Female',
                'synthesis': describe_synthesis(),
                'phantom': f'digital head phantom subjects 1..{stages["low"].phantom_subjects}, '
                           + ', '.join(f'{stages[n].phantom_share:.0%} of each batch in {n}' for n in own),
                'held_out_subjects': [f'subject-{s}' for s in TEST_SUBJECTS],
            },
            'init': PHANTOM_PROVENANCE,
            'training': {
                'objective': 'paired L1 on [-1, 1] + MR->CT L1 in the brain window [-40, 120] HU + (1 - SSIM) '
                             '(CT in the brain window); the stage bone adds MR->CT L1 in the bone window '
                             '[0, 1600] HU; the stage polish keeps it and adds a spectral L1 on the checkerboard '
                             'bands (rows and columns of the spectrum at the period-2 and period-4 frequencies), '
                             'trained through a fixed 3x3 binomial filter on the generator output (networks.py); '
                             'the stage window trains the CT->MR generator alone with the CT\'s brain window '
                             '[-40, 120] HU as a second input channel (networks.py, InputWindows); the stage skull '
                             'trains the MR->CT generator alone with the bone-window term at its 0.65 quantile '
                             '(train.py, quantile_l1) instead of the L1',
                'optimizer': 'Adam lr 2e-4 (polish and skull: 1e-4) betas (0.5, 0.999); per stage constant for half the '
                             'steps, then linear decay to 0',
                'stages': trained,
                'output_filter': f'{EXPORT_FILTER_PASSES} pass(es) of the binomial [1, 2, 1] / 4 in each direction as exported '
                                 '(the polish stage trained through one)',
                **({'outside_body': {**BODY_MASK, 'what': 'as exported, not trained: outside the body the CT '
                                     'shows (above body_hu, opened, grown back into it for reach_px, then by '
                                     'margin_px), the generator\'s own mean over the CT\'s air (networks.py, '
                                     'mask_outside_body)'}} if direction == 'ct2mr' else {}),
            },
            'steps': steps, 'wall_time_s': wall, 'derive_wall_time_s': derive_s,
            # the threads of this invocation only: a resumed build may have run its stages with others
            'hardware': f'{args.device}, {os.cpu_count()}-core machine, {threads} thread(s) in the last invocation'
                        + (f', {torch.cuda.get_device_name()}' if args.device == 'cuda' else ''),
            'phantom_held_out_scores': {**scores[direction], 'computed_by': 'training/evaluate.py (Python '
                                        'monitoring metrics; official: medsynth eval)'},
            'made_by': 'python -m training.build_default_models',
            'date': datetime.date.today().isoformat(),
        }
        export_model(getattr(model, attr), os.path.join(args.out, name), name=name, direction=direction,
                     size=SIZE, default=True, description=description, provenance=provenance, version='2.6.0')
    for path in PHANTOM_INIT.values():  # they stay, as the pre-trained starting point, but are no longer default
        manifest_path = os.path.join(os.path.dirname(path), 'model.json')
        with open(manifest_path) as f:
            doc = json.load(f)
        doc['default'] = False
        with open(manifest_path, 'w') as f:
            json.dump(doc, f, indent=2)
            f.write('\n')
    write_figure(model.G_A, model.G_B, os.path.join(args.out, 'phantom-examples.png'))
    print(json.dumps({'build_wall_time_s': round(time.monotonic() - began, 1)}))


if __name__ == '__main__':
    main()
