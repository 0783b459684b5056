"""Deterministic, seeded digital head phantom: paired T1-weighted-like MR and CT axial slices.

Each subject is a seeded 3D model built from nested ellipsoidal layers (scalp: skin and fat; skull: outer and
inner cortical tables around cancellous diploe; CSF; folded grey-matter cortex; white matter; deep grey nuclei;
lateral and third ventricles; frontal sinus; optionally an enhancing tumour). Slices are evaluated analytically
at 2x resolution and averaged down, so partial volume is the same in both modalities. Tissue values were tuned
against real head scans (CT in HU: brain 20-40, bone medians ~900 with a tail to ~1500; T1: GM/WM ~0.78,
CSF ~0.25 of WM, scalp fat brighter than WM).

MR: scanner units (WM ~800 times a per-subject gain), smooth multiplicative bias field (a few per cent), Rician
noise. CT: HU with Gaussian noise. Both are rounded to integers as they are stored (16-bit PNG)."""
from dataclasses import dataclass

import numpy as np

SIZE = 256
PIXEL_MM = 0.9375  # 240 mm field of view
SUPERSAMPLE = 2

# name: (CT HU, MR T1 relative to white matter)
TISSUES = {
    'air': (-1000, 0.0), 'skin': (45, 0.72), 'fat': (-95, 1.18), 'cortical': (1350, 0.06),
    'diploe': (620, 0.88), 'csf': (8, 0.24), 'gm': (38, 0.78), 'wm': (26, 1.0), 'deep_gm': (36, 0.84),
    'sinus': (-950, 0.0), 'tumour_rim': (52, 1.42), 'tumour_core': (30, 0.52),
}
MR_WM = 800.0
MR_NOISE = 0.012      # Rician sigma as a fraction of WM signal
BIAS_AMPLITUDE = 0.02  # peak multiplicative bias-field deviation
CT_NOISE_HU = 6.0    # real head CT measured ~6 HU pixel noise in brain (shared/real, 0.48 mm pixels)


@dataclass
class Subject:
    seed: int
    axes: np.ndarray        # head semi-axes (x lateral, y anterior-posterior, z) in mm
    angle: float            # in-plane rotation, radians
    shift: np.ndarray       # in-plane translation, mm
    skin: float
    fat: float
    skull: float            # total skull thickness, mm
    bone_density: float     # multiplies bone HU
    csf: float
    cortex: float
    ventricle: float        # lateral ventricle scale
    folds: np.ndarray       # (k, 4): wave vector (3) and phase of the cortical folding field
    bias: np.ndarray        # (k, 4): wave vector (3) and phase of the bias field
    gain: float
    tumour: tuple | None    # (centre xyz mm, radius mm) or None


