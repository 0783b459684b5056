"""ONNX export of a generator plus the service's model.json manifest.

The export is checked twice: onnx.checker on the graph, and ONNX Runtime (via onnxruntime-node, the runtime
the service itself uses) against PyTorch on the same random batch (max abs difference < 1e-4)."""
import json
import os
import subprocess
import tempfile
import warnings

import numpy as np
import onnx
import torch

OPSET = 17
TOLERANCE = 1e-4
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CT_WINDOW = {'window': 'fixed', 'low': -1024, 'high': 3071}
MR_WINDOW = {'window': 'percentile', 'low': 0.5, 'high': 99.5}
# Without a reference a synthetic MR spans the 8-bit range of the T1 slices it is trained on and compared with.
MR_OUTPUT_WINDOW = {**MR_WINDOW, 'nominal': [0, 255]}
INTENSITY = {
    'mr2ct': {'input': MR_WINDOW, 'output': CT_WINDOW},
    'ct2mr': {'input': CT_WINDOW, 'output': MR_OUTPUT_WINDOW},
}


def export_onnx(net: torch.nn.Module, path: str, channels: int, size: int) -> None:
    net = net.eval()
    dummy = torch.zeros(1, channels, size, size)
    with warnings.catch_warnings():
        # Known-harmless notes from the TorchScript exporter (its deprecation; instance norm always normalises
        # per instance, which is exactly what eval mode means for CycleGAN's stat-less instance norm).
        warnings.simplefilter('ignore', UserWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        # The TorchScript exporter keeps PyTorch's parameter names as initialiser names (model.1.weight, ...),
        # which training/train.py reads back to fine-tune a shipped model.
        torch.onnx.export(net, dummy, path, opset_version=OPSET, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}, do_constant_folding=True,
                          dynamo=False)
    onnx.checker.check_model(onnx.load(path), full_check=True)


def run_onnxruntime(path: str, batch: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, 'in.f32'), os.path.join(tmp, 'out.f32')
        np.ascontiguousarray(batch, dtype='<f4').tofile(inp)
        proc = subprocess.run(['node', os.path.join(REPO_ROOT, 'training', 'ort_check.mjs'), os.path.abspath(path),
                               inp, ','.join(map(str, batch.shape)), out],
                              cwd=REPO_ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'onnxruntime-node failed on {path}: {proc.stderr.strip()}')
        dims = json.loads(proc.stdout)['dims']
        return np.fromfile(out, dtype='<f4').reshape(dims)


def check_against_torch(net: torch.nn.Module, path: str, channels: int, size: int, batch: int = 2) -> float:
    """Max |ONNX Runtime - PyTorch| on a random batch of `batch` (> 1 exercises the dynamic batch axis)."""
    x = torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = net.eval()(x).numpy()
    got = run_onnxruntime(path, x.numpy())
    if got.shape != expected.shape:
        raise AssertionError(f'ONNX output shape {got.shape} != PyTorch {expected.shape}')
    diff = float(np.abs(got - expected).max())
    if not diff < TOLERANCE:
        raise AssertionError(f'ONNX Runtime differs from PyTorch by {diff:.3g} (limit {TOLERANCE})')
    return diff


def manifest(name: str, direction: str, size: int, channels: int, default: bool, description: str,
             provenance: dict, version: str = '1.0.0') -> dict:
    return {
        'schema': 1, 'name': name, 'direction': direction, 'version': version, 'onnx': 'model.onnx',
        'default': default, 'description': description,
        'input': {'name': 'input', 'width': size, 'height': size, 'channels': channels},
        'output': {'name': 'output', 'channels': channels},
        'intensity': INTENSITY[direction],
        'provenance': provenance,
    }


def export_model(net: torch.nn.Module, out_dir: str, *, name: str, direction: str, size: int, default: bool,
                 description: str, provenance: dict, version: str = '1.0.0') -> dict:
    """Write out_dir/model.onnx and out_dir/model.json; returns the manifest."""
    os.makedirs(out_dir, exist_ok=True)
    onnx_path = os.path.join(out_dir, 'model.onnx')
    channels = net.input_nc
    export_onnx(net, onnx_path, channels, size)
    diff = check_against_torch(net, onnx_path, channels, size)
    doc = manifest(name, direction, size, channels, default, description,
                   {**provenance, 'export': {'opset': OPSET, 'onnxruntime_vs_torch_max_abs_diff': diff}}, version)
    with open(os.path.join(out_dir, 'model.json'), 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')
    return doc
