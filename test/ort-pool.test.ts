import { test } from "node:test";
import assert from "node:assert/strict";
import { InferenceStartError, OrtWorkerPool } from "../src/inference/ort-pool.js";
import { loadModelSpecs } from "../src/inference/registry.js";
import { TINY_MODELS } from "./helpers/service.js";
import { killFirstWorker } from "./helpers/workers.js";

const SIDE = 64;
const batch = (size: number) => Array.from({ length: size }, (_, row) => new Float32Array(SIDE * SIDE).map((_, i) => Math.sin((row * SIDE * SIDE + i) / 31)));

const SLICE = 256 * 256;
const slice = (seed: number) => Float32Array.from({ length: SLICE }, (_, i) => Math.sin(i * 0.013 * seed));

async function mr2ct() {
  const spec = (await loadModelSpecs("models")).find((s) => s.name === "mr2ct-phantom");
  assert.ok(spec);
  return spec;
}

test("a killed inference worker fails its batch; a successor with every model loaded and warmed up takes the next", async () => {
  const models = await loadModelSpecs(TINY_MODELS);
  const pool = await OrtWorkerPool.start(models, { workers: 1 });
  try {
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(pool.run("tiny-mr2ct", batch(2)), { name: "WorkerCrash", kind: "exit", message: "OrtWorkerPool worker died: exit code 1" });
    assert.equal(pool.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    // Sent while the successor still loads: it waits for it rather than failing.
    const [mr2ctOut, ct2mrOut] = await Promise.all([pool.run("tiny-mr2ct", batch(2)), pool.run("tiny-ct2mr", batch(1))]);
    assert.deepEqual([mr2ctOut.outputs.map((row) => row.length), mr2ctOut.channels], [[SIDE * SIDE, SIDE * SIDE], 1]);
    assert.deepEqual([ct2mrOut.outputs.map((row) => row.length), ct2mrOut.channels], [[SIDE * SIDE], 1]);
    assert.ok(mr2ctOut.outputs.every((row) => row.every((v) => v >= -1 && v <= 1)));
  } finally {
    await pool.close();
  }
});

test("a model the workers cannot load stops the start with the reason", async () => {
  const [model] = await loadModelSpecs(TINY_MODELS);
  await assert.rejects(
    OrtWorkerPool.start([{ ...model, onnxPath: `${model.onnxPath}.missing` }], { workers: 2 }),
    (error: Error) => error instanceof InferenceStartError && /^inference workers failed to start on cpu: .*\.missing/.test(error.message),
  );
  await assert.rejects(OrtWorkerPool.start([model], { workers: 0 }), InferenceStartError);
});

test("a CPU pool runs a batch as it comes (a size CUDA would pad), each row as if alone, and reports no placement", async () => {
  const pool = await OrtWorkerPool.start([await mr2ct()], { workers: 1, device: "cpu", maxBatch: 4, intraOpThreads: 1 });
  try {
    assert.equal(pool.executionProvider, "cpu");
    assert.deepEqual(pool.placement, []);
    const rows = [1, 2, 3].map(slice);
    const together = await pool.run("mr2ct-phantom", rows);
    assert.deepEqual(together.outputs.map((row) => row.length), [SLICE, SLICE, SLICE]);
    assert.ok(rows.every((row) => row.length === 0), "the rows moved to the worker");
    for (const [i, seed] of [1, 2, 3].entries()) {
      const [alone] = (await pool.run("mr2ct-phantom", [slice(seed)])).outputs;
      let diff = 0;
      for (let j = 0; j < SLICE; j++) diff = Math.max(diff, Math.abs(alone[j] - together.outputs[i][j]));
      assert.ok(diff < 1e-5, `row ${i} differs from its own run by ${diff}`);
    }
  } finally {
    await pool.close();
  }
});

test("--device auto without a usable CUDA provider falls back to the CPU, says why, and reports no placement", async () => {
  const pool = await OrtWorkerPool.start([await mr2ct()], { workers: 1, device: "auto", intraOpThreads: 1 });
  try {
    assert.equal(pool.executionProvider, "cpu");
    assert.ok(pool.fallbackReason, "the reason CUDA was not used");
    assert.deepEqual(pool.placement, []);
    const { outputs } = await pool.run("mr2ct-phantom", [slice(1)]);
    assert.deepEqual(outputs.map((row) => row.length), [SLICE]);
  } finally {
    await pool.close();
  }
});
