"""Training of the MR->CT (G_A) and CT->MR (G_B) generators on paired slices.

Data: slices synthesised from real heads' label maps with domain randomisation (training/synth.py), optionally
mixed with the digital head phantom (training/phantom.py). Each pair has separate INPUTS (randomised scanner
effects) and TARGETS (the real T1; the noiseless CT), so the generators learn to map messy real-world inputs
to clean targets.

Objective: paired L1 on [-1, 1], plus for MR->CT an L1 in a brain window ([-40, 120] HU -> [0, 1]: brain,
CSF and soft tissue differ by 5-40 HU, which the full [-1024, 3071] window all but hides), optionally an L1 in
a bone window ([0, 1600] HU: the brain-window terms are flat above 120 HU and outweigh the full-window L1, so
without it the skull stays faint), plus (1 - SSIM) terms, optionally a spectral L1 on the checkerboard bands
(the transposed convolutions' period-2 and period-4 texture, which the pixel terms barely see), optionally a
CT->MR L1 on CSF and ventricle pixels alone (on the CT they differ from brain by 5-40 HU, a sliver of the input's
range: under the whole-slice L1 the ventricles of real CTs came out barely darker than brain), plus optionally
the CycleGAN terms (LSGAN adversarial + lambda * cycle L1 + identity).
Adam (lr 2e-4, beta1 0.5); lr constant for the first half of the steps, then linear decay to 0.

Usage: .venv/bin/python -m training.train --run-dir training/runs/demo --steps 2000 [--size 128] [--batch 8]
       [--init-from G_A.pth --init-from-b G_B.pth] [--phantom-share 0.15] [--data my_pairs.npy] [--device cuda]
       [--resume]"""
import argparse
import dataclasses
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .anatomy import TISSUE_LABELS
from .data import build_training_set
from .intensity import CT_HIGH, CT_LOW
from .networks import NLayerDiscriminator, ResnetGenerator, init_weights, load_cyclegan_generator
from .synth import PairSynthesizer, SliceBank, SynthConfig, ct_to_signed

PHANTOM_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'runs', 'cache')
# The method's cycle-consistency weight by the category of the generic model fine-tuned from.
LAMBDA_PRESETS = {'artistic': 9.0, 'animals': 10.0, 'landscapes': 10.0, 'photography': 10.0,
                  'satellite': 11.0, 'maps': 11.0, 'urban': 11.0}
BRAIN_WINDOW_HU = (-40.0, 120.0)
BONE_WINDOW_HU = (0.0, 1600.0)
CSF_LABELS = (TISSUE_LABELS['csf'], TISSUE_LABELS['ventricle'])


