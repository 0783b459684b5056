// Memory bounded in bytes: what a slice declares it decodes to (read from
// its header, before decoding), and the per-stream and global in-flight
// budgets that pause a stream (HTTP/2 backpressure) instead of failing it,
// on a real server over loopback.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import sharp from "sharp";
import { Direction, Encoding, ImageSchema, PixelType, SliceSchema, type TranslateResponse } from "../src/gen/medsynth/v1/translator_pb.js";
import { InFlightBudget, type Admission } from "../src/server/admission.js";
import { encodeImage } from "../src/imaging/codec.js";
import { admittedBytes, declaredBytes } from "../src/imaging/declared-size.js";
import { maxDecodedBytes } from "../src/imaging/raster.js";
import { compress, makeInstance, pattern, TS } from "./dicom-fixtures.js";
import { collect, options, rawImage, sliceRequest, useTestServer, type TranslatorTestClient } from "./helpers/service.js";

const dicom = (data: Uint8Array) => create(ImageSchema, { encoding: Encoding.DICOM, data });
const png = (data: Uint8Array) => create(ImageSchema, { encoding: Encoding.PNG, data });
const LIMIT = 4096;

describe("declared decoded size, read from the header", () => {
  it("RAW counts its bytes; PNG width × height × channels × bytes per sample from IHDR", async () => {
    assert.equal(declaredBytes(undefined, LIMIT), 0);
    assert.equal(declaredBytes(rawImage(new Array(30 * 20).fill(1), 30, 20, PixelType.FLOAT32), LIMIT), 30 * 20 * 4);
    const grey16 = await encodeImage({ width: 300, height: 200, data: new Float32Array(300 * 200).fill(1234) }, Encoding.PNG);
    assert.ok(grey16.data.length < 300 * 200, "a flat 16-bit PNG compresses well");
    assert.equal(declaredBytes(grey16, LIMIT), 300 * 200 * 2);
    const rgb = await sharp({ create: { width: 70, height: 50, channels: 3, background: "#808080" } }).png().toBuffer();
    assert.equal(declaredBytes(png(rgb), LIMIT), 70 * 50 * 3);
    const palette = await sharp({ create: { width: 70, height: 50, channels: 3, background: "#808080" } }).png({ palette: true }).toBuffer();
    assert.equal((await sharp(palette).metadata()).isPalette, true);
    assert.equal(declaredBytes(png(palette), LIMIT), 70 * 50 * 3, "a palette counts as the RGB it decodes to");
    const seeThrough = await sharp({ create: { width: 70, height: 50, channels: 4, background: { r: 128, g: 128, b: 128, alpha: 0.5 } } })
      .png({ palette: true })
      .toBuffer();
    assert.equal((await sharp(seeThrough).metadata()).channels, 4, "a palette with tRNS decodes to RGBA");
    assert.equal(declaredBytes(png(seeThrough), LIMIT), 70 * 50 * 4, "and counts as RGBA");
    // Chunks are looked for only so far (this runs on the event loop): past the cap a slice counts as having alpha.
    const grey = await sharp({ create: { width: 70, height: 50, channels: 3, background: "#808080" } }).toColourspace("b-w").png().toBuffer();
    const emptyChunk = Buffer.from([0, 0, 0, 0, 0x7a, 0x7a, 0x5a, 0x7a, 0, 0, 0, 0]); // type "zzZz": the CRC is not read
    const padded = (chunks: number) => Buffer.concat([grey.subarray(0, 33), ...Array(chunks).fill(emptyChunk), grey.subarray(33)]);
    assert.equal(declaredBytes(png(grey), LIMIT), 70 * 50);
    assert.equal(declaredBytes(png(padded(10)), LIMIT), 70 * 50, "a few ancillary chunks: no alpha");
    assert.equal(declaredBytes(png(padded(100_000)), LIMIT), 70 * 50 * 2, "a file of nothing but chunks counts high");
    assert.equal(declaredBytes(png(Uint8Array.of(1, 2, 3)), LIMIT), 3, "not a PNG: its own size (decoding refuses it at once)");
  });

  it("the budget counts the bytes sent where they are more than those declared (a 1×1 image padded with megabytes)", async () => {
    const pixel = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } }).toColourspace("b-w").png().toBuffer();
    const chunk = Buffer.alloc(12 + (1 << 20)); // an ancillary chunk of 1 MiB: length, type "zzZz", data, CRC (not read)
    chunk.writeUInt32BE(1 << 20, 0);
    chunk.write("zzZz", 4, "latin1");
    const padded = Buffer.concat([pixel.subarray(0, pixel.length - 12), chunk, pixel.subarray(pixel.length - 12)]);
    assert.equal(declaredBytes(png(padded), LIMIT), 1);
    assert.equal(admittedBytes(png(padded), LIMIT), padded.length);
    assert.equal(admittedBytes(png(pixel), LIMIT), pixel.length, "a tiny file: its own size, more than its one pixel");
    const grey = await sharp({ create: { width: 70, height: 50, channels: 3, background: "#808080" } }).toColourspace("b-w").png().toBuffer();
    assert.equal(admittedBytes(png(grey), LIMIT), 70 * 50, "a real image: what it decodes to");
    assert.equal(admittedBytes(undefined, LIMIT), 0);
  });

  it("DICOM: Rows × Columns × frames × Bits Allocated / 8, in every transfer syntax, deflated and compressed ones included", async () => {
    const pixels = (n: number) => Uint16Array.from(pattern(n, 0, 4000));
    const native = (transferSyntax: string, frames?: number) =>
      makeInstance({ modality: "MR", rows: 48, columns: 64, frames, pixels: pixels(48 * 64 * (frames ?? 1)), transferSyntax });
    for (const syntax of [TS.explicitLittle, TS.implicitLittle, TS.explicitBig, TS.deflatedLittle]) {
      assert.equal(declaredBytes(dicom(native(syntax)), LIMIT), 48 * 64 * 2, syntax);
    }
    assert.equal(declaredBytes(dicom(native(TS.explicitLittle, 3)), LIMIT), 3 * 48 * 64 * 2, "every frame");
    const rle = await compress(native(TS.explicitLittle), TS.rle);
    assert.equal(declaredBytes(dicom(rle), LIMIT), 48 * 64 * 2, "encapsulated: what it decodes to, not its size");
    // A sequence of undefined length before the pixel description is walked over.
    const withSequence = makeInstance({
      modality: "MR", rows: 40, columns: 30, pixels: pixels(40 * 30),
      attributes: { ReferencedImageSequence: [{ ReferencedSOPClassUID: "1.2.840.10008.5.1.4.1.1.4", ReferencedSOPInstanceUID: "1.2.3.4" }] },
    });
    assert.equal(declaredBytes(dicom(withSequence), LIMIT), 40 * 30 * 2);
  });

  it("a deflate bomb counts as what it inflates to, read from its first bytes, not as its size", () => {
    const bomb = makeInstance({ modality: "MR", rows: 2048, columns: 2048, frames: 4, pixels: new Uint16Array(2048 * 2048 * 4), transferSyntax: TS.deflatedLittle });
    assert.ok(bomb.length < 200_000, `the file is ${bomb.length} bytes`);
    assert.equal(declaredBytes(dicom(bomb), LIMIT), 2048 * 2048 * 4 * 2);
  });

  it("an unreadable header counts as the file (not Part 10, or uncompressed) or the most a compressed one may decode to", () => {
    assert.equal(declaredBytes(dicom(new Uint8Array(500)), LIMIT), 500);
    const header = makeInstance({ modality: "MR", rows: 8, columns: 8, pixels: new Uint16Array(64), transferSyntax: TS.rle }).slice(0, 200);
    assert.equal(declaredBytes(dicom(header), LIMIT), maxDecodedBytes(LIMIT), "a cut-off compressed file");
  });
});

