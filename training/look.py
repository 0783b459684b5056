"""A montage of derived heads for checking by eye: T1 | labels | CT synthesised from the labels (brain window).

Usage: .venv/bin/python -m training.look [--heads-dir training/heads] [--out /tmp/heads.png]"""
import argparse
import glob
import os

import numpy as np
import SimpleITK as sitk
from PIL import Image

from .anatomy import DEFAULT_OUT

PALETTE = np.array([[0, 0, 0], [200, 120, 100], [250, 230, 90], [255, 255, 255], [190, 190, 150], [40, 40, 200],
                    [60, 160, 255], [0, 90, 255], [170, 170, 170], [235, 235, 235], [120, 200, 120]], np.uint8)
MEAN_HU = np.array([-1000, 45, -100, 1500, 500, -900, 8, 8, 38, 27, 34], np.float32)


def tile(array: np.ndarray, size: int = 180) -> np.ndarray:
    image = Image.fromarray(array)
    return np.asarray(image.resize((size, size), Image.NEAREST if array.ndim == 3 else Image.BILINEAR))


def rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[..., None], 3, axis=2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--heads-dir', default=DEFAULT_OUT)
    p.add_argument('--out', default='/tmp/heads.png')
    p.add_argument('--levels', default='0.2,0.35,0.5,0.65,0.8')
    args = p.parse_args()
    rows = []
    for path in sorted(glob.glob(os.path.join(args.heads_dir, '*-labels.nii.gz'))):
        labels = sitk.GetArrayFromImage(sitk.ReadImage(path))
        t1 = sitk.GetArrayFromImage(sitk.ReadImage(path.replace('-labels', '-t1')))
        z = np.nonzero(labels.any(axis=(1, 2)))[0]
        for q in map(float, args.levels.split(',')):
            k = int(z[0] + q * (z[-1] - z[0]))
            ct = MEAN_HU[labels[k]]
            brain_window = np.clip(ct / 80 * 255, 0, 255).astype(np.uint8)
            rows.append(np.concatenate([tile(rgb(t1[k])), tile(PALETTE[labels[k]]), tile(rgb(brain_window))], 1))
    grid = [np.concatenate(rows[i:i + 2], 1) for i in range(0, len(rows) - 1, 2)]
    Image.fromarray(np.concatenate(grid, 0)).save(args.out)
    print(args.out)


if __name__ == '__main__':
    main()
