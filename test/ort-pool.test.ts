import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModelSpecs } from "../src/inference/registry.js";
import { OrtWorkerPool } from "../src/inference/ort-pool.js";

const SLICE = 256 * 256;

async function mr2ct() {
  const spec = (await loadModelSpecs("models")).find((s) => s.name === "mr2ct-phantom");
  assert.ok(spec);
  return spec;
}

const slice = (seed: number) => Float32Array.from({ length: SLICE }, (_, i) => Math.sin(i * 0.013 * seed));

test("a CPU pool runs a batch as it comes (a size CUDA would pad), each row as if alone, and reports no placement", async () => {
  const pool = await OrtWorkerPool.start([await mr2ct()], { workers: 1, device: "cpu", maxBatch: 4, intraOpThreads: 1 });
  try {
    assert.equal(pool.executionProvider, "cpu");
    assert.deepEqual(pool.placement, []);
    const batch = new Float32Array(3 * SLICE);
    [1, 2, 3].forEach((seed, i) => batch.set(slice(seed), i * SLICE));
    const together = await pool.run("mr2ct-phantom", batch, 3);
    assert.equal(together.output.length, 3 * SLICE);
    for (const [i, seed] of [1, 2, 3].entries()) {
      const alone = await pool.run("mr2ct-phantom", slice(seed), 1);
      let diff = 0;
      for (let j = 0; j < SLICE; j++) diff = Math.max(diff, Math.abs(alone.output[j] - together.output[i * SLICE + j]));
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
    const { output } = await pool.run("mr2ct-phantom", slice(1), 1);
    assert.equal(output.length, SLICE);
  } finally {
    await pool.close();
  }
});