@dataclasses.dataclass
class TrainConfig:
    run_dir: str
    steps: int = 2000
    batch: int = 4
    size: int = 256                    # whole slices at this matrix (128 = 2 mm pixels: the cheap curriculum stage)
    lr: float = 2e-4
    beta1: float = 0.5
    category: str = 'photography'      # picks lambda (cycle weight) from LAMBDA_PRESETS
    lambda_cycle: float | None = None  # overrides the preset
    lambda_identity: float = 0.0       # fraction of lambda_cycle, as in CycleGAN's --lambda_identity
    lambda_supervised: float = 1.0     # paired L1 weight
    lambda_brain: float = 1.0          # MR->CT paired L1 in the brain window
    lambda_ssim: float = 1.0           # (1 - SSIM) of both directions (CT in the brain window)
    lambda_bone: float = 0.0           # MR->CT paired L1 in the bone window [0, 1600] HU
    bone_quantile: float = 0.5         # that term's quantile: 0.5 is the L1; above it drawing too little bone costs more
    lambda_spectral: float = 0.0       # both directions: spectrum L1 on the checkerboard bands (CT in the brain window)
    lambda_csf: float = 0.0            # CT->MR L1 on the synthesised heads' CSF and ventricle pixels alone
    lambda_gan: float = 0.0            # adversarial weight; 0 = no discriminators at all
    ngf: int = 32
    n_blocks: int = 6
    smooth_output: int = 0             # passes of a fixed binomial filter on the generators' output (networks.py)
    ct_brain_channel: bool = False     # CT->MR: add the CT's brain window as a second input channel (networks.InputWindows);
                                       # a checkpoint trained with it keeps it either way
    ndf: int = 32
    channels: int = 1
    init_from: str | None = None       # generator checkpoint for G_A (MR->CT): CycleGAN .pth or a model.onnx
    init_from_b: str | None = None     # for G_B (CT->MR); defaults to init_from
    freeze: tuple = ()                 # any of 'encoder', 'resblocks'
    generators: tuple = ('G_A', 'G_B')  # which generators train; one alone trains on the paired terms only
    heads_dir: str | None = None       # derived heads (training/anatomy.py); default training/heads
    data: str | None = None            # your own (n, 2, H, W) .npy of [mr, ct] pairs in [-1, 1], instead of the heads
    phantom_share: float = 0.0         # share of each batch taken from the digital phantom
    phantom_subjects: int = 24
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 2
    loader_workers: int = 1            # processes synthesising batches ahead of the trainer
    device: str = 'cpu'

    @property
    def cycle_weight(self) -> float:
        if self.lambda_gan == 0 and self.lambda_cycle is None:
            return 0.0
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


def load_onnx_generator(path: str, ngf: int, n_blocks: int, channels: int, input_windows: tuple = ()) -> ResnetGenerator:
    """A generator from a shipped model.onnx (its initialisers keep the PyTorch parameter names). A first layer
    wider than `channels` is one trained with input windows; the export folds their values into unnamed
    constants, so they are taken from `input_windows` (the configured ones) and cannot be checked here."""
    import onnx
    from onnx import numpy_helper
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in onnx.load(path).graph.initializer}
    stem_in = weights['model.1.weight'].shape[1]
    windows = input_windows if stem_in > channels else ()
    if stem_in != channels + len(windows):
        raise ValueError(f'{path}: its first layer takes {stem_in} channels, not {channels} (+ {len(input_windows)} '
                         'input windows)')
    net = ResnetGenerator(channels, channels, ngf, n_blocks, input_windows=windows)
    net.load_state_dict({k: weights.get(k, v) if k.endswith('.windows') else weights[k]
                         for k, v in net.state_dict().items()}, strict=True)
    return net


def make_generator(cfg: TrainConfig, checkpoint: str | None, input_windows: tuple = ()) -> ResnetGenerator:
    """A generator from `checkpoint` (or initialised). With input_windows, a checkpoint without them gets them
    added (networks.ResnetGenerator.add_input_windows) and one with others is refused; without, a checkpoint
    keeps the windows it was trained with (a channel cannot be taken away from a trained first layer)."""
    if checkpoint and checkpoint.endswith('.onnx'):
        net = load_onnx_generator(checkpoint, cfg.ngf, cfg.n_blocks, cfg.channels, input_windows)
    elif checkpoint:
        net = load_cyclegan_generator(checkpoint, cfg.channels, cfg.channels)
    else:
        net = init_weights(ResnetGenerator(cfg.channels, cfg.channels, cfg.ngf, cfg.n_blocks, input_windows=input_windows))
    if input_windows and not net.input_windows:
        net.add_input_windows(input_windows)
    elif input_windows and (len(net.input_windows) != len(input_windows)
                            or not np.allclose(net.input_windows, input_windows)):
        raise ValueError(f'{checkpoint}: trained with input windows {net.input_windows}, configured {input_windows}')
    return net.smooth_output(cfg.smooth_output)


def freeze(net: ResnetGenerator, parts: tuple) -> None:
    for part in parts:
        module = {'encoder': net.encoder, 'resblocks': net.residual_blocks}[part]()
        for p in module.parameters():
            p.requires_grad_(False)


