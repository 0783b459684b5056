"""Training-time monitoring metrics on [0, 1] images (the official numbers come from the service's src/quality).

SSIM is the standard Wang et al. form with a 7x7 uniform window, K1 0.01, K2 0.03, data range 1."""
import numpy as np
from scipy.ndimage import uniform_filter


def psnr(pred: np.ndarray, ref: np.ndarray) -> float:
    mse = float(np.mean((pred.astype(np.float64) - ref) ** 2))
    return float('inf') if mse == 0 else 10 * np.log10(1.0 / mse)


def ssim(pred: np.ndarray, ref: np.ndarray, win: int = 7) -> float:
    x, y = pred.astype(np.float64), ref.astype(np.float64)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mx, my = uniform_filter(x, win), uniform_filter(y, win)
    n = win * win
    cov_scale = n / (n - 1)  # sample (co)variances, as in scikit-image
    vx = (uniform_filter(x * x, win) - mx * mx) * cov_scale
    vy = (uniform_filter(y * y, win) - my * my) * cov_scale
    vxy = (uniform_filter(x * y, win) - mx * my) * cov_scale
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = win // 2
    return float(s[pad:-pad, pad:-pad].mean())


def mae(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.mean(np.abs(pred.astype(np.float64) - ref)))
