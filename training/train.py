"""CycleGAN training of MR->CT (G_A) and CT->MR (G_B) generators on paired phantom slices.

Objective (as CycleGAN): LSGAN adversarial + lambda * cycle L1 (+ optional identity, weighted
lambda_identity * lambda as in the reference implementation), plus an optional supervised L1 term for paired
data. Adam (lr 2e-4, beta1 0.5), batch 2, lr constant for the first half of the steps then linear decay to 0.

Usage: /usr/bin/python3 -m training.train --run-dir training/runs/demo --steps 2000 [--data pairs.npy] [--init-from G_A.pth
       --init-from-b G_B.pth --freeze encoder,resblocks] [--resume]"""
import argparse
import dataclasses
import json
import os
import random
import time

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .data import build_training_set, random_crops
from .networks import NLayerDiscriminator, ResnetGenerator, init_weights, load_cyclegan_generator

PHANTOM_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'runs', 'cache')
# The method's cycle-consistency weight by the category of the generic model fine-tuned from.
LAMBDA_PRESETS = {'artistic': 9.0, 'animals': 10.0, 'landscapes': 10.0, 'photography': 10.0,
                  'satellite': 11.0, 'maps': 11.0, 'urban': 11.0}


@dataclasses.dataclass
class TrainConfig:
    run_dir: str
    steps: int = 2000
    batch: int = 2
    crop: int = 256                    # whole slices by default (see build_default_models: instance norm)
    lr: float = 2e-4
    beta1: float = 0.5
    category: str = 'photography'      # picks lambda (cycle weight) from LAMBDA_PRESETS
    lambda_cycle: float | None = None  # overrides the preset
    lambda_identity: float = 0.0       # fraction of lambda_cycle, as in CycleGAN's --lambda_identity
    lambda_supervised: float = 0.0     # paired L1 weight; 0 = pure (unpaired) CycleGAN
    lambda_gan: float = 1.0            # adversarial weight; 0 with lambda_cycle 0 = supervised-only warm-up
    ngf: int = 32
    n_blocks: int = 6
    ndf: int = 64
    channels: int = 1
    init_from: str | None = None       # CycleGAN generator checkpoint for G_A (MR->CT), e.g. latest_net_G_A.pth
    init_from_b: str | None = None     # for G_B (CT->MR); defaults to init_from
    freeze: tuple = ()                 # any of 'encoder', 'resblocks'
    generators: tuple = ('G_A', 'G_B')  # which generators train; one alone trains on the paired L1 term only
    data: str | None = None            # (n, 2, H, W) .npy of [mr, ct] in [-1, 1]; default: the phantom
    subjects: int = 20                 # phantom training subjects (1..subjects)
    slices: int = 24                   # phantom slices per subject
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 1                   # 1 beats 2 on a busy shared 2-core machine (OpenMP oversubscription)

    @property
    def cycle_weight(self) -> float:
        return self.lambda_cycle if self.lambda_cycle is not None else LAMBDA_PRESETS[self.category]