/** A stream of `count` slices of `side`² float32 (declared side² × 4 bytes each); the in-flight bytes seen while it runs. */
async function sendAndWatch(client: TranslatorTestClient, server: { readonly inflightBytes: number }, streams: number, count: number, side: number) {
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, server.inflightBytes)), 1);
  try {
    const outcomes = await Promise.all(
      Array.from({ length: streams }, () => {
        const call = client.translate();
        const done = collect(call);
        call.write(options(Direction.MR_TO_CT));
        const image = rawImage(new Array(side * side).fill(0).map((_, i) => (i * 13) % 900), side, side, PixelType.FLOAT32);
        for (let i = 0; i < count; i++) call.write(sliceRequest(i, image));
        call.end();
        return done;
      }),
    );
    return { outcomes, peak };
  } finally {
    clearInterval(sampler);
  }
}

const answeredInOrder = (responses: TranslateResponse[], count: number) => {
  assert.deepEqual(
    responses.map((r) => [r.kind.case, Number(r.kind.value!.index)]),
    Array.from({ length: count }, (_, i) => ["result", i]),
  );
};

describe("in-flight byte budgets", () => {
  const side = 96;
  const slice = side * side * 4;
  // A window of 16 slices would hold them all: the bytes are the limit here.
  const served = useTestServer({ window: 16, windowBytes: 3 * slice, maxInflightBytes: 5 * slice, maxDelayMs: 15 });

  it("pause a stream at its byte window instead of failing it: every slice is answered, never more than the window in flight", async () => {
    const { outcomes, peak } = await sendAndWatch(served.client, served.server, 1, 12, side);
    const [{ responses, error }] = outcomes;
    assert.equal(error, undefined);
    answeredInOrder(responses, 12);
    assert.ok(peak > 0 && peak <= 3 * slice, `in flight at most ${3 * slice} bytes, saw ${peak}`);
    assert.equal(served.server.inflightBytes, 0, "all given back");
  });

  it("share the global budget between streams, first come first served: all answered, never more than the budget in flight", async () => {
    const { outcomes, peak } = await sendAndWatch(served.client, served.server, 4, 8, side);
    for (const { responses, error } of outcomes) {
      assert.equal(error, undefined);
      answeredInOrder(responses, 8);
    }
    assert.ok(peak > 3 * slice && peak <= 5 * slice, `in flight over one stream's window and at most ${5 * slice} bytes, saw ${peak}`);
  });

  it("admit a slice larger than both budgets alone, rather than never", async () => {
    const { outcomes } = await sendAndWatch(served.client, served.server, 1, 2, 3 * side);
    answeredInOrder(outcomes[0].responses, 2);
  });
});

