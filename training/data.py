"""Paired phantom training slices, normalised to the generators' [-1, 1] input/output convention."""
import hashlib
import os

import numpy as np
from tqdm import tqdm

from .intensity import CT_HIGH, CT_LOW, mr_window
from . import phantom
from .phantom import SIZE, subject_series

TRAIN_SUBJECTS_FIRST = 1  # training subjects are 1..N; held-out test subjects are >= 101


def mr_to_signed(mr: np.ndarray) -> np.ndarray:
    """MR -> [-1, 1] by its own 0.5-99.5 percentile window (clipped)."""
    lo, hi = mr_window(mr)
    return np.clip((mr - lo) / (hi - lo) * 2 - 1, -1, 1).astype(np.float32)


def ct_to_signed(ct: np.ndarray) -> np.ndarray:
    return np.clip((ct - CT_LOW) / (CT_HIGH - CT_LOW) * 2 - 1, -1, 1).astype(np.float32)


def build_training_set(subjects: int, slices: int, cache_dir: str) -> np.ndarray:
    """(n, 2, SIZE, SIZE) float16 array of [mr, ct] in [-1, 1], cached on disk by its parameters."""
    with open(phantom.__file__, 'rb') as f:
        version = hashlib.sha256(f.read()).hexdigest()[:12]  # a changed phantom never reuses a stale cache
    path = os.path.join(cache_dir, f'phantom-train-{subjects}x{slices}-{version}.npy')
    if os.path.exists(path):
        return np.load(path)
    data = np.empty((subjects * slices, 2, SIZE, SIZE), dtype=np.float16)
    ids = range(TRAIN_SUBJECTS_FIRST, TRAIN_SUBJECTS_FIRST + subjects)
    for k, sid in enumerate(tqdm(ids, desc='phantom subjects', unit='subject')):
        for i, (_, mr, ct) in enumerate(subject_series(sid, slices)):
            data[k * slices + i, 0] = mr_to_signed(mr)
            data[k * slices + i, 1] = ct_to_signed(ct)
    os.makedirs(cache_dir, exist_ok=True)
    np.save(path, data)
    return data
