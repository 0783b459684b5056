"""Paired MR/CT training slices synthesised from real heads' label maps, with domain randomisation.

In the spirit of SynthSeg/SynthSR (Billot, Iglesias et al.): every sample draws a new geometry and new
intensities, so the generators see thousands of heads' worth of variation from a handful of real ones.

A sample is one axial slice of a training head (training/heads, derived by training/anatomy.py), through a
random 3D tilt for the isotropic heads, then in-plane:
  geometry  (TorchIO) random rotation, anisotropic scale (head size and shape), translation, left-right flip;
            then a smooth elastic deformation and a random field of view across the output matrix, 128 or
            256 (the generators' input sizes)
  CT (HU)   per-tissue values drawn from realistic ranges (brain 20-45 HU with grey/white contrast, CSF,
            fat, muscle, cancellous and cortical bone with texture, sinus air), partial volume from the warp,
            optional head holder and table; as a generator INPUT also reconstruction blur or sharpening,
            noise 3-20 HU and, in a share of samples, a brain window clipped and quantised to 8 bits (how
            8-bit brain-window CT slices arrive); as a TARGET the noiseless image
  MR        as a TARGET the real T1 itself (voxel-aligned with the labels it was segmented into); as an INPUT
            either that real T1 or a contrast drawn per tissue (T1-, T1-Gd-, T2-, FLAIR-, PD-like or fully
            random), with (TorchIO) a random bias field, gamma, blur, anisotropic resolution loss, motion,
            ghosting and noise, then magnitude, 8- or 12-bit quantisation and, sometimes, stereotactic fiducials
Both images are normalised as the service normalises them (training/intensity.py): CT by the fixed window
[-1024, 3071] HU, MR by its own 0.5-99.5 percentile window, to [-1, 1]."""
import dataclasses
import glob
import json
import os

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
import torchio as tio

from .anatomy import DEFAULT_OUT as HEADS_DIR, TISSUE_LABELS as L
from .intensity import CT_HIGH, CT_LOW, MR_PERCENTILES

FRAME = 288            # bank slices are padded/cropped to FRAME x FRAME at 1 mm
TILTS_DEG = (-12.0, -6.0, 0.0, 6.0, 12.0)  # pitch of the slicing plane for isotropic heads (AC-PC or not)
N_LABELS = max(L.values()) + 1
VERTEX_BRAIN_SHARE = 0.2


@dataclasses.dataclass
class SynthConfig:
    size: int = 256                 # output matrix
    fov_mm: tuple = (190.0, 260.0)  # field of view range across the output matrix
    scale: tuple = (0.85, 1.15)     # per in-plane axis: head size and shape
    rotate_deg: float = 20.0
    shift_mm: float = 15.0
    elastic_mm: float = 3.0
    real_mr_input: float = 0.6      # share of MR inputs that are the real T1 (augmented) rather than drawn contrast
    t1_like: float = 0.6            # share of drawn contrasts that keep T1 ordering
    ct_window_clip: float = 0.35    # share of CT inputs clipped to a brain window and quantised to 8 bits
    holder: float = 0.5             # share of CTs with a head holder
    fiducials: float = 0.1