def lr_factor(step: int, steps: int) -> float:
    """1 for the first half, then linear decay to 0 at the last step."""
    half = steps // 2
    return 1.0 if step < half else max(0.0, 1.0 - (step - half) / max(1, steps - half))


def hu_window(signed_ct: torch.Tensor, window: tuple) -> torch.Tensor:
    """[-1, 1] CT (the [-1024, 3071] HU window) -> the given HU window as [0, 1]."""
    hu = (signed_ct + 1) / 2 * (CT_HIGH - CT_LOW) + CT_LOW
    low, high = window
    return ((hu - low) / (high - low)).clamp(0, 1)


def quantile_l1(pred: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """Twice the pinball loss at quantile q: the mean absolute error at q = 0.5; above it an output below the
    target costs q / (1 - q) times as much as one above it, so the optimum is the target's q-quantile."""
    d = target - pred
    return 2 * torch.maximum(q * d, (q - 1) * d).mean()


def brain_window(signed_ct: torch.Tensor) -> torch.Tensor:
    return hu_window(signed_ct, BRAIN_WINDOW_HU)


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - mean SSIM (11x11 Gaussian, sigma 1.5, data range 1) of [0, 1] images: the service's SSIM."""
    g = torch.exp(-(torch.arange(11, dtype=x.dtype, device=x.device) - 5) ** 2 / (2 * 1.5 ** 2))
    g = g / g.sum()
    blur = lambda t: F.conv2d(F.conv2d(t, g.view(1, 1, 1, 11)), g.view(1, 1, 11, 1))
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1 - s.mean()


def checkerboard_bands(size: int, device) -> torch.Tensor:
    """Mask of an rfft2 spectrum (size x size//2+1): the rows and columns within one bin of the period-2
    (Nyquist) and period-4 (half-Nyquist) frequencies, where two stride-2 transposed convolutions put their
    checkerboard."""
    near = lambda f: ((f.abs() - 0.25).abs() <= 1.5 / size) | ((f.abs() - 0.5).abs() <= 1.5 / size)
    return near(torch.fft.fftfreq(size, device=device))[:, None] | near(torch.fft.rfftfreq(size, device=device))[None, :]


def spectral_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean |amplitude difference| of the two images' orthonormal spectra on the checkerboard bands: the
    synthetic image must have the target's energy there, no more (texture) and no less (blur)."""
    mask = checkerboard_bands(x.shape[-1], x.device)
    ax, ay = (torch.fft.rfft2(t, norm='ortho').abs() for t in (x, y))
    return (ax - ay).abs()[..., mask].mean()


class CycleGAN:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        device = torch.device(cfg.device)
        self.G_A = make_generator(cfg, cfg.init_from).to(device)                    # MR -> CT
        ct_windows = (tuple(float(v) for v in ct_to_signed(torch.tensor(BRAIN_WINDOW_HU))),) if cfg.ct_brain_channel else ()
        self.G_B = make_generator(cfg, cfg.init_from_b or cfg.init_from, ct_windows).to(device)  # CT -> MR
        for g in (self.G_A, self.G_B):
            freeze(g, cfg.freeze)
        if len(cfg.generators) == 1:  # the adversarial, cycle and identity terms need both generators
            if cfg.lambda_gan > 0 or cfg.cycle_weight > 0 or cfg.lambda_identity > 0:
                raise ValueError(f'training {cfg.generators[0]} alone uses the paired terms only: set '
                                 'lambda_gan 0, lambda_cycle 0 and lambda_identity 0')
            getattr(self, 'G_B' if cfg.generators == ('G_A',) else 'G_A').requires_grad_(False)
        self.D_A = init_weights(NLayerDiscriminator(cfg.channels, cfg.ndf)).to(device)  # judges CT (G_A's outputs)
        self.D_B = init_weights(NLayerDiscriminator(cfg.channels, cfg.ndf)).to(device)  # judges MR (G_B's outputs)
        trainable = lambda *nets: [p for n in nets for p in n.parameters() if p.requires_grad]
        self.opt_G = torch.optim.Adam(trainable(self.G_A, self.G_B), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.opt_D = torch.optim.Adam(trainable(self.D_A, self.D_B), lr=cfg.lr, betas=(cfg.beta1, 0.999))
        self.pool_A, self.pool_B = ImagePool(), ImagePool()
        self.mse, self.l1 = nn.MSELoss(), nn.L1Loss()

    def _gan(self, pred: torch.Tensor, real: bool) -> torch.Tensor:
        return self.mse(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self, batch: dict) -> dict:
        """One optimisation step of the trained generators and (when adversarial) both discriminators on a
        batch of mr_in -> ct_target and ct_in -> mr_target pairs; terms with zero weight are not computed."""
        cfg, lam = self.cfg, self.cfg.cycle_weight
        mr_in, ct_target, ct_in, mr_target = (batch[k] for k in ('mr_in', 'ct_target', 'ct_in', 'mr_target'))
        fake_ct = self.G_A(mr_in) if 'G_A' in cfg.generators else None
        fake_mr = self.G_B(ct_in) if 'G_B' in cfg.generators else None
        losses = {}
        if cfg.lambda_gan > 0:
            for d in (self.D_A, self.D_B):
                d.requires_grad_(False)
            losses['G_A'] = cfg.lambda_gan * self._gan(self.D_A(fake_ct), True)
            losses['G_B'] = cfg.lambda_gan * self._gan(self.D_B(fake_mr), True)
        if lam > 0:
            losses['cyc'] = lam * (self.l1(self.G_B(fake_ct), mr_in) + self.l1(self.G_A(fake_mr), ct_in))
        if cfg.lambda_identity > 0:
            losses['idt'] = lam * cfg.lambda_identity * (self.l1(self.G_A(ct_in), ct_in)
                                                         + self.l1(self.G_B(mr_in), mr_in))
        if fake_ct is not None:
            losses['l1_ct'] = cfg.lambda_supervised * self.l1(fake_ct, ct_target)
            fake_brain, target_brain = brain_window(fake_ct), brain_window(ct_target)
            if cfg.lambda_brain > 0:
                losses['brain'] = cfg.lambda_brain * self.l1(fake_brain, target_brain)
            if cfg.lambda_bone > 0:
                losses['bone'] = cfg.lambda_bone * quantile_l1(hu_window(fake_ct, BONE_WINDOW_HU),
                                                               hu_window(ct_target, BONE_WINDOW_HU), cfg.bone_quantile)
            if cfg.lambda_ssim > 0:
                losses['ssim_ct'] = cfg.lambda_ssim * ssim_loss(fake_brain, target_brain)
            if cfg.lambda_spectral > 0:
                losses['spec_ct'] = cfg.lambda_spectral * spectral_loss(fake_brain, target_brain)
        if fake_mr is not None:
            losses['l1_mr'] = cfg.lambda_supervised * self.l1(fake_mr, mr_target)
            fake_unit, target_unit = (fake_mr + 1) / 2, (mr_target + 1) / 2
            if cfg.lambda_ssim > 0:
                losses['ssim_mr'] = cfg.lambda_ssim * ssim_loss(fake_unit, target_unit)
            if cfg.lambda_spectral > 0:
                losses['spec_mr'] = cfg.lambda_spectral * spectral_loss(fake_unit, target_unit)
            if cfg.lambda_csf > 0:
                csf = batch['csf']
                losses['csf_mr'] = cfg.lambda_csf * ((fake_mr - mr_target).abs() * csf).sum() / csf.sum().clamp(min=1)
        self.opt_G.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt_G.step()
        if cfg.lambda_gan == 0:
            return {k: v.item() for k, v in losses.items()}
        for d in (self.D_A, self.D_B):
            d.requires_grad_(True)
        d_losses = {
            'D_A': 0.5 * (self._gan(self.D_A(ct_target), True)
                          + self._gan(self.D_A(self.pool_A.query(fake_ct)), False)),
            'D_B': 0.5 * (self._gan(self.D_B(mr_target), True)
                          + self._gan(self.D_B(self.pool_B.query(fake_mr)), False)),
        }
        self.opt_D.zero_grad(set_to_none=True)
        sum(d_losses.values()).backward()
        self.opt_D.step()
        return {k: v.item() for k, v in {**losses, **d_losses}.items()}

    def set_lr(self, lr: float) -> None:
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group['lr'] = lr

    def state(self, step: int, elapsed: float) -> dict:
        nets = {k: getattr(self, k).state_dict() for k in ('G_A', 'G_B', 'D_A', 'D_B')}
        return {**nets, 'opt_G': self.opt_G.state_dict(), 'opt_D': self.opt_D.state_dict(), 'step': step,
                'torch_rng': torch.get_rng_state(), 'elapsed': elapsed,
                'config': dataclasses.asdict(self.cfg)}

    def load_state(self, state: dict) -> None:
        for k in ('G_A', 'G_B', 'D_A', 'D_B'):
            getattr(self, k).load_state_dict(state[k])
        self.opt_G.load_state_dict(state['opt_G'])
        self.opt_D.load_state_dict(state['opt_D'])


class BatchSource(torch.utils.data.IterableDataset):
    """Synthesised head pairs, with a share of each batch from the digital phantom when asked; or, with
    cfg.data, only your own pairs. Batch k depends only on (seed, k), so a resumed run sees the batches it
    would have seen, and a loader process can make them while the trainer computes."""

    def __init__(self, cfg: TrainConfig, bank: SliceBank | None = None, phantom: np.ndarray | None = None):
        self.cfg = cfg
        self.synth, self.pairs, self.share = None, None, 1.0
        if cfg.data and cfg.lambda_csf > 0:
            raise ValueError('lambda_csf needs the synthesised heads\' labels; your own pairs (data) have none: set it to 0')
        if cfg.data:
            self.pairs = np.load(cfg.data, mmap_mode='r')
            if self.pairs.ndim != 4 or self.pairs.shape[1] != 2:
                raise ValueError(f'{cfg.data}: expected an (n, 2, H, W) array of [mr, ct] pairs, got {self.pairs.shape}')
            return
        self.synth = PairSynthesizer(bank or SliceBank(*([cfg.heads_dir] if cfg.heads_dir else [])),
                                     SynthConfig(size=cfg.size), seed=cfg.seed)
        self.share = cfg.phantom_share
        self.pairs = phantom
        if self.pairs is None and cfg.phantom_share > 0:
            self.pairs = build_training_set(cfg.phantom_subjects, 24, PHANTOM_CACHE)

    start = 0  # the first step to make (a resumed run's)

    def __iter__(self):
        for step in range(self.start, self.cfg.steps):
            yield self.batch(step)

    def batch(self, step: int) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, step, 1])
        if self.synth is None:
            batch = {k: torch.empty(cfg.batch, 1, cfg.size, cfg.size) for k in ('mr_in', 'ct_target', 'ct_in', 'mr_target')}
            count = cfg.batch
        else:
            batch = self.synth.batch(cfg.batch, step)
            count = int(rng.binomial(cfg.batch, self.share)) if self.pairs is not None else 0
        # CSF and ventricles, from the synthesised heads' labels, only for the term that reads them; paired rows
        # have no labels (mask 0). cfg.data with lambda_csf is refused in __init__, so self.synth is set here.
        csf = torch.isin(batch['labels'], torch.tensor(CSF_LABELS))[:, None].float() if cfg.lambda_csf > 0 else None
        if count:  # paired arrays (the phantom, or yours): the same image is input and target
            rows = np.asarray(self.pairs[np.sort(rng.integers(0, len(self.pairs), size=count))], dtype=np.float32)
            pairs = torch.from_numpy(rows)
            if pairs.shape[-1] != cfg.size or pairs.shape[-2] != cfg.size:
                pairs = F.interpolate(pairs, size=(cfg.size, cfg.size), mode='area')
            flip = torch.from_numpy(rng.random(count) < 0.5)
            pairs[flip] = pairs[flip].flip(-1)
            mr, ct = pairs[:, :1], pairs[:, 1:]
            for key, value in (('mr_in', mr), ('mr_target', mr), ('ct_in', ct), ('ct_target', ct)):
                batch[key][:count] = value
            if csf is not None:
                csf[:count] = 0
        batch = {k: v for k, v in batch.items() if k in ('mr_in', 'ct_target', 'ct_in', 'mr_target')}
        return batch if csf is None else {**batch, 'csf': csf}