class ImagePool:
    """History of generated images for the discriminator (CycleGAN's pool of 50)."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() < 0.5:
                i = random.randrange(self.size)
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out)


def make_generator(cfg: TrainConfig, checkpoint: str | None) -> ResnetGenerator:
    if checkpoint:
        return load_cyclegan_generator(checkpoint, cfg.channels, cfg.channels)
    return init_weights(ResnetGenerator(cfg.channels, cfg.channels, cfg.ngf, cfg.n_blocks))


def freeze(net: ResnetGenerator, parts: tuple) -> None:
    for part in parts:
        module = {'encoder': net.encoder, 'resblocks': net.residual_blocks}[part]()
        for p in module.parameters():
            p.requires_grad_(False)


def lr_factor(step: int, steps: int) -> float:
    """1 for the first half, then linear decay to 0 at the last step."""
    half = steps // 2
    return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, steps - half))


class CycleGAN:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.G_A = make_generator(cfg, cfg.init_from)                    # MR -> CT
        self.G_B = make_generator(cfg, cfg.init_from_b or cfg.init_from)  # CT -> MR
        for g in (self.G_A, self.G_B):
            freeze(g, cfg.freeze)
        if len(cfg.generators) == 1:  # the adversarial, cycle and identity terms need both generators
            if cfg.lambda_gan > 0 or cfg.cycle_weight > 0 or cfg.lambda_identity > 0 or cfg.lambda_supervised <= 0:
                raise ValueError(f'training {cfg.generators[0]} alone uses the paired L1 term only: set '
                                 'lambda_gan 0, lambda_cycle 0, lambda_identity 0 and lambda_supervised > 0')
            getattr(self, 'G_B' if cfg.generators == ('G_A',) else 'G_A').requires_grad_(False)
        self.D_A = init_weights(NLayerDiscriminator(cfg.channels, cfg.ndf))  # judges CT (outputs of G_A)
        self.D_B = init_weights(NLayerDiscriminator(cfg.channels, cfg.ndf))  # judges MR (outputs of G_B)
        trainable = lambda *nets: [p for n in nets for p in n.parameters() if p.requires_grad]
        self.opt_G = torch.optim.Adam(trainable(self.G_A, self.G_B), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_D = torch.optim.Adam(trainable(self.D_A, self.D_B), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.pool_A, self.pool_B = ImagePool(), ImagePool()
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()

    def _gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        return self.mse(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self, mr: torch.Tensor, ct: torch.Tensor) -> dict:
        """One optimisation step of the trained generators and (when adversarial) both discriminators; terms
        with zero weight are not computed at all."""
        cfg, lam = self.cfg, self.cfg.cycle_weight
        fake_ct = self.G_A(mr) if 'G_A' in cfg.generators else None
        fake_mr = self.G_B(ct) if 'G_B' in cfg.generators else None
        losses = {}
        if cfg.lambda_gan > 0:
            for d in (self.D_A, self.D_B):
                d.requires_grad_(False)
            losses['G_A'] = cfg.lambda_gan * self._gan(self.D_A(fake_ct), True)
            losses['G_B'] = cfg.lambda_gan * self._gan(self.D_B(fake_mr), True)
        if lam > 0:
            losses['cyc'] = lam * (self.l1(self.G_B(fake_ct), mr) + self.l1(self.G_A(fake_mr), ct))
        if cfg.lambda_identity > 0:
            losses['idt'] = lam * cfg.lambda_identity * (self.l1(self.G_A(ct), ct) + self.l1(self.G_B(mr), mr))
        if cfg.lambda_supervised > 0:
            pairs = [(fake, real) for fake, real in ((fake_ct, ct), (fake_mr, mr)) if fake is not None]
            losses['sup'] = cfg.lambda_supervised * sum(self.l1(fake, real) for fake, real in pairs)
        self.opt_G.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt_G.step()
        if cfg.lambda_gan == 0:
            return {k: float(v) for k, v in losses.items()}
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        d_losses = {
            'D_A': 0.5 * (self._gan(self.D_A(ct), True) + self._gan(self.D_A(self.pool_A.query(fake_ct)), False)),
            'D_B': 0.5 * (self._gan(self.D_B(mr), True) + self._gan(self.D_B(self.pool_B.query(fake_mr)), False)),
        }
        self.opt_D.zero_grad(set_to_none=True)
        sum(d_losses.values()).backward()
        self.opt_D.step()
        return {k: float(v) for k, v in {**losses, **d_losses}.items()}

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group['lr'] = lr

    def state(self, step: int, rng: np.random.Generator, elapsed: float) -> dict:
        nets = {k: getattr(self, k).state_dict() for k in ('G_A', 'G_B', 'D_A', 'D_B')}
        return {**nets, 'opt_G': self.opt_G.state_dict(), 'opt_D': self.opt_D.state_dict(), 'step': step,
                'rng': rng.bit_generator.state, 'torch_rng': torch.get_rng_state(), 'elapsed': elapsed,
                'config': dataclasses.asdict(self.cfg)}

    def load_state(self, state: dict) -> None:
        for k in ('G_A', 'G_B', 'D_A', 'D_B'):
            getattr(self, k).load_state_dict(state[k])
        self.opt_G.load_state_dict(state['opt_G'])
        self.opt_D.load_state_dict(state['opt_D'])


def save_checkpoint(model: CycleGAN, step: int, rng, elapsed: float) -> None:
    """checkpoint.pt (resumable) plus CycleGAN-format latest_net_G_A/B.pth (loadable with --init-from)."""
    run = model.cfg.run_dir
    tmp = os.path.join(run, 'checkpoint.pt.tmp')
    torch.save(model.state(step, rng, elapsed), tmp)
    os.replace(tmp, os.path.join(run, 'checkpoint.pt'))
    torch.save(model.G_A.state_dict(), os.path.join(run, 'latest_net_G_A.pth'))
    torch.save(model.G_B.state_dict(), os.path.join(run, 'latest_net_G_B.pth'))


def train(cfg: TrainConfig, resume: bool = False, data: np.ndarray | None = None) -> tuple:
    """Train (or resume) and return (model, summary dict with steps and wall time)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    os.makedirs(cfg.run_dir, exist_ok=True)
    if data is None and cfg.data:
        data = np.load(cfg.data, mmap_mode='r')
    elif data is None:
        data = build_training_set(cfg.subjects, cfg.slices, PHANTOM_CACHE)
    model = CycleGAN(cfg)
    start, elapsed = 0, 0.0
    ckpt = os.path.join(cfg.run_dir, 'checkpoint.pt')
    if resume and os.path.exists(ckpt):
        state = torch.load(ckpt, map_location='cpu')
        model.load_state(state)
        start, elapsed = state['step'], state['elapsed']
        rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'])
    with open(os.path.join(cfg.run_dir, 'config.json'), 'w') as f:
        json.dump({**dataclasses.asdict(cfg), 'lambda': cfg.cycle_weight}, f, indent=2)
    began = time.monotonic()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=os.path.basename(cfg.run_dir), unit='step')
    log = open(os.path.join(cfg.run_dir, 'losses.jsonl'), 'a')
    for step in bar:
        model.set_lr(cfg.lr * lr_factor(step, cfg.steps))
        mr, ct = random_crops(data, cfg.batch, cfg.crop, rng)
        losses = model.step(mr, ct)
        bar.set_postfix({k: f'{v:.3f}' for k, v in losses.items()}, refresh=False)
        if step % 10 == 0:
            log.write(json.dumps({'step': step, **losses}) + '\n')
            log.flush()
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(model, done, rng, elapsed + time.monotonic() - began)
    log.close()
    wall = elapsed + time.monotonic() - began
    return model, {'steps': cfg.steps, 'wall_time_s': round(wall, 1)}


