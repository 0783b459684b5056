"""Throughput and numerical parity of the CycleGAN generators on one NVIDIA GPU, with no network.

Two generators from training/networks.py: the compact one the service ships (shape and weights read from
models/mr2ct-phantom/model.onnx) and the paper-size one (ngf 64, 9 residual blocks, random weights). For each:
slices/s at batch 1-64 in fp32, TF32, fp16 and bf16, eager and as a CUDA graph, timed with CUDA events; every
precision's output against fp32 on the CPU and against ONNX Runtime on the CPU; and ONNX Runtime's CUDA execution
provider on the ONNX models, with the service's session settings, when onnxruntime-gpu can be imported.

    python bench/gpu/bench_gpu.py                 # on the GPU machine: bench/results/gpu/results.{json,md}
    python bench/gpu/bench_gpu.py --dry-run --out /tmp/gpu-dry   # CPU, 32x32, batch 1-2, fp32 and bf16, < 60 s

See bench/gpu/README.md."""
import argparse
import copy
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)
from training.networks import ResnetGenerator, init_weights  # noqa: E402

BATCHES = (1, 2, 4, 8, 16, 32, 64)
PRECISIONS = ('fp32', 'tf32', 'fp16', 'bf16')
DTYPES = {'fp32': torch.float32, 'tf32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
PARITY_BATCH = 2
DEFAULT_MODEL_DIR = os.path.join(REPO, 'models', 'mr2ct-phantom')
DEFAULT_OUT = os.path.join(REPO, 'bench', 'results', 'gpu')


# ---- ONNX weights without the onnx package (the GPU machine may not have it) ----------------------------------

def _varint(buf, i):
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf):
    """(field number, value) of each field of one protobuf message; length-delimited values as memoryviews."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, i = buf[i:i + width], i + width
        else:
            raise ValueError(f'protobuf wire type {wire} is not used by ONNX')
        yield field, value


def onnx_initializers(path):
    """Initializer name -> float32 array. ModelProto.graph is field 7, GraphProto.initializer 5; TensorProto:
    dims 1, data_type 2 (1 = FLOAT), float_data 4 (packed), name 8, raw_data 9 (little-endian)."""
    with open(path, 'rb') as f:
        model = memoryview(f.read())
    graph = next(value for field, value in _fields(model) if field == 7)
    tensors = {}
    for field, tensor in _fields(graph):
        if field != 5:
            continue
        dims, name, data, dtype = [], None, None, 1
        for tf, value in _fields(tensor):
            if tf == 1:
                dims.append(value)
            elif tf == 2:
                dtype = value
            elif tf == 8:
                name = bytes(value).decode()
            elif tf in (4, 9):
                data = np.frombuffer(value, dtype='<f4')
        if dtype != 1 or data is None:
            raise ValueError(f'{path}: initializer {name} is not float32 data')
        tensors[name] = data.reshape(dims).copy()
    return tensors


def compact_generator(model_dir):
    """The shipped generator with its trained weights; its shape is read from the weights themselves."""
    with open(os.path.join(model_dir, 'model.json')) as f:
        manifest = json.load(f)
    onnx_path = os.path.join(model_dir, manifest['onnx'])
    weights = onnx_initializers(onnx_path)
    ngf = weights['model.1.weight'].shape[0]
    n_blocks = len({k.split('.')[1] for k in weights if '.conv_block.' in k})
    net = ResnetGenerator(manifest['input']['channels'], manifest['output']['channels'], ngf, n_blocks)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    return net.eval(), {'name': 'compact', 'ngf': ngf, 'n_blocks': n_blocks, 'channels': manifest['input']['channels'],
                        'native_size': manifest['input']['width'], 'weights': os.path.relpath(onnx_path, REPO),
                        'onnx': onnx_path}


def paper_generator(channels, size):
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(channels, channels, 64, 9))
    return net.eval(), {'name': 'paper', 'ngf': 64, 'n_blocks': 9, 'channels': channels, 'native_size': size,
                        'weights': 'random normal(0, 0.02), seed 0', 'onnx': None}


def gflop_per_slice(net, channels, size):
    """Counted on the meta device: no arithmetic is done."""
    from torch.utils.flop_counter import FlopCounterMode
    meta = copy.deepcopy(net).to('meta')
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.zeros(1, channels, size, size, device='meta'))
    return counter.get_total_flops() / 1e9


# ---- precision and timing --------------------------------------------------------------------------------------

def set_tf32(enabled):
    """TF32 for fp32 convolutions and matmuls (cuDNN allows it for convolutions by default)."""
    conv = getattr(torch.backends.cudnn, 'conv', None)
    # PyTorch >= 2.9: once the new API has set a flag, reading the legacy allow_tf32 raises, so only the new one.
    if conv is not None and hasattr(conv, 'fp32_precision'):
        conv.fp32_precision = torch.backends.cuda.matmul.fp32_precision = 'tf32' if enabled else 'ieee'
    else:
        torch.backends.cudnn.allow_tf32 = enabled
        torch.backends.cuda.matmul.allow_tf32 = enabled


def as_precision(net, precision, device):
    set_tf32(precision == 'tf32')
    return copy.deepcopy(net).to(device=device, dtype=DTYPES[precision])


def sample(batch, channels, size, seed):
    """Values over [-1, 1] like a normalised slice; the same for a given seed on every machine."""
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def graph_runner(net, x):
    """net(x) captured as a CUDA graph: returns (replay, the graph's output tensor)."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graphs requires
        for _ in range(2):
            net(x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = net(x)
    return graph.replay, y


def timed_ms(run, iters, cuda):
    """Mean ms per call over `iters` back-to-back calls: CUDA events on a GPU, the wall clock on the CPU."""
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(iters):
            run()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / iters
    started = time.perf_counter()
    for _ in range(iters):
        run()
    return (time.perf_counter() - started) * 1000 / iters


def measure(run, cuda, settings):
    """Warm up (cuDNN's autotuner runs per new shape), estimate, then time enough calls for min_time_s."""
    for _ in range(settings['warmup']):
        run()
    estimate = max(timed_ms(run, settings['min_iters'], cuda), 1e-6)
    iters = max(settings['min_iters'], min(settings['max_iters'], math.ceil(settings['min_time_s'] * 1000 / estimate)))
    return timed_ms(run, iters, cuda), iters


class Deadline:
    """Skips what is left once the run's time budget is spent, so the whole run stays under it."""

    def __init__(self, seconds):
        self.started, self.seconds = time.monotonic(), seconds

    def elapsed(self):
        return time.monotonic() - self.started

    def spent(self):
        return self.elapsed() > self.seconds


def skipped(what, reason):
    return {**what, 'skipped': reason}


# ---- PyTorch ----------------------------------------------------------------------------------------------------

def torch_throughput(net, info, settings, deadline):
    device, cuda = settings['device'], settings['device'] == 'cuda'
    rows = []
    for precision in settings['precisions']:
        model = as_precision(net, precision, device)
        for mode in settings['modes']:
            for batch in settings['batches']:
                what = {'model': info['name'], 'precision': precision, 'mode': mode, 'batch': batch}
                if mode == 'graph' and not cuda:
                    rows.append(skipped(what, 'CUDA graphs need a CUDA device'))
                    continue
                if deadline.spent():
                    rows.append(skipped(what, f'time budget of {deadline.seconds:.0f} s spent'))
                    continue
                try:
                    x = sample(batch, info['channels'], settings['size'], seed=batch).to(device, DTYPES[precision])
                    with torch.no_grad():
                        run = graph_runner(model, x)[0] if mode == 'graph' else (lambda: model(x))
                        ms, iters = measure(run, cuda, settings)
                    rows.append({**what, 'ms_per_batch': ms, 'slices_per_s': batch * 1000 / ms, 'iters': iters,
                                 'tflops': info['gflop_per_slice'] * batch / ms})
                except (RuntimeError, torch.cuda.OutOfMemoryError) as error:  # e.g. out of memory at batch 64
                    rows.append(skipped(what, f'{type(error).__name__}: {str(error).splitlines()[0]}'))
                finally:
                    run = x = None
                    if cuda:
                        torch.cuda.empty_cache()
        del model
    return rows


def max_mean_abs(a, b):
    diff = np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))
    return float(diff.max()), float(diff.mean())


