import { test } from "node:test";
import assert from "node:assert/strict";
import type { Raster } from "../src/imaging/raster.js";
import { TransformPool } from "../src/inference/transform-pool.js";
import { fromModelOutput, outputRange, toModelInput, type TransformSpec } from "../src/inference/transforms.js";
import { killFirstWorker } from "./helpers/workers.js";

// The shapes of the embedded models' manifests: CT in a fixed HU window, MR by percentiles.
const CT2MR: TransformSpec = {
  input: { name: "input", width: 64, height: 64, channels: 1 },
  intensity: {
    input: { window: "fixed", low: -1024, high: 3071 },
    output: { window: "percentile", low: 0.5, high: 99.5, nominal: [0, 1000] },
  },
};
const MR2CT_RGB: TransformSpec = {
  input: { name: "input", width: 64, height: 64, channels: 3 },
  intensity: { input: { window: "percentile", low: 0.5, high: 99.5 }, output: { window: "fixed", low: -1024, high: 3071 } },
};

/** A smooth non-square test slice with a bright disc, in physical units. */
function slice(width: number, height: number, scale: number): Raster {
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = Math.hypot(x - width / 2, y - height / 2);
      data[y * width + x] = scale * (r < width / 4 ? 1 : 0.2) + 7 * Math.sin(x * 0.3) * Math.cos(y * 0.2);
    }
  }
  return { width, height, data };
}

const copy = (r: Raster): Raster => ({ ...r, data: r.data.slice() });

test("normalise and denormalise on the pool equal the in-thread transforms, and take buffers by transfer", async () => {
  const pool = new TransformPool({ workers: 2 });
  try {
    for (const [spec, physical] of [[CT2MR, 1000], [MR2CT_RGB, 800]] as const) {
      const source = slice(150, 97, physical);
      const expectedInput = toModelInput(source, spec);
      const owned = copy(source);
      const { value: input } = await pool.normalise(owned, spec);
      assert.equal(owned.data.length, 0, "the slice's pixels moved to the worker");
      assert.deepEqual(input, expectedInput);
      assert.equal(input.length, spec.input.channels * 64 * 64);

      // A model output as the runner hands it over: a view into a batch of two.
      const plane = spec.input.channels * 64 * 64;
      const batch = new Float32Array(2 * plane).map((_, i) => Math.sin(i / 50));
      const output = batch.subarray(plane, 2 * plane);
      const reference = slice(150, 97, physical * 1.1);
      const range = outputRange(spec, reference);
      const expected = fromModelOutput(output, spec.input.channels, spec, range, reference);
      const { value: result } = await pool.denormalise(output, spec.input.channels, spec, copy(reference), reference);
      assert.equal(batch.length, 2 * plane, "a view into the batch is copied, never detached");
      assert.deepEqual(result.range, range);
      assert.deepEqual(result.synthetic, expected);
      assert.deepEqual(result.reference, reference, "the reference comes back intact");
    }
  } finally {
    await pool.close();
  }
});

test("without a reference an MR output maps onto the manifest's nominal range", async () => {
  const pool = new TransformPool();
  try {
    const output = new Float32Array(64 * 64).fill(1);
    const { synthetic, range, reference } = (await pool.denormalise(output, 1, CT2MR, undefined, { width: 32, height: 32 })).value;
    assert.deepEqual(range, { low: 0, high: 1000 });
    assert.equal(reference, undefined);
    assert.equal(synthetic.width, 32);
    assert.ok(synthetic.data.every((v) => Math.abs(v - 1000) < 1e-3));
  } finally {
    await pool.close();
  }
});

test("a failing request rejects alone with its error's name; close() rejects later requests", async () => {
  const pool = new TransformPool();
  const empty: Raster = { width: 0, height: 0, data: new Float32Array(0) };
  await assert.rejects(pool.normalise(empty, MR2CT_RGB), { name: "RangeError", message: /percentiles of an empty image/ });
  assert.equal((await pool.normalise(slice(64, 64, 500), CT2MR)).value.length, 64 * 64, "the pool still serves");
  await pool.close();
  await assert.rejects(pool.normalise(slice(64, 64, 500), CT2MR), /TransformPool is closed/);
  assert.throws(() => new TransformPool({ workers: 1.5 }), /TransformPool workers must be a positive integer/);
});

test("a killed worker fails the request it held and is replaced; the pool serves on", async () => {
  const pool = new TransformPool();
  try {
    await pool.workers.ready;
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(pool.normalise(slice(64, 64, 500), CT2MR), { message: "TransformPool worker died: exit code 1" });
    assert.equal(pool.workers.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    assert.deepEqual((await pool.normalise(slice(64, 64, 500), CT2MR)).value, toModelInput(slice(64, 64, 500), CT2MR));
  } finally {
    await pool.close();
  }
});