class SliceBank:
    """Every axial slice of every training head: labels (uint8) and T1 (uint8), FRAME x FRAME at 1 mm."""

    def __init__(self, heads_dir: str = HEADS_DIR, heads: list | None = None, min_head_fraction: float = 0.02):
        paths = sorted(glob.glob(os.path.join(heads_dir, '*-labels.nii.gz')))
        names = [os.path.basename(p)[:-len('-labels.nii.gz')] for p in paths]
        if heads is not None:
            names = [n for n in names if n in heads]
        if not names:
            raise FileNotFoundError(f'no derived heads in {heads_dir}: run python -m training.anatomy')
        self.names, labels, t1s, owner = names, [], [], []
        for h, name in enumerate(names):
            lab = sitk.ReadImage(os.path.join(heads_dir, f'{name}-labels.nii.gz'))
            t1 = sitk.ReadImage(os.path.join(heads_dir, f'{name}-t1.nii.gz'))
            isotropic = lab.GetSpacing()[2] <= 1.5
            for tilt in (TILTS_DEG if isotropic else (0.0,)):
                lab_t, t1_t = (tilted(lab, tilt, sitk.sitkNearestNeighbor), tilted(t1, tilt, sitk.sitkLinear))
                head_area = (lab_t > 0).sum(axis=(1, 2))
                brain_area = (lab_t >= L['csf']).sum(axis=(1, 2))
                widest = int(np.argmax(brain_area))
                for k in range(lab_t.shape[0]):
                    if head_area[k] / FRAME ** 2 < min_head_fraction:
                        continue
                    # Near the vertex the template-based brain mask fails (partial volume of the thin cap):
                    # those few slices would teach bone inside the brain.
                    if k > widest and brain_area[k] < VERTEX_BRAIN_SHARE * head_area[k]:
                        continue
                    labels.append(frame(lab_t[k]))
                    t1s.append(frame(t1_t[k]))
                    owner.append(h)
        self.labels = torch.from_numpy(np.stack(labels))
        self.t1 = torch.from_numpy(np.stack(t1s))
        self.owner = np.array(owner)

    def __len__(self) -> int:
        return len(self.labels)

    def sample_indices(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Heads equally likely (a 5 mm head has fewer slices than a 1 mm one), slices uniform within a head."""
        heads = rng.integers(0, len(self.names), size=count)
        out = np.empty(count, dtype=np.int64)
        for i, h in enumerate(heads):
            choices = np.nonzero(self.owner == h)[0]
            out[i] = choices[rng.integers(0, len(choices))]
        return out


def tilted(image: sitk.Image, degrees: float, interpolator) -> np.ndarray:
    """The volume resliced with the axial plane pitched by `degrees` about the left-right axis."""
    if degrees == 0:
        return sitk.GetArrayFromImage(image)
    centre = image.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in image.GetSize()])
    rotation = sitk.Euler3DTransform(centre, np.deg2rad(degrees), 0.0, 0.0)
    return sitk.GetArrayFromImage(sitk.Resample(image, image, rotation, interpolator, 0))


def frame(slice_: np.ndarray) -> np.ndarray:
    """Centre-pad or crop to FRAME x FRAME (slices are 1 mm in-plane)."""
    out = np.zeros((FRAME, FRAME), dtype=slice_.dtype)
    h, w = slice_.shape
    sy, sx = max(0, (h - FRAME) // 2), max(0, (w - FRAME) // 2)
    dy, dx = max(0, (FRAME - h) // 2), max(0, (FRAME - w) // 2)
    ch, cw = min(h, FRAME), min(w, FRAME)
    out[dy:dy + ch, dx:dx + cw] = slice_[sy:sy + ch, sx:sx + cw]
    return out


def smooth_noise(batch: int, size: int, cells: int, gen: torch.Generator) -> torch.Tensor:
    """Smooth random field in about [-1, 1]: a coarse Gaussian grid upsampled bicubically."""
    coarse = torch.randn(batch, 1, cells, cells, generator=gen)
    return F.interpolate(coarse, size=(size, size), mode='bicubic', align_corners=True)[:, 0].clamp(-3, 3) / 2


def uniform(gen: torch.Generator, batch: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(batch, generator=gen)


def frame_mm(cfg: SynthConfig) -> int:
    """The working frame's pixel: 2 mm for small outputs (3 mm pixels and more), whose detail a 1 mm frame
    would only average away, at a quarter of the resampling cost; else 1 mm."""
    return 2 if cfg.size <= 96 else 1


def anatomy_transform(cfg: SynthConfig) -> tio.Transform:
    """Per-slice geometry on the frame (TorchIO): in-plane rotation, anisotropic scaling (head shape and size),
    translation and left-right flip, applied to the label map (nearest) and the T1 (linear) together."""
    s = cfg.scale
    shift = cfg.shift_mm / frame_mm(cfg)  # TorchIO's translation is in the frame's (unit-spaced) voxels
    return tio.Compose(copy=False, transforms=[
        tio.RandomAffine(scales=(s[0], s[1], s[0], s[1], 1, 1), degrees=(0, 0, 0, 0, -cfg.rotate_deg, cfg.rotate_deg),
                         translation=(shift, shift, 0), isotropic=False, default_pad_value=0),
        tio.RandomFlip(axes=(0,)),
    ])


def field_of_view_grid(cfg: SynthConfig, batch: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, size, size, 2) grid into the frame: a random field of view across the output matrix plus a
    smooth elastic displacement. (The elastic field is drawn here, batched: TorchIO's
    RandomElasticDeformation costs about 0.25 s per 2D slice on this CPU, ten times the rest of a sample.)"""
    fov = uniform(gen, batch, *cfg.fov_mm)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = fov / FRAME  # the output spans `fov` mm of the 1 mm frame
    grid = F.affine_grid(theta, [batch, 1, cfg.size, cfg.size], align_corners=False)
    amplitude = cfg.elastic_mm * 2 / FRAME
    displacement = torch.stack([smooth_noise(batch, cfg.size, 5, gen), smooth_noise(batch, cfg.size, 5, gen)], -1)
    return grid + amplitude * displacement


def per_slice(transform: tio.Transform, images: torch.Tensor) -> torch.Tensor:
    """A TorchIO intensity transform on each (H, W) slice of a batch (as a 1-voxel-thick volume)."""
    return torch.stack([transform(tio.ScalarImage(tensor=image[None, :, :, None].float())).data[0, :, :, 0]
                        for image in images])


def draw_ct_values(batch: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, N_LABELS) HU per tissue, drawn per sample from measured adult ranges."""
    hu = torch.zeros(batch, N_LABELS)
    u = lambda a, b: uniform(gen, batch, a, b)
    hu[:, L['background']] = -1000
    hu[:, L['skin_muscle']] = u(30, 60)
    hu[:, L['fat']] = u(-120, -80)
    hu[:, L['cortical_bone']] = u(1100, 1900)
    hu[:, L['cancellous_bone']] = u(300, 800)
    hu[:, L['air_internal']] = u(-1000, -850)
    hu[:, L['csf']] = u(0, 15)
    hu[:, L['ventricle']] = hu[:, L['csf']] + u(-2, 2)
    gm = u(33, 45)
    hu[:, L['grey_matter']] = gm
    hu[:, L['white_matter']] = gm - u(5, 13)
    hu[:, L['deep_grey']] = gm - u(0, 5)
    return hu


def ct_from_labels(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, H, W) label maps -> HU with per-sample tissue values and texture (bone trabeculae, soft-tissue
    inhomogeneity), before any scanner effect."""
    batch, size = labels.shape[0], labels.shape[-1]
    hu = torch.gather(draw_ct_values(batch, gen), 1, labels.reshape(batch, -1).long()).reshape(labels.shape)
    fine = F.avg_pool2d(torch.randn(batch, 1, size, size, generator=gen), 3, 1, 1)[:, 0] * 3
    bone = (labels == L['cortical_bone']) | (labels == L['cancellous_bone'])
    hu = hu + torch.where(bone, hu * 0.18 * fine, 2.0 * fine)
    brain = labels >= L['csf']
    return hu + brain * 2.0 * smooth_noise(batch, size, 6, gen)


def add_holder(hu: torch.Tensor, labels: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """A curved head holder (plastic/carbon) behind the head and sometimes a table line below it."""
    batch, size = hu.shape[0], hu.shape[-1]
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing='ij')
    out = hu.clone()
    for b in range(batch):
        if torch.rand(1, generator=gen).item() >= share:
            continue
        rows = torch.nonzero(labels[b].any(dim=1))[:, 0]
        cols = torch.nonzero(labels[b].any(dim=0))[:, 0]
        if rows.numel() == 0:
            continue
        cy, cx = float(rows.float().mean()), float(cols.float().mean())
        ry, rx = float(rows.max() - rows.min()) / 2, float(cols.max() - cols.min()) / 2
        gap = uniform(gen, 1, 1, 10).item()
        thick = uniform(gen, 1, 2, 7).item()
        r = torch.sqrt(((yy - cy) / (ry + gap)) ** 2 + ((xx - cx) / (rx + gap)) ** 2)
        band = (r >= 1) & (r <= 1 + thick / max(ry, 1)) & (yy > cy + 0.2 * ry) & (labels[b] == 0)
        out[b][band] = uniform(gen, 1, -400, 250).item()
        if torch.rand(1, generator=gen).item() < 0.4:
            y0 = int(min(size - 4, cy + ry + gap + thick + uniform(gen, 1, 2, 20).item()))
            table = (yy >= y0) & (yy < y0 + int(uniform(gen, 1, 2, 6).item())) & (labels[b] == 0)
            out[b][table] = uniform(gen, 1, -200, 300).item()
    return out


def draw_mr_values(batch: int, t1_like: float, gen: torch.Generator) -> torch.Tensor:
    """(batch, N_LABELS) MR intensities in [0, 1]: T1-like orderings (plain or gadolinium-like) for a share
    of samples, T2/FLAIR/PD-like or fully random for the rest."""
    u = lambda a, b: uniform(gen, batch, a, b)
    t1 = torch.stack([torch.zeros(batch), u(0.45, 0.7), u(0.8, 1.0), u(0.0, 0.08), u(0.5, 0.85), u(0.0, 0.05),
                      u(0.12, 0.3), u(0.1, 0.28), u(0.5, 0.65), u(0.68, 0.85), u(0.55, 0.72)], 1)
    t2 = torch.stack([torch.zeros(batch), u(0.2, 0.45), u(0.5, 0.8), u(0.0, 0.08), u(0.3, 0.6), u(0.0, 0.05),
                      u(0.8, 1.0), u(0.85, 1.0), u(0.45, 0.6), u(0.3, 0.42), u(0.35, 0.5)], 1)
    flair = t2.clone()
    flair[:, L['csf']], flair[:, L['ventricle']] = u(0.02, 0.12), u(0.0, 0.1)
    pd = torch.stack([torch.zeros(batch), u(0.4, 0.6), u(0.6, 0.9), u(0.0, 0.08), u(0.4, 0.7), u(0.0, 0.05),
                      u(0.6, 0.85), u(0.65, 0.9), u(0.6, 0.8), u(0.5, 0.65), u(0.55, 0.75)], 1)
    rand = torch.rand(batch, N_LABELS, generator=gen)
    rand[:, 0] = u(0, 0.1)
    pick = torch.rand(batch, generator=gen)
    others = torch.where((pick < 0.45)[:, None], t2, torch.where((pick < 0.6)[:, None], flair,
                                                                 torch.where((pick < 0.8)[:, None], pd, rand)))
    return torch.where((torch.rand(batch, generator=gen) < t1_like)[:, None], t1, others)


def mr_from_labels(labels: torch.Tensor, t1_like: float, gen: torch.Generator) -> torch.Tensor:
    batch, size = labels.shape[0], labels.shape[-1]
    values = draw_mr_values(batch, t1_like, gen)
    spread = uniform(gen, batch, 0.01, 0.06)
    means = torch.gather(values, 1, labels.reshape(batch, -1).long()).reshape(labels.shape)
    texture = F.avg_pool2d(torch.randn(batch, 1, size, size, generator=gen), 3, 1, 1)[:, 0]
    return means + spread[:, None, None] * texture


def mr_artefacts() -> tio.Transform:
    """Scanner effects on [0, 1]-ish MR (TorchIO): bias field, gamma, blur, anisotropic resolution loss, motion,
    ghosting, noise."""
    return tio.Compose(copy=False, transforms=[
        tio.RandomBiasField(coefficients=0.4, order=3),
        tio.RandomGamma(log_gamma=0.35),
        tio.RandomBlur(std=(0, 1.3, 0, 1.3, 0, 0), p=0.6),
        tio.RandomAnisotropy(axes=(0, 1), downsampling=(1.5, 3), p=0.15),
        tio.RandomMotion(degrees=3, translation=3, num_transforms=2, p=0.1),
        tio.RandomGhosting(axes=(0, 1), intensity=(0.2, 0.6), p=0.1),
        tio.RandomNoise(std=(0, 0.05)),
    ])


def mr_scanner(mr: torch.Tensor, artefacts: tio.Transform, gen: torch.Generator) -> torch.Tensor:
    """Artefacts, then magnitude (noise on a magnitude image is Rician-like, never negative), then 8- or
    12-bit quantisation."""
    batch = mr.shape[0]
    mr = mr.clamp(min=0)
    mr = mr / mr.flatten(1).quantile(0.995, dim=1).clamp(min=1e-3)[:, None, None]
    mr = per_slice(artefacts, mr).abs()
    levels = torch.where(torch.rand(batch, generator=gen) < 0.5, 255.0, 4095.0)[:, None, None]
    return torch.round(mr / mr.flatten(1).amax(1).clamp(min=1e-6)[:, None, None] * levels)


def add_fiducials(mr: torch.Tensor, labels: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """Stereotactic-frame fiducials: bright dots and short rods in the air around the head."""
    batch, size = mr.shape[0], mr.shape[-1]
    out = mr.clone()
    for b in range(batch):
        if torch.rand(1, generator=gen).item() >= share:
            continue
        top = float(mr[b].max())
        for _ in range(int(uniform(gen, 1, 2, 9).item())):
            y, x = (torch.rand(2, generator=gen) * (size - 6)).long().tolist()
            h, w = (1 + torch.randint(0, 3, (2,), generator=gen)).tolist()
            if torch.rand(1, generator=gen).item() < 0.3:
                h = int(h * 5)
            patch = labels[b, y:y + h, x:x + w] == 0
            out[b, y:y + h, x:x + w][patch] = top * uniform(gen, 1, 0.6, 1.2).item()
    return out


def ct_artefacts() -> tio.Transform:
    """Reconstruction blur and noise 3-20 HU (TorchIO)."""
    return tio.Compose(copy=False, transforms=[tio.RandomBlur(std=(0, 1.0, 0, 1.0, 0, 0), p=0.8),
                                               tio.RandomNoise(std=(3, 20))])


def ct_scanner(hu: torch.Tensor, artefacts: tio.Transform, gen: torch.Generator) -> torch.Tensor:
    """A sharp (bone) kernel for a share of samples, else blur; noise; integer HU."""
    batch = hu.shape[0]
    sharpen = (torch.rand(batch, generator=gen) < 0.2)[:, None, None]
    detail = hu - F.avg_pool2d(hu[:, None], 3, 1, 1, count_include_pad=False)[:, 0]
    out = per_slice(artefacts, torch.where(sharpen, hu + 0.6 * detail, hu))
    return torch.round(out.clamp(-1024, 3071))


def window_clip(hu: torch.Tensor, share: float, gen: torch.Generator) -> torch.Tensor:
    """For a share of samples: HU clipped to a brain window and quantised to 256 levels, as 8-bit
    brain-window slices converted back to HU are."""
    batch = hu.shape[0]
    low = uniform(gen, batch, -160, 20)[:, None, None]
    width = torch.exp(uniform(gen, batch, np.log(60), np.log(400)))[:, None, None]
    v = torch.round((hu.clamp(low, low + width) - low) / width * 255)
    clipped = low + v / 255 * width
    return torch.where((torch.rand(batch, generator=gen) < share)[:, None, None], clipped, hu)


def ct_to_signed(hu: torch.Tensor) -> torch.Tensor:
    return ((hu.clamp(CT_LOW, CT_HIGH) - CT_LOW) / (CT_HIGH - CT_LOW) * 2 - 1).float()


def mr_to_signed(mr: torch.Tensor) -> torch.Tensor:
    """Each slice by its own 0.5-99.5 percentile window, clipped (what the service does to MR input)."""
    flat = mr.flatten(1).double()
    q = torch.quantile(flat, torch.tensor([MR_PERCENTILES[0] / 100, MR_PERCENTILES[1] / 100], dtype=torch.float64),
                       dim=1)
    lo, hi = q[0][:, None, None], torch.maximum(q[1], q[0] + 1e-6)[:, None, None]
    return ((mr.double() - lo) / (hi - lo) * 2 - 1).clamp(-1, 1).float()


class PairSynthesizer:
    """Batches of (mr_input, ct_target, ct_input, mr_target), each (B, 1, size, size) in [-1, 1], plus the
    noiseless target CT in HU and the labels. Batch k depends only on (seed, k): any process can make any
    batch, so training resumes exactly and synthesis can run in a loader process."""

    def __init__(self, bank: SliceBank, cfg: SynthConfig, seed: int = 0):
        self.bank, self.cfg, self.seed = bank, cfg, seed
        self.anatomy, self.mr_artefacts, self.ct_artefacts = anatomy_transform(cfg), mr_artefacts(), ct_artefacts()

    def batch(self, count: int, number: int = 0) -> dict:
        """Batch `number` of `count` samples."""
        rng = np.random.default_rng([self.seed, number])
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2 ** 62)))
        return self._synthesise(count, rng, gen)

    def _synthesise(self, count: int, rng: np.random.Generator, gen: torch.Generator) -> dict:
        cfg = self.cfg
        idx = self.bank.sample_indices(count, rng)
        step = frame_mm(cfg)
        labels_frame, t1_frame = [], []
        # TorchIO draws from torch's global generator: seeded from ours once per batch (reproducible, resumable).
        torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=gen)))
        for i in idx.tolist():
            t1 = self.bank.t1[i][None].float() / 255
            t1 = F.avg_pool2d(t1, step) if step > 1 else t1
            subject = self.anatomy(tio.Subject(
                labels=tio.LabelMap(tensor=self.bank.labels[i][::step, ::step][None, :, :, None].clone()),
                t1=tio.ScalarImage(tensor=t1[..., None])))
            labels_frame.append(subject['labels'].data[0, :, :, 0])
            t1_frame.append(subject['t1'].data[0, :, :, 0])
        labels_frame, t1_frame = torch.stack(labels_frame).long(), torch.stack(t1_frame)
        grid = field_of_view_grid(cfg, count, gen)
        # Output pixels well above the frame's average it first, as a scanner's larger pixels do.
        prefilter = (lambda img: F.avg_pool2d(img[:, None], 3, 1, 1, count_include_pad=False)[:, 0]) \
            if cfg.size * 1.3 * step < FRAME else (lambda img: img)
        warp = lambda img: F.grid_sample(prefilter(img)[:, None], grid, mode='bilinear', padding_mode='zeros',
                                         align_corners=False)[:, 0]
        labels = F.grid_sample(labels_frame.float()[:, None], grid, mode='nearest', padding_mode='zeros',
                               align_corners=False)[:, 0].long()
        # Intensities are drawn on the frame, then resampled: the bilinear warp gives partial volume.
        ct_clean = warp(ct_from_labels(labels_frame, gen) + 1000) - 1000
        ct_clean = add_holder(ct_clean, labels, cfg.holder, gen)
        t1 = warp(t1_frame)
        drawn = warp(mr_from_labels(labels_frame, cfg.t1_like, gen))
        use_real = (torch.rand(count, generator=gen) < cfg.real_mr_input)[:, None, None]
        mr_in = mr_scanner(torch.where(use_real, t1, drawn), self.mr_artefacts, gen)
        mr_in = add_fiducials(mr_in, labels, cfg.fiducials, gen)
        ct_in = window_clip(ct_scanner(ct_clean, self.ct_artefacts, gen), cfg.ct_window_clip, gen)
        as_batch = lambda x: x[:, None].contiguous()
        return {
            'mr_in': as_batch(mr_to_signed(mr_in)), 'ct_target': as_batch(ct_to_signed(ct_clean)),
            'ct_in': as_batch(ct_to_signed(ct_in)), 'mr_target': as_batch(mr_to_signed(t1)),
            'ct_target_hu': as_batch(ct_clean), 'labels': labels,
        }


def describe() -> dict:
    """What the synthesis randomises, for the models' provenance."""
    return {'config': dataclasses.asdict(SynthConfig()), 'tilts_deg': list(TILTS_DEG), 'frame_mm': FRAME,
            'ct_hu_ranges': 'brain GM 33-45, WM GM-5..13, deep grey GM-0..5, CSF 0-15, skin/muscle 30-60, '
                            'fat -120..-80, cancellous 300-800, cortical 1100-1900 (18% texture), sinus '
                            '-1000..-850; noise 3-20 HU; blur 0-1 px or sharpening',
            'mr_contrasts': 'real T1 (60%) or drawn per tissue: T1-like 60%, else T2/FLAIR/PD-like or random; '
                            'TorchIO bias field (order 3, 0.4), gamma (log 0.35), blur 0-1.3 px (60%), anisotropy '
                            '1.5-3x (15%), motion (10%), ghosting (10%), noise 0-5%, magnitude, 8/12-bit'}


if __name__ == '__main__':
    print(json.dumps(describe(), indent=1))