def torch_parity(net, info, settings, ort_reference):
    """Each precision on the bench device against fp32 on the CPU (and against ONNX Runtime on the CPU where it ran
    on this same input); the CUDA graph's output against eager."""
    x = sample(PARITY_BATCH, info['channels'], settings['size'], seed=1234)
    with torch.no_grad():
        set_tf32(False)
        reference = copy.deepcopy(net).float().cpu()(x).numpy()
    rows = []
    for precision in settings['precisions']:
        model = as_precision(net, precision, settings['device'])
        xp = x.to(settings['device'], DTYPES[precision])
        with torch.no_grad():
            out = model(xp).float().cpu().numpy()
            row = {'model': info['name'], 'precision': precision, 'device': settings['device']}
            row['max_abs_vs_torch_fp32_cpu'], row['mean_abs_vs_torch_fp32_cpu'] = max_mean_abs(out, reference)
            if ort_reference is not None and ort_reference['output'].shape == out.shape:
                row['max_abs_vs_onnxruntime_cpu'] = max_mean_abs(out, ort_reference['output'])[0]
            if 'graph' in settings['modes'] and settings['device'] == 'cuda':
                replay, y = graph_runner(model, xp.clone())
                replay()
                torch.cuda.synchronize()
                row['max_abs_graph_vs_eager'] = max_mean_abs(y.float().cpu().numpy(), out)[0]
        rows.append(row)
        del model
    return rows