def parse_args(argv=None) -> tuple:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig(run_dir='')
    for field in dataclasses.fields(TrainConfig):
        name = '--' + field.name.replace('_', '-')
        if field.name == 'freeze':
            p.add_argument(name, default='', help="comma-separated: encoder,resblocks")
        elif field.name == 'generators':
            p.add_argument(name, default='G_A,G_B', help='comma-separated: which of G_A,G_B train')
        elif field.name == 'category':
            p.add_argument(name, default=defaults.category, choices=sorted(LAMBDA_PRESETS))
        elif field.name == 'run_dir':
            p.add_argument(name, required=True)
        else:
            kind = {int: int, float: float}.get(type(getattr(defaults, field.name)), str)
            if field.name in ('lambda_cycle',):
                kind = float
            p.add_argument(name, type=kind, default=getattr(defaults, field.name))
    p.add_argument('--resume', action='store_true', help='continue from run-dir/checkpoint.pt')
    args = vars(p.parse_args(argv))
    resume = args.pop('resume')
    for key in ('freeze', 'generators'):
        args[key] = tuple(x for x in args[key].split(',') if x)
    return TrainConfig(**args), resume


if __name__ == '__main__':
    config, resume_run = parse_args()
    _, summary = train(config, resume_run)
    print(json.dumps(summary))
