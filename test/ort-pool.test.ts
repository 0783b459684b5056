import { test } from "node:test";
import assert from "node:assert/strict";
import { InferenceStartError, OrtWorkerPool } from "../src/inference/ort-pool.js";
import { loadModelSpecs } from "../src/inference/registry.js";
import { TINY_MODELS } from "./helpers/service.js";
import { killFirstWorker } from "./helpers/workers.js";

const SIDE = 64;
const batch = (size: number) => new Float32Array(size * SIDE * SIDE).map((_, i) => Math.sin(i / 31));

test("a killed inference worker fails its batch; a successor with every model loaded and warmed up takes the next", async () => {
  const models = await loadModelSpecs(TINY_MODELS);
  const pool = await OrtWorkerPool.start(models, { workers: 1 });
  try {
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(pool.run("tiny-mr2ct", batch(2), 2), { message: "inference failed: OrtWorkerPool worker died: exit code 1" });
    assert.equal(pool.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    // Sent while the successor still loads: it waits for it rather than failing.
    const [mr2ct, ct2mr] = await Promise.all([pool.run("tiny-mr2ct", batch(2), 2), pool.run("tiny-ct2mr", batch(1), 1)]);
    assert.deepEqual([mr2ct.output.length, mr2ct.channels], [2 * SIDE * SIDE, 1]);
    assert.deepEqual([ct2mr.output.length, ct2mr.channels], [SIDE * SIDE, 1]);
    assert.ok(mr2ct.output.every((v) => v >= -1 && v <= 1));
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