# ---- ONNX Runtime -------------------------------------------------------------------------------------------------

def import_onnxruntime():
    try:
        import onnxruntime
        return onnxruntime, None
    except ImportError as error:
        return None, str(error)


def onnxruntime_reference(net, info):
    """ONNX Runtime's CPU output for the shipped ONNX file at its own size, next to PyTorch fp32 on the CPU with the
    weights read from that file: checks the weights were read right, and gives every precision a second reference.
    Python's onnxruntime if importable, else onnxruntime-node (the service's runtime) through training/export.py."""
    x = sample(PARITY_BATCH, info['channels'], info['native_size'], seed=1234)
    ort, why_not = import_onnxruntime()
    try:
        if ort is not None:
            session = ort.InferenceSession(info['onnx'], providers=['CPUExecutionProvider'])
            output = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
            runtime = f'onnxruntime {ort.__version__} (Python, CPUExecutionProvider)'
        else:
            from training.export import run_onnxruntime  # needs node, npm ci and the onnx package
            output = run_onnxruntime(info['onnx'], x.numpy())
            runtime = f'onnxruntime-node via training/ort_check.mjs (Python onnxruntime: {why_not})'
    except Exception as error:  # no runtime at all is a result to report, not a crash
        return None, {'skipped': f'no ONNX Runtime on the CPU: {type(error).__name__}: {error}'}
    with torch.no_grad():
        set_tf32(False)
        torch_out = copy.deepcopy(net).float().cpu()(x).numpy()
    max_abs, mean_abs = max_mean_abs(torch_out, output)
    summary = {'model': info['name'], 'runtime': runtime, 'size': info['native_size'], 'batch': PARITY_BATCH,
               'max_abs_torch_fp32_cpu_vs_onnxruntime': max_abs, 'mean_abs': mean_abs}
    return {'output': output}, summary


def export_onnx(net, info, size, directory):
    """The paper-size generator as ONNX (opset 17, dynamic batch), as training/export.py exports the shipped one."""
    path = os.path.join(directory, f"{info['name']}.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(copy.deepcopy(net).float().cpu(), torch.zeros(1, info['channels'], size, size), path,
                          opset_version=17, input_names=['input'], output_names=['output'],
                          dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}, do_constant_folding=True,
                          dynamo=False)
    return path


