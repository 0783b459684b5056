// bench/gpu/bench_gpu.py in its CPU dry run: the same code paths as on a GPU
// (models, weights from the ONNX file, timing, parity, report) at toy sizes.
// Needs the Python stack that .ci/run installs (not npm ci): skipped, saying
// so, when the interpreter cannot import torch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PYTHON = existsSync(".venv/bin/python") ? ".venv/bin/python" : "python3";

interface Row {
  model: string;
  precision: string;
  mode: string;
  batch: number;
  slices_per_s?: number;
  ms_per_batch?: number;
  iters?: number;
  skipped?: string;
}

interface Results {
  schema: number;
  dry_run: boolean;
  settings: { device: string; size: number; batches: number[]; precisions: string[]; modes: string[] };
  models: { name: string; ngf: number; n_blocks: number; channels: number; native_size: number; gflop_per_slice: number }[];
  throughput: Row[];
  parity: { model: string; precision: string; max_abs_vs_torch_fp32_cpu: number; mean_abs_vs_torch_fp32_cpu: number }[];
  onnxruntime_reference: { skipped?: string; max_abs_torch_fp32_cpu_vs_onnxruntime?: number };
  onnxruntime: { skipped?: string; provider?: string; models?: { model: string; placement?: Record<string, unknown> }[] };
  elapsed_s: number;
}

/** Why `import torch` fails, or undefined when it works. */
function torchMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8", timeout: 120_000 });
  if (probe.error) return probe.error.message;
  return probe.status === 0 ? undefined : probe.stderr.trim().split("\n").at(-1);
}

test("bench/gpu dry run on the CPU: both generators, every batch and precision timed, parity and ONNX Runtime checks, JSON and Markdown", (t) => {
  const missing = torchMissing();
  if (missing !== undefined) {
    t.skip(`${PYTHON} cannot import torch (${missing}); the Python stack comes from .ci/run, not npm ci`);
    return;
  }
  const out = mkdtempSync(join(tmpdir(), "medsynth-bench-gpu-"));
  try {
    const run = spawnSync(PYTHON, ["bench/gpu/bench_gpu.py", "--dry-run", "--out", out], { encoding: "utf8", timeout: 300_000 });
    assert.equal(run.status, 0, `bench_gpu.py --dry-run failed:\n${run.stdout}\n${run.stderr}`);
    const doc = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Results;
    assert.equal(doc.schema, 1);
    assert.equal(doc.dry_run, true);
    assert.deepEqual(doc.settings, { device: "cpu", size: 32, batches: [1, 2], precisions: ["fp32", "bf16"], modes: ["eager", "graph"], min_time_s: 0 });

    // The compact generator's shape comes from the shipped ONNX weights, the paper one is ngf 64 with 9 blocks.
    const [compact, paper] = doc.models;
    assert.deepEqual([compact.name, compact.ngf, compact.n_blocks, compact.channels, compact.native_size], ["compact", 32, 6, 1, 256]);
    assert.deepEqual([paper.name, paper.ngf, paper.n_blocks], ["paper", 64, 9]);
    // 17.3 GFLOP per 256² slice, scaled to the 32² of the dry run (convolutions cost per pixel).
    assert.ok(Math.abs(compact.gflop_per_slice - 17.32 / 64) < 0.01, `compact: ${compact.gflop_per_slice} GFLOP at 32²`);
    assert.ok(paper.gflop_per_slice > 4 * compact.gflop_per_slice);

    assert.equal(doc.throughput.length, 2 * 2 * 2 * 2, "model × precision × mode × batch");
    for (const row of doc.throughput) {
      const label = `${row.model} ${row.precision} ${row.mode} b${row.batch}`;
      if (row.mode === "graph") {
        assert.match(row.skipped ?? "", /CUDA/, `${label}: graphs need CUDA`);
        continue;
      }
      assert.equal(row.skipped, undefined, `${label}: ${row.skipped}`);
      assert.ok(row.iters! >= 1 && row.ms_per_batch! > 0, label);
      assert.ok(Math.abs(row.slices_per_s! - (row.batch * 1000) / row.ms_per_batch!) < 1e-6 * row.slices_per_s!, label);
    }

    assert.deepEqual(doc.parity.map((p) => `${p.model} ${p.precision}`), ["compact fp32", "compact bf16", "paper fp32", "paper bf16"]);
    for (const p of doc.parity) {
      if (p.precision === "fp32") assert.ok(p.max_abs_vs_torch_fp32_cpu < 1e-6, `${p.model} fp32 on the CPU is the reference`);
      // bf16 really ran in bf16 (it differs), and stays close on a [-1, 1] output.
      else assert.ok(p.max_abs_vs_torch_fp32_cpu > 0 && p.max_abs_vs_torch_fp32_cpu < 0.25, `${p.model} bf16: ${p.max_abs_vs_torch_fp32_cpu}`);
      assert.ok(p.mean_abs_vs_torch_fp32_cpu <= p.max_abs_vs_torch_fp32_cpu);
    }

    // Weights read from the ONNX file by the script's own protobuf reader agree with ONNX Runtime running that file.
    const reference = doc.onnxruntime_reference;
    if (reference.skipped === undefined) assert.ok(reference.max_abs_torch_fp32_cpu_vs_onnxruntime! < 1e-4, JSON.stringify(reference));
    else t.diagnostic(`ONNX Runtime reference skipped: ${reference.skipped}`);
    if (doc.onnxruntime.skipped === undefined) {
      assert.equal(doc.onnxruntime.provider, "CPUExecutionProvider", "a dry run never uses CUDA");
      for (const m of doc.onnxruntime.models ?? []) assert.deepEqual(Object.keys(m.placement ?? {}), ["CPUExecutionProvider"], m.model);
    }

    const table = readFileSync(join(out, "results.md"), "utf8");
    assert.match(table, /DRY RUN/);
    assert.match(table, /^\| compact \| 0\.3 \| bf16 \| eager \| [\d.]+ \| [\d.]+ \|/m);
    t.diagnostic(`dry run took ${doc.elapsed_s.toFixed(0)} s`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
