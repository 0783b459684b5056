import { test } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { SliceFault } from "../src/contract/slice-errors.js";
import { Encoding, PixelType, SliceSchema } from "../src/gen/medsynth/v1/translator_pb.js";
import { DEFAULT_MAX_DIMENSION, type Raster } from "../src/imaging/raster.js";
import { TransformPool } from "../src/inference/transform-pool.js";
import { fromModelOutput, outputRange, toModelInput, type TransformSpec } from "../src/inference/transforms.js";
import { rawImage } from "./helpers/service.js";
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

/** A slice message of `raster` (float32 RAW) and maybe its reference, as the server deserializes one: its bytes in one buffer of their own. */
function sliceOf(raster: Raster, reference?: Raster) {
  const image = (r: Raster) => rawImage(r.data, r.width, r.height, PixelType.FLOAT32);
  return create(SliceSchema, { index: 0n, image: image(raster), reference: reference && image(reference) });
}

const prepare = (pool: TransformPool, raster: Raster, spec: TransformSpec) => pool.prepare(sliceOf(raster), spec, DEFAULT_MAX_DIMENSION);

test("prepare and denormalise on the pool equal the in-thread transforms, and take buffers by transfer", async () => {
  const pool = new TransformPool({ workers: 2 });
  try {
    for (const [spec, physical] of [[CT2MR, 1000], [MR2CT_RGB, 800]] as const) {
      const source = slice(150, 97, physical);
      const expectedInput = toModelInput(source, spec);
      const sent = sliceOf(source, slice(150, 97, physical * 0.9));
      const prepared = await pool.prepare(sent, spec, DEFAULT_MAX_DIMENSION);
      assert.equal(sent.image!.data.length, 0, "the message's bytes moved to the worker");
      assert.deepEqual(prepared.input, expectedInput);
      assert.equal(prepared.input.length, spec.input.channels * 64 * 64);
      assert.deepEqual([prepared.size, prepared.encoding, prepared.dicom], [{ width: 150, height: 97 }, Encoding.RAW, undefined]);
      assert.deepEqual(prepared.reference, slice(150, 97, physical * 0.9), "the reference decoded");

      // A model output as the runner hands it over: a view into a batch of two.
      const plane = spec.input.channels * 64 * 64;
      const batch = new Float32Array(2 * plane).map((_, i) => Math.sin(i / 50));
      const output = batch.subarray(plane, 2 * plane);
      const reference = slice(150, 97, physical * 1.1);
      const range = outputRange(spec, reference);
      const expected = fromModelOutput(output, spec.input.channels, spec, range, reference);
      const result = await pool.denormalise(output, spec.input.channels, spec, copy(reference), reference);
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
    const { synthetic, range, reference } = await pool.denormalise(output, 1, CT2MR, undefined, { width: 32, height: 32 });
    assert.deepEqual(range, { low: 0, high: 1000 });
    assert.equal(reference, undefined);
    assert.equal(synthetic.width, 32);
    assert.ok(synthetic.data.every((v) => Math.abs(v - 1000) < 1e-3));
  } finally {
    await pool.close();
  }
});

test("a bad slice rejects alone with its SliceFault, field and code intact; close() rejects later requests", async () => {
  const pool = new TransformPool();
  const mismatched = sliceOf(slice(64, 64, 500), slice(32, 64, 500));
  await assert.rejects(pool.prepare(mismatched, CT2MR, DEFAULT_MAX_DIMENSION), (error: SliceFault) => {
    assert.ok(error instanceof SliceFault);
    assert.deepEqual([error.code, error.field, error.detail], [status.INVALID_ARGUMENT, "slice.reference", "is 32×64 but slice.image is 64×64; they must match"]);
    return true;
  });
  const wide = sliceOf(slice(64, 64, 500));
  await assert.rejects(pool.prepare(wide, CT2MR, 32), { name: "SliceFault", code: status.INVALID_ARGUMENT, message: "slice.image.width: 64 exceeds the limit of 32" });
  assert.equal((await prepare(pool, slice(64, 64, 500), CT2MR)).input.length, 64 * 64, "the pool still serves");
  await pool.close();
  await assert.rejects(prepare(pool, slice(64, 64, 500), CT2MR), /TransformPool is closed/);
  assert.throws(() => new TransformPool({ workers: 1.5 }), /TransformPool workers must be a positive integer/);
});

test("a killed worker fails the request it held and is replaced; the pool serves on", async () => {
  const pool = new TransformPool();
  try {
    await pool.workers.ready;
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(prepare(pool, slice(64, 64, 500), CT2MR), { name: "WorkerCrash", message: "TransformPool worker died: exit code 1" });
    assert.equal(pool.workers.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    assert.deepEqual((await prepare(pool, slice(64, 64, 500), CT2MR)).input, toModelInput(slice(64, 64, 500), CT2MR));
  } finally {
    await pool.close();
  }
});
