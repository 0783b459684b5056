"""Held-out scores of generators on models/testdata with the issue's normalisation rules.

CT is compared in the fixed window [-1024, 3071] HU mapped to [0, 1]; MR in the REFERENCE's 0.5-99.5
percentile window mapped to [0, 1] (the CT->MR output's [-1, 1] maps onto that window, as the service does with
a reference); both images clipped. MAE: HU for CT, [0, 1] units for MR. These are monitoring numbers; the
official ones come from the service's own metrics (`medsynth eval`).

Usage: .venv/bin/python -m training.evaluate --g-a RUN/latest_net_G_A.pth --g-b RUN/latest_net_G_B.pth"""
import argparse
import json

import numpy as np
import torch

from .data import ct_to_signed, mr_to_signed
from .export import as_shipped
from .intensity import CT_HIGH, CT_LOW, ct_to_unit, mr_to_unit
from .metrics import mae, psnr, ssim
from .networks import load_cyclegan_generator
from .testdata import read_testdata


def translate(net: torch.nn.Module, signed: list, batch: int = 4) -> list:
    """[-1, 1] slices -> generator outputs mapped to [0, 1]."""
    out = []
    with torch.no_grad():
        for i in range(0, len(signed), batch):
            x = torch.from_numpy(np.stack(signed[i:i + batch])[:, None])
            out.extend(np.clip((net.eval()(x)[:, 0].numpy() + 1) / 2, 0, 1))
    return out


def summarise(rows: list) -> dict:
    keys = rows[0].keys()
    return {k: round(float(np.mean([r[k] for r in rows])), 4) for k in keys} | {'slices': len(rows)}


def evaluate(g_mr2ct: torch.nn.Module | None, g_ct2mr: torch.nn.Module | None, limit: int | None = None) -> dict:
    series = read_testdata()
    if limit:
        series = series[::max(1, len(series) // limit)][:limit]
    scores = {}
    if g_mr2ct is not None:
        preds = translate(g_mr2ct, [mr_to_signed(mr) for _, _, mr, _ in series])
        rows = []
        for pred, (_, _, _, ct) in zip(preds, series):
            ref = ct_to_unit(ct)
            hu = pred * (CT_HIGH - CT_LOW) + CT_LOW
            rows.append({'psnr_db': psnr(pred, ref), 'ssim': ssim(pred, ref), 'mae_hu': mae(hu, np.clip(ct, CT_LOW, CT_HIGH))})
        scores['mr2ct'] = summarise(rows)
    if g_ct2mr is not None:
        preds = translate(g_ct2mr, [ct_to_signed(ct) for _, _, _, ct in series])
        rows = []
        for pred, (_, _, mr, _) in zip(preds, series):
            ref = mr_to_unit(mr)
            rows.append({'psnr_db': psnr(pred, ref), 'ssim': ssim(pred, ref), 'mae_unit': mae(pred, ref)})
        scores['ct2mr'] = summarise(rows)
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--g-a', help='MR->CT generator checkpoint (CycleGAN state dict)')
    p.add_argument('--g-b', help='CT->MR generator checkpoint')
    p.add_argument('--smooth-output', type=int, default=2, metavar='N',
                   help='passes of the output filter on both generators; default 2, as the shipped models are '
                        'exported (export.py, EXPORT_FILTER_PASSES; the CT->MR one also gets its shipped '
                        'background outside the body)')
    args = p.parse_args()
    if args.smooth_output < 0:
        p.error(f'--smooth-output: expected a whole number >= 0, got {args.smooth_output}')
    torch.set_num_threads(2)
    load = lambda path, direction: as_shipped(load_cyclegan_generator(path), direction, args.smooth_output) if path else None
    print(json.dumps(evaluate(load(args.g_a, 'mr2ct'), load(args.g_b, 'ct2mr')), indent=2))


if __name__ == '__main__':
    main()