def placement_from_profile(path):
    """Provider -> operator -> node count, from the kernel events of an ORT profile."""
    with open(path) as f:
        events = json.load(f)
    placed = {}
    for event in events:
        if event.get('cat') == 'Node' and event.get('name', '').endswith('_kernel_time'):
            args = event.get('args', {})
            placed.setdefault(args.get('provider', 'unknown'), Counter())[args.get('op_name', 'unknown')] += 1
    return {provider: dict(ops) for provider, ops in placed.items()}


def ort_session(ort, path, provider, device_id, profile_prefix):
    """The service's settings (src/inference/ort-session-options.ts): on CUDA one intra-op thread and no per-node
    CPU fallback; ORT's CUDA defaults otherwise (exhaustive cuDNN search, TF32 allowed)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = profile_prefix
    if provider == 'CUDAExecutionProvider':
        options.intra_op_num_threads = 1
        options.add_session_config_entry('session.disable_cpu_ep_fallback', '1')
        providers = [('CUDAExecutionProvider', {'device_id': device_id})]
    else:
        providers = ['CPUExecutionProvider']
    return ort.InferenceSession(path, options, providers=providers)


def ort_bench(models, settings, deadline, reference):
    """ONNX Runtime on the ONNX files: CUDA on a GPU (when onnxruntime-gpu imports), the CPU in a dry run (to
    exercise this code). Timed with the wall clock around session.run, host copies included, as the service runs it."""
    ort, why_not = import_onnxruntime()
    if ort is None:
        return {'skipped': f'onnxruntime not importable ({why_not}); see bench/gpu/README.md to carry the wheel'}
    if settings['device'] == 'cuda':
        provider = 'CUDAExecutionProvider'
        if provider not in ort.get_available_providers():
            return {'skipped': f'onnxruntime {ort.__version__} has no {provider} (the CPU package?); '
                               'install onnxruntime-gpu'}
    else:
        provider = 'CPUExecutionProvider'
    result = {'version': ort.__version__, 'provider': provider, 'models': []}
    with tempfile.TemporaryDirectory() as tmp:
        for net, info in models:
            entry = {'model': info['name']}
            result['models'].append(entry)
            if deadline.spent():
                entry['skipped'] = f'time budget of {deadline.seconds:.0f} s spent'
                continue
            try:
                # The shipped file fixes its own size; the paper-size one is exported at the bench size.
                path, size = (info['onnx'], info['native_size']) if info['onnx'] else (
                    export_onnx(net, info, settings['size'], tmp), settings['size'])
                session = ort_session(ort, path, provider, 0, os.path.join(tmp, info['name']))
            except Exception as error:  # e.g. a node without a CUDA kernel under disable_cpu_ep_fallback
                entry['skipped'] = f'{type(error).__name__}: {str(error).splitlines()[0]}'
                continue
            entry['size'] = size
            entry['session_providers'] = session.get_providers()
            name = session.get_inputs()[0].name
            x = sample(PARITY_BATCH, info['channels'], size, seed=1234).numpy()
            out = session.run(None, {name: x})[0]
            entry['placement'] = placement_from_profile(session.end_profiling())
            with torch.no_grad():
                set_tf32(False)
                entry['max_abs_vs_torch_fp32_cpu'] = max_mean_abs(
                    out, copy.deepcopy(net).float().cpu()(torch.from_numpy(x)).numpy())[0]
            if reference is not None and info['onnx'] and reference['output'].shape == out.shape:
                entry['max_abs_vs_onnxruntime_cpu'] = max_mean_abs(out, reference['output'])[0]
            entry['throughput'] = []
            for batch in settings['batches']:
                what = {'batch': batch}
                if deadline.spent():
                    entry['throughput'].append(skipped(what, f'time budget of {deadline.seconds:.0f} s spent'))
                    continue
                xb = sample(batch, info['channels'], size, seed=batch).numpy()
                try:
                    ms, iters = measure(lambda: session.run(None, {name: xb}), False, settings)
                    entry['throughput'].append({**what, 'ms_per_batch': ms, 'slices_per_s': batch * 1000 / ms,
                                                'iters': iters})
                except Exception as error:
                    entry['throughput'].append(skipped(what, f'{type(error).__name__}: {str(error).splitlines()[0]}'))
            del session
    return result


# ---- report -----------------------------------------------------------------------------------------------------

def environment(settings):
    env = {'python': platform.python_version(), 'platform': platform.platform(), 'cpus': os.cpu_count(),
           'torch': torch.__version__, 'torch_cuda': torch.version.cuda,
           'cudnn': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           'device': torch.cuda.get_device_name(0) if settings['device'] == 'cuda' else platform.processor() or 'cpu',
           'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}
    ort, why_not = import_onnxruntime()
    env['onnxruntime'] = f'{ort.__version__} {ort.get_available_providers()}' if ort else f'not importable: {why_not}'
    try:
        env['commit'] = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True, text=True,
                                       check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        env['commit'] = None
    return env


def fmt(value, digits=1):
    return '—' if value is None else f'{value:.{digits}f}'


def fmt_e(value):
    return '—' if value is None else f'{value:.2e}'


def markdown(doc):
    s = doc['settings']
    lines = [f"# Generator throughput on {doc['environment']['device']}", '',
             f"{'DRY RUN (CPU, tiny sizes): shapes only, not performance. ' if doc['dry_run'] else ''}"
             f"{s['size']}×{s['size']}, torch {doc['environment']['torch']}, CUDA {doc['environment']['torch_cuda']}, "
             f"cuDNN {doc['environment']['cudnn']}, {doc['elapsed_s']:.0f} s.", '',
             '## Slices/s (PyTorch)', '',
             '| model | GFLOP/slice | precision | mode | ' + ' | '.join(f'b{b}' for b in s['batches']) + ' | best TFLOP/s |',
             '|' + ' --- |' * (5 + len(s['batches']))]
    gflop = {m['name']: m['gflop_per_slice'] for m in doc['models']}
    keyed = {(r['model'], r['precision'], r['mode'], r['batch']): r for r in doc['throughput']}
    for model in gflop:
        for precision in s['precisions']:
            for mode in s['modes']:
                cells = [keyed.get((model, precision, mode, b), {}).get('slices_per_s') for b in s['batches']]
                best = max((keyed.get((model, precision, mode, b), {}).get('tflops') or 0 for b in s['batches']),
                           default=0)
                lines.append(f'| {model} | {gflop[model]:.1f} | {precision} | {mode} | '
                             + ' | '.join(fmt(c) for c in cells) + f' | {fmt(best or None, 2)} |')
    lines += ['', '## Parity (max |Δ| on a batch of 2, output range [-1, 1])', '',
              '| model | precision | device | vs torch fp32 CPU | mean | vs ONNX Runtime CPU | graph vs eager |',
              '| --- | --- | --- | --- | --- | --- | --- |']
    for r in doc['parity']:
        lines.append(f"| {r['model']} | {r['precision']} | {r['device']} | {r['max_abs_vs_torch_fp32_cpu']:.2e} | "
                     f"{r['mean_abs_vs_torch_fp32_cpu']:.2e} | {fmt_e(r.get('max_abs_vs_onnxruntime_cpu'))} | "
                     f"{fmt_e(r.get('max_abs_graph_vs_eager'))} |")
    ref = doc['onnxruntime_reference']
    checked = ref.get('skipped') or (f"{ref['runtime']}: max |Δ| {ref['max_abs_torch_fp32_cpu_vs_onnxruntime']:.2e} "
                                     f"against torch fp32 CPU with the weights read from the ONNX file, {ref['size']}²")
    lines += ['', '## ONNX Runtime', '', f'CPU reference: {checked}.']
    ort = doc['onnxruntime']
    if 'skipped' in ort:
        lines += ['', f"Execution provider run skipped: {ort['skipped']}"]
    else:
        lines += ['', f"{ort['provider']}, onnxruntime {ort['version']}", '',
                  '| model | size | placement | max abs Δ vs torch fp32 CPU | ' + ' | '.join(f'b{b}' for b in s['batches']) + ' |',
                  '|' + ' --- |' * (4 + len(s['batches']))]
        for m in ort['models']:
            if 'skipped' in m:
                lines.append(f"| {m['model']} | skipped: {m['skipped']} |")
                continue
            placed = '; '.join(f"{p}: {sum(ops.values())}" for p, ops in m['placement'].items())
            cells = {t['batch']: t.get('slices_per_s') for t in m['throughput']}
            lines.append(f"| {m['model']} | {m['size']} | {placed} | {m['max_abs_vs_torch_fp32_cpu']:.2e} | "
                         + ' | '.join(fmt(cells.get(b)) for b in s['batches']) + ' |')
    skips = [r for r in doc['throughput'] if 'skipped' in r]
    if skips:
        reasons = Counter(r['skipped'] for r in skips)
        lines += ['', 'Skipped: ' + '; '.join(f'{n}× {reason}' for reason, n in reasons.items())]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', default=DEFAULT_OUT, help='results directory (default bench/results/gpu)')
    parser.add_argument('--dry-run', action='store_true', help='CPU, 32x32, batch 1-2, fp32 and bf16, a few iterations')
    parser.add_argument('--budget-s', type=float, default=420, help='stop starting measurements after this long')
    parser.add_argument('--model-dir', default=DEFAULT_MODEL_DIR, help='the shipped model (model.json + ONNX)')
    args = parser.parse_args(argv)

    if args.dry_run:
        settings = {'device': 'cpu', 'size': 32, 'batches': [1, 2], 'precisions': ['fp32', 'bf16'],
                    'modes': ['eager', 'graph'], 'warmup': 0, 'min_iters': 1, 'max_iters': 1, 'min_time_s': 0}
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    else:
        if not torch.cuda.is_available():
            parser.error('no CUDA device visible to PyTorch; --dry-run runs on the CPU')
        torch.backends.cudnn.benchmark = True  # as ORT's exhaustive cuDNN search: best algorithm per shape
        settings = {'device': 'cuda', 'size': None, 'batches': list(BATCHES), 'precisions': list(PRECISIONS),
                    'modes': ['eager', 'graph'], 'warmup': 3, 'min_iters': 5, 'max_iters': 500, 'min_time_s': 0.25}
    deadline = Deadline(args.budget_s)

    compact, compact_info = compact_generator(args.model_dir)
    settings['size'] = settings['size'] or compact_info['native_size']
    paper, paper_info = paper_generator(compact_info['channels'], compact_info['native_size'])
    models = [(compact, compact_info), (paper, paper_info)]
    for net, info in models:
        info['gflop_per_slice'] = gflop_per_slice(net, info['channels'], settings['size'])

    reference, reference_summary = onnxruntime_reference(compact, compact_info)
    parity = torch_parity(compact, compact_info, settings, reference) + torch_parity(paper, paper_info, settings, None)
    throughput = torch_throughput(compact, compact_info, settings, deadline)
    ort_result = ort_bench(models, settings, deadline, reference)
    throughput += torch_throughput(paper, paper_info, settings, deadline)

    doc = {'schema': 1, 'tool': 'bench/gpu/bench_gpu.py', 'dry_run': args.dry_run, 'environment': environment(settings),
           'settings': {k: settings[k] for k in ('device', 'size', 'batches', 'precisions', 'modes', 'min_time_s')},
           'models': [{k: v for k, v in info.items() if k != 'onnx'} for _, info in models],
           'throughput': throughput, 'parity': parity, 'onnxruntime_reference': reference_summary,
           'onnxruntime': ort_result, 'budget_s': args.budget_s, 'elapsed_s': deadline.elapsed()}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'results.json'), 'w') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')
    table = markdown(doc)
    with open(os.path.join(args.out, 'results.md'), 'w') as f:
        f.write(table)
    print(table)
    print(f"wrote {os.path.join(args.out, 'results.json')} and results.md in {doc['elapsed_s']:.0f} s")


if __name__ == '__main__':
    main()
