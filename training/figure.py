"""Comparison figure: for a few held-out slices, input | synthetic | reference | |difference|, both directions."""
import numpy as np
from PIL import Image, ImageDraw

from .data import ct_to_signed, mr_to_signed
from .evaluate import translate
from .intensity import ct_to_unit, mr_to_unit
from .testdata import read_testdata

DISPLAY_CT_WINDOW = (-160.0, 240.0)  # brain-ish display window for CT panels (HU)
LABEL_HEIGHT = 16


def _ct_display(unit: np.ndarray) -> np.ndarray:
    hu = unit * 4095 - 1024
    lo, hi = DISPLAY_CT_WINDOW
    return np.clip((hu - lo) / (hi - lo), 0, 1)


def row(images: list, labels: list) -> np.ndarray:
    tiles = []
    for img, label in zip(images, labels):
        tile = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        canvas = Image.new('L', (tile.width, tile.height + LABEL_HEIGHT), 0)
        canvas.paste(tile, (0, LABEL_HEIGHT))
        ImageDraw.Draw(canvas).text((4, 2), label, fill=255)
        tiles.append(np.asarray(canvas))
    return np.concatenate(tiles, axis=1)


# (subject, slice index): lateral-ventricle level, upper brain, and subject-103's enhancing tumour
PICKS = (('subject-101', 8), ('subject-101', 14), ('subject-103', 13))


def write_figure(g_mr2ct, g_ct2mr, path: str, picks=PICKS) -> None:
    by_key = {(sid, idx): (sid, idx, mr, ct) for sid, idx, mr, ct in read_testdata()}
    chosen = [by_key[key] for key in picks]
    syn_ct = translate(g_mr2ct, [mr_to_signed(mr) for _, _, mr, _ in chosen])
    syn_mr = translate(g_ct2mr, [ct_to_signed(ct) for _, _, _, ct in chosen])
    rows = []
    for (sid, idx, mr, ct), pct, pmr in zip(chosen, syn_ct, syn_mr):
        ref_ct, ref_mr = ct_to_unit(ct), mr_to_unit(mr)
        where = f'{sid} #{idx}'
        rows.append(row([ref_mr, _ct_display(pct), _ct_display(ref_ct), np.abs(pct - ref_ct) * 10],
                         [f'MR input {where}', 'synthetic CT', 'reference CT', '|diff| x10 (of 4095 HU)']))
        rows.append(row([_ct_display(ref_ct), pmr, ref_mr, np.abs(pmr - ref_mr) * 5],
                         [f'CT input {where}', 'synthetic MR', 'reference MR', '|diff| x5 (ref window)']))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