def save_checkpoint(model: CycleGAN, step: int, elapsed: float) -> None:
    """checkpoint.pt (resumable) plus CycleGAN-format latest_net_G_A/B.pth (loadable with --init-from)."""
    run = model.cfg.run_dir
    tmp = os.path.join(run, 'checkpoint.pt.tmp')
    torch.save(model.state(step, elapsed), tmp)
    os.replace(tmp, os.path.join(run, 'checkpoint.pt'))
    for g in ('G_A', 'G_B'):
        torch.save({k: v.cpu() for k, v in getattr(model, g).state_dict().items()},
                   os.path.join(run, f'latest_net_{g}.pth'))


def train(cfg: TrainConfig, resume: bool = False, source: BatchSource | None = None,
          on_checkpoint=None) -> tuple:
    """Train (or resume) and return (model, summary dict with steps and wall time). `on_checkpoint(model,
    step)` runs after each checkpoint (monitoring)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    os.makedirs(cfg.run_dir, exist_ok=True)
    source = source or BatchSource(cfg)
    model = CycleGAN(cfg)
    start, elapsed = 0, 0.0
    ckpt = os.path.join(cfg.run_dir, 'checkpoint.pt')
    if resume and os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=cfg.device, weights_only=False)
        model.load_state(state)
        start, elapsed = state['step'], state['elapsed']
        torch.set_rng_state(state['torch_rng'].cpu())
    with open(os.path.join(cfg.run_dir, 'config.json'), 'w') as f:
        json.dump({**dataclasses.asdict(cfg), 'lambda': cfg.cycle_weight}, f, indent=2)
    source.start = start
    # One loader process synthesises the next batches while the trainer computes (0: in this process).
    loader = torch.utils.data.DataLoader(source, batch_size=None, num_workers=cfg.loader_workers,
                                         prefetch_factor=2 if cfg.loader_workers else None)
    device = torch.device(cfg.device)
    began = time.monotonic()
    bar = tqdm(loader, initial=start, total=cfg.steps, desc=os.path.basename(cfg.run_dir), unit='step',
               mininterval=30)
    log = open(os.path.join(cfg.run_dir, 'losses.jsonl'), 'a')
    for step, batch in enumerate(bar, start):
        model.set_lr(cfg.lr * lr_factor(step, cfg.steps))
        losses = model.step({k: v.to(device, non_blocking=True) for k, v in batch.items()})
        bar.set_postfix({k: f'{v:.3f}' for k, v in losses.items()}, refresh=False)
        if step % 10 == 0:
            log.write(json.dumps({'step': step, 't': round(elapsed + time.monotonic() - began, 1), **losses}) + '\n')
            log.flush()
        done = step + 1
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_checkpoint(model, done, elapsed + time.monotonic() - began)
            if on_checkpoint:
                on_checkpoint(model, done)
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
        elif isinstance(getattr(defaults, field.name), bool):
            p.add_argument(name, action=argparse.BooleanOptionalAction, default=getattr(defaults, field.name))
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
