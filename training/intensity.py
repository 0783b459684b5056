"""Intensity windows shared by training, export and evaluation (the manifest's "intensity" contract)."""
import numpy as np

CT_LOW, CT_HIGH = -1024.0, 3071.0
MR_PERCENTILES = (0.5, 99.5)


def mr_window(mr: np.ndarray) -> tuple:
    """The image's own 0.5-99.5 percentile window (NumPy linear interpolation, as the service uses)."""
    lo, hi = np.percentile(mr, MR_PERCENTILES)
    return float(lo), float(max(hi, lo + 1e-6))


def to_unit(values: np.ndarray, window: tuple) -> np.ndarray:
    """Physical values -> [0, 1], clipped."""
    lo, hi = window
    return np.clip((values - lo) / (hi - lo), 0, 1).astype(np.float32)


def from_unit(unit: np.ndarray, window: tuple) -> np.ndarray:
    lo, hi = window
    return (unit * (hi - lo) + lo).astype(np.float32)


def ct_to_unit(ct: np.ndarray) -> np.ndarray:
    return to_unit(ct, (CT_LOW, CT_HIGH))


def mr_to_unit(mr: np.ndarray) -> np.ndarray:
    return to_unit(mr, mr_window(mr))