def make_subject(seed: int) -> Subject:
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(24, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    folds = np.concatenate([directions * (2 * np.pi / rng.uniform(9, 16, size=(24, 1))),
                            rng.uniform(0, 2 * np.pi, size=(24, 1))], axis=1)
    bias = np.concatenate([rng.normal(size=(3, 3)) * (2 * np.pi / 400), rng.uniform(0, 2 * np.pi, size=(3, 1))], axis=1)
    axes = np.array([78.0, 98.0, 88.0]) * rng.uniform(0.92, 1.08, size=3)
    tumour = None
    if rng.random() < 0.6:
        r = rng.uniform(5, 14)
        centre = np.array([rng.uniform(-0.45, 0.45) * axes[0], rng.uniform(-0.5, 0.5) * axes[1],
                           rng.uniform(-0.1, 0.45) * axes[2]])
        tumour = (centre, r)
    return Subject(seed=seed, axes=axes, angle=rng.uniform(-0.14, 0.14), shift=rng.uniform(-6, 6, size=2),
                   skin=rng.uniform(1.2, 2.0), fat=rng.uniform(2.5, 5.0), skull=rng.uniform(5.0, 8.5),
                   bone_density=rng.uniform(0.93, 1.07), csf=rng.uniform(1.5, 3.5), cortex=rng.uniform(2.5, 3.5),
                   ventricle=rng.uniform(0.6, 1.6), folds=folds, bias=bias, gain=rng.uniform(0.85, 1.15),
                   tumour=tumour)


def _ellipsoid(x, y, z, centre, semi):
    return ((x - centre[0]) / semi[0]) ** 2 + ((y - centre[1]) / semi[1]) ** 2 + ((z - centre[2]) / semi[2]) ** 2


def _wave_field(x, y, z, waves):
    return sum(np.sin(w[0] * x + w[1] * y + w[2] * z + w[3]) for w in waves) / np.sqrt(len(waves))


def _grid(s: Subject, size: int):
    """Head coordinates (mm) of the pixel centres of a size x size slice."""
    step = PIXEL_MM * SIZE / size
    c = (np.arange(size) - (size - 1) / 2) * step
    col, row = np.meshgrid(c, c)
    px, py = col - s.shift[0], -(row - s.shift[1])  # image rows go posterior-to-anterior downwards
    ca, sa = np.cos(s.angle), np.sin(s.angle)
    return ca * px + sa * py, -sa * px + ca * py


def tissue_fractions(s: Subject, z: float, size: int) -> dict:
    """One-hot tissue labels at `size` resolution (hard boundaries; partial volume comes from downsampling)."""
    x, y = _grid(s, size)
    rho = np.sqrt(_ellipsoid(x, y, z, (0, 0, 0), s.axes))
    depth = np.sqrt(x ** 2 + y ** 2 + z ** 2) * (1 / np.maximum(rho, 1e-6) - 1)  # mm inside the head surface
    inside = rho < 1
    label = np.full(x.shape, 'air', dtype=object)
    edges = np.cumsum([s.skin, s.fat, 1.8, s.skull - 3.4, 1.6, s.csf])
    fold = _wave_field(x, y, z, s.folds)
    for name, lo, hi in [('skin', 0, edges[0]), ('fat', edges[0], edges[1]), ('cortical', edges[1], edges[2]),
                         ('diploe', edges[2], edges[3]), ('cortical', edges[3], edges[4]), ('csf', edges[4], edges[5])]:
        label[inside & (depth >= lo) & (depth < hi)] = name
    brain = inside & (depth >= edges[5])
    # folded cortex: GM is thicker where the folding field is high, sulci (CSF) cut in where it peaks
    gm_depth = edges[5] + s.cortex + 4.0 * (fold + 1)
    label[brain] = 'wm'
    label[brain & (depth < gm_depth)] = 'gm'
    label[brain & (depth < edges[5] + 9.0) & (fold > 1.0) & (fold < 1.35)] = 'csf'
    for sign in (-1, 1):
        label[_ellipsoid(x, y, z, (sign * 12, -6, 2), (8, 12, 9)) < 1] = 'deep_gm'       # thalamus
        label[_ellipsoid(x, y, z, (sign * 21, 10, 4), (5.5, 13, 9)) < 1] = 'deep_gm'      # striatum
        v = s.ventricle
        label[_ellipsoid(x, y, z, (sign * (4 + 3 * v), 0, 14), (2 + 3 * v, 24, 8 * min(v, 1.2))) < 1] = 'csf'
    label[_ellipsoid(x, y, z, (0, -4, 2), (1.2 + 0.8 * s.ventricle, 14, 9)) < 1] = 'csf'  # third ventricle
    sinus = _ellipsoid(x, y, z, (0, 0.84 * s.axes[1], -0.38 * s.axes[2]), (16, 10, 14)) < 1
    label[sinus & (depth > edges[1])] = 'sinus'
    if s.tumour is not None:
        centre, r = s.tumour
        d = np.sqrt(_ellipsoid(x, y, z, centre, (r, r, r)))
        in_brain = brain & (label != 'csf')
        label[in_brain & (d < 1)] = 'tumour_rim'
        label[in_brain & (d < 0.6)] = 'tumour_core'
    return label


def clean_slice(s: Subject, z: float):
    """Noise-free CT (HU) and MR (relative to WM, before bias) at SIZE x SIZE with partial volume."""
    hi = SIZE * SUPERSAMPLE
    label = tissue_fractions(s, z, hi)
    ct = np.zeros((hi, hi))
    mr = np.zeros((hi, hi))
    for name, (hu, t1) in TISSUES.items():
        mask = label == name
        bone = name in ('cortical', 'diploe')
        ct[mask] = hu * (s.bone_density if bone else 1)
        mr[mask] = t1
    down = lambda a: a.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    return down(ct), down(mr)


def bias_field(s: Subject, z: float) -> np.ndarray:
    x, y = _grid(s, SIZE)
    return 1 + BIAS_AMPLITUDE * np.clip(_wave_field(x, y, z, s.bias), -1, 1)


def paired_slice(s: Subject, z: float, noise_seed: int):
    """(mr, ct) as stored: MR in integer scanner units, CT in integer HU."""
    ct, mr = clean_slice(s, z)
    rng = np.random.default_rng(noise_seed)
    ct = ct + rng.normal(0, CT_NOISE_HU, ct.shape)
    signal = mr * bias_field(s, z) * MR_WM * s.gain
    sigma = MR_NOISE * MR_WM * s.gain
    mr = np.hypot(signal + rng.normal(0, sigma, mr.shape), rng.normal(0, sigma, mr.shape))
    return np.round(mr).astype(np.float32), np.round(np.clip(ct, -1024, 3071)).astype(np.float32)


def slice_positions(s: Subject, count: int) -> np.ndarray:
    """Axial positions (mm) from the skull base region to near the vertex."""
    return np.linspace(-0.5 * s.axes[2], 0.72 * s.axes[2], count)


def subject_series(subject_id: int, count: int):
    """[(z_mm, mr, ct)] for one subject; fully determined by subject_id."""
    s = make_subject(subject_id)
    return [_series_slice(s, subject_id, i, z) for i, z in enumerate(slice_positions(s, count))]


def subject_slice(subject_id: int, count: int, index: int):
    """subject_series(subject_id, count)[index], made alone."""
    s = make_subject(subject_id)
    return _series_slice(s, subject_id, index, slice_positions(s, count)[index])


def _series_slice(s: Subject, subject_id: int, index: int, z: float):
    return (float(z), *paired_slice(s, z, noise_seed=subject_id * 1000 + index))
