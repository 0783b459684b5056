import { test } from "node:test";
import assert from "node:assert/strict";
import { create, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { SliceFault } from "../src/contract/slice-errors.js";
import { fromGrpcMessage, ownsBuffer } from "../src/contract/wire.js";
import { Direction, Encoding, PixelType, SliceSchema, type Image } from "../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage } from "../src/imaging/codec.js";
import { createDerivedSeries } from "../src/imaging/dicom.js";
import type { Raster } from "../src/imaging/raster.js";
import { TransformPool, type SliceImages } from "../src/inference/transform-pool.js";
import { fromModelOutput, outputRange, toModelInput, type TransformSpec } from "../src/inference/transforms.js";
import { until } from "./helpers/until.js";
import { killFirstWorker } from "./helpers/workers.js";

// The shapes of the embedded models' manifests: CT in a fixed HU window, MR by percentiles.
const CT2MR: TransformSpec = {
  name: "ct2mr-test",
  direction: Direction.CT_TO_MR,
  input: { name: "input", width: 64, height: 64, channels: 1 },
  intensity: {
    input: { window: "fixed", low: -1024, high: 3071 },
    output: { window: "percentile", low: 0.5, high: 99.5, nominal: [0, 1000] },
  },
};
const MR2CT_RGB: TransformSpec = {
  name: "mr2ct-rgb-test",
  direction: Direction.MR_TO_CT,
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

/** A raster as a RAW float32 Image, its bytes a plain copy. */
function rawImage({ width, height, data }: Raster): Image {
  const bytes = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return { $typeName: "medsynth.v1.Image", encoding: Encoding.RAW, data: bytes, width, height, pixelType: PixelType.FLOAT32, rescaleSlope: 1, rescaleIntercept: 0 };
}

const images = (image: Image | undefined, reference?: Image): SliceImages => ({ image, reference, frame: undefined, maxDimension: 4096 });

/** A Slice as the server receives it: decoded from its own grpc-js message buffer, 5-byte frame header first. */
function received(image: Image, reference?: Image) {
  const bytes = toBinary(SliceSchema, create(SliceSchema, { index: 3n, image, reference }));
  const framed = Buffer.allocUnsafe(bytes.byteLength + 5);
  framed.set(bytes, 5);
  return fromGrpcMessage(SliceSchema, framed.subarray(5));
}

const copy = (r: Raster): Raster => ({ ...r, data: r.data.slice() });
const floats = (bytes: Uint8Array) => new Float32Array(bytes.slice().buffer);

test("prepare decodes, checks and normalises on a worker as the in-thread transforms do; a received message's buffer moves there whole", async () => {
  const pool = new TransformPool({ workers: 2 });
  try {
    for (const [spec, physical] of [[CT2MR, 1000], [MR2CT_RGB, 800]] as const) {
      const source = slice(150, 97, physical);
      const reference = slice(150, 97, physical * 1.1);
      // Bytes in a larger buffer that is not a received message's own: copied, not taken.
      const plain = rawImage(source);
      const shared = new Uint8Array(plain.data.byteLength + 8);
      shared.set(plain.data, 8);
      const { value, computeMs } = await pool.prepare(images({ ...plain, data: shared.subarray(8) }, rawImage(reference)), spec);
      assert.deepEqual(value.input, toModelInput(source, spec));
      assert.equal(value.input.length, spec.input.channels * 64 * 64);
      assert.deepEqual(value.size, { width: 150, height: 97 });
      assert.equal(value.encoding, Encoding.RAW);
      assert.deepEqual(value.reference, reference, "the reference decoded to physical units");
      assert.ok(computeMs >= value.decodeMs && value.decodeMs >= 0);
      assert.equal(shared.byteLength, 150 * 97 * 4 + 8, "the larger buffer stays here");

      const message = received(rawImage(source), rawImage(reference));
      assert.ok(ownsBuffer(message.image!.data) && message.image!.data.buffer === message.reference!.data.buffer);
      const moved = (await pool.prepare(images(message.image, message.reference), spec)).value;
      assert.deepEqual(moved.input, value.input);
      assert.deepEqual(moved.reference, reference);
      assert.equal(message.image!.data.byteLength, 0, "the message's buffer moved to the worker, not copied");
    }
  } finally {
    await pool.close();
  }
});

test("finish maps an output back and encodes RAW and PNG there, DICOM here; pixels kept for the metrics are their own", async () => {
  const pool = new TransformPool();
  try {
    const spec = CT2MR;
    const reference = slice(150, 97, 1100);
    const output = new Float32Array(64 * 64).map((_, i) => Math.sin(i / 50));
    const range = outputRange(spec, reference);
    const expected = fromModelOutput(output, 1, spec, range, reference);
    const size = { width: 150, height: 97 };

    const raw = (await pool.finish(output.slice(), 1, spec, copy(reference), size, { encoding: Encoding.RAW, keepSynthetic: true })).value;
    assert.deepEqual(raw.range, range);
    assert.deepEqual(floats(raw.image!.data), expected.data);
    assert.deepEqual(raw.synthetic, expected);
    assert.notEqual(raw.synthetic!.data.buffer, raw.image!.data.buffer, "the metrics may take the pixels without taking the image");
    assert.deepEqual(raw.reference, reference, "the reference comes back intact");

    const png = (await pool.finish(output.slice(), 1, spec, undefined, size, { encoding: Encoding.PNG, keepSynthetic: false })).value;
    assert.equal(png.synthetic, undefined);
    assert.equal(png.image!.encoding, Encoding.PNG);
    const back = (await decodeImage(png.image, "png")).raster;
    const nominal = fromModelOutput(output, 1, spec, outputRange(spec, undefined), size);
    assert.ok(back.data.every((v, i) => Math.abs(v - nominal.data[i]) <= png.image!.rescaleSlope), "PNG holds the slice to its 16-bit step");

    const dicom = (await pool.finish(output.slice(), 1, spec, copy(reference), size, { encoding: Encoding.DICOM, keepSynthetic: true })).value;
    assert.equal(dicom.image, undefined, "the stream's derived series encodes DICOM");
    assert.deepEqual(dicom.synthetic, expected);
    const series = createDerivedSeries({ direction: "ct2mr", modelName: "m", modelVersion: "1" });
    assert.ok(series.encode(dicom.synthetic!).byteLength > 150 * 97 * 2);
  } finally {
    await pool.close();
  }
});

test("an MR reference whose percentiles coincide (a slice above the head) lends its full range, not a window of zero width", () => {
  // 99.6 % zeros: the 0.5 and 99.5 percentiles are both 0.
  const data = new Float32Array(128 * 128);
  for (let i = 0; i < 64; i++) data[i * 97] = 400 + 10 * i;
  assert.deepEqual(outputRange(CT2MR, { width: 128, height: 128, data }), { low: 0, high: 1030 });
  assert.deepEqual(outputRange(CT2MR, { width: 128, height: 128, data: new Float32Array(16384).fill(7) }), { low: 7, high: 7 });
});

test("without a reference an MR output maps onto the manifest's nominal range", async () => {
  const pool = new TransformPool();
  try {
    const output = new Float32Array(64 * 64).fill(1);
    const { image, range, reference } = (await pool.finish(output, 1, CT2MR, undefined, { width: 32, height: 32 }, { encoding: Encoding.RAW, keepSynthetic: false })).value;
    assert.deepEqual(range, { low: 0, high: 1000 });
    assert.equal(reference, undefined);
    assert.equal(image!.width, 32);
    assert.ok(floats(image!.data).every((v) => Math.abs(v - 1000) < 1e-3));
  } finally {
    await pool.close();
  }
});

test("a bad slice rejects alone with its SliceFault, field and code intact; close() rejects later requests", async () => {
  const pool = new TransformPool();
  const good = () => rawImage(slice(64, 64, 500));
  const fault = (field: string, message: RegExp) => (error: unknown) =>
    error instanceof SliceFault && error.code === status.INVALID_ARGUMENT && error.field === field && message.test(error.message);
  const short = good();
  await assert.rejects(pool.prepare(images({ ...short, data: short.data.subarray(1) }), CT2MR), fault("slice.image.data", /16383 bytes, expected 16384/));
  await assert.rejects(pool.prepare(images(undefined), CT2MR), fault("slice.image", /missing/));
  await assert.rejects(pool.prepare(images(good(), rawImage(slice(32, 64, 500))), CT2MR), (error: SliceFault) => {
    assert.ok(error instanceof SliceFault);
    assert.deepEqual([error.code, error.field, error.detail], [status.INVALID_ARGUMENT, "slice.reference", "is 32×64 but slice.image is 64×64; they must match"]);
    return true;
  });
  await assert.rejects(pool.prepare({ ...images(good()), maxDimension: 32 }, CT2MR), { name: "SliceFault", code: status.INVALID_ARGUMENT, message: "slice.image.width: 64 exceeds the limit of 32" });
  assert.equal((await pool.prepare(images(good()), CT2MR)).value.input.length, 64 * 64, "the pool still serves");
  await pool.close();
  await assert.rejects(pool.prepare(images(good()), CT2MR), /TransformPool is closed/);
  assert.throws(() => new TransformPool({ workers: 1.5 }), /TransformPool workers must be a positive integer/);
});

test("a killed worker fails the request it held and is replaced; the pool serves on", async () => {
  const pool = new TransformPool();
  try {
    await pool.workers.ready;
    const victim = killFirstWorker(pool.workers);
    await assert.rejects(pool.prepare(images(rawImage(slice(64, 64, 500))), CT2MR), { name: "WorkerCrash", message: "TransformPool worker died: exit code 1" });
    assert.equal(pool.workers.size, 1);
    assert.notEqual(pool.workers.threads[0], victim, "a fresh worker took its place");
    assert.deepEqual((await pool.prepare(images(rawImage(slice(64, 64, 500))), CT2MR)).value.input, toModelInput(slice(64, 64, 500), CT2MR));
  } finally {
    await pool.close();
  }
});

test("a worker whose WebAssembly memory grew for a large slice is replaced after answering; small slices keep it", async () => {
  const pool = new TransformPool();
  const crashes: unknown[] = [];
  pool.workers.crashes.subscribe((crash) => crashes.push(crash));
  try {
    await pool.workers.ready;
    const [first] = pool.workers.threads;
    await pool.prepare(images(rawImage(slice(256, 256, 500))), CT2MR);
    assert.equal(pool.workers.threads[0], first, "256² fits in the memory a worker keeps");
    // The pixel kernels lay out 8 bytes per sample: 3000² grows their memory to about 72 MB, past RETAINED_MEMORY_BYTES.
    await pool.prepare(images(rawImage(slice(3000, 3000, 500))), CT2MR);
    await until(() => pool.workers.threads[0] !== first, "the grown worker to be replaced");
    assert.deepEqual((await pool.prepare(images(rawImage(slice(64, 64, 500))), CT2MR)).value.input, toModelInput(slice(64, 64, 500), CT2MR), "the successor serves");
    assert.deepEqual(crashes, [], "a retirement is not a crash");
  } finally {
    await pool.close();
  }
});