describe("TranslateSlice admissions (the same on the gRPC and the web port)", () => {
  it("wait for the shared budget, in order; a cancelled wait is dropped; every release gives its bytes back", () => {
    const side = 32;
    const bytes = side * side * 4;
    const budget = new InFlightBudget({ window: 16, windowBytes: 10 * bytes, maxInflightBytes: 2 * bytes, maxDimension: LIMIT });
    const slice = create(SliceSchema, { image: rawImage(new Array(side * side).fill(1), side, side, PixelType.FLOAT32) });
    const admitted: Admission[] = [];
    const calls = Array.from({ length: 4 }, () => budget.admit(slice).subscribe((a) => admitted.push(a)));
    assert.equal(admitted.length, 2, "two fit the 2-slice budget, the others wait");
    assert.equal(budget.inflightBytes, 2 * bytes);
    calls[2].unsubscribe(); // a cancelled call: its wait is dropped, it never takes bytes
    admitted[0].release();
    assert.equal(admitted.length, 3, "the next waiting call, not the cancelled one, is admitted");
    assert.equal(budget.inflightBytes, 2 * bytes);
    for (const admission of admitted) admission.release();
    assert.equal(budget.inflightBytes, 0, "all given back");
    calls.forEach((call) => call.unsubscribe());
  });
});
