import { describe, it } from "node:test";
import assert from "node:assert/strict";
import sharp from "sharp";
import { create } from "@bufbuild/protobuf";
import { Encoding, ImageSchema, PixelType } from "../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage, encodeImage } from "../src/imaging/codec.js";
import { createDerivedSeries, decodeDicom } from "../src/imaging/dicom.js";
import { handMadePng, PNG_PALETTE, unfilteredRows } from "./helpers/png.js";

const gradient = (n: number, low: number, high: number) =>
  Float32Array.from({ length: n * n }, (_, i) => low + ((high - low) * i) / (n * n - 1));

describe("16-bit outputs keep the synthetic values", () => {
  it("PNG: integer HU stay exact with slope 1 and intercept −1024", async () => {
    const hu = Float32Array.from({ length: 64 * 64 }, (_, i) => -1024 + (i % 4096));
    const png = await encodeImage({ width: 64, height: 64, data: hu }, Encoding.PNG);
    assert.deepEqual([png.rescaleSlope, png.rescaleIntercept], [1, -1024]);
    assert.deepEqual((await decodeImage(png, "png")).raster.data, hu);
  });

  it("PNG: relative MR intensities in [0, 1] keep 16-bit precision", async () => {
    const mr = gradient(64, 0, 1);
    const back = (await decodeImage(await encodeImage({ width: 64, height: 64, data: mr }, Encoding.PNG), "png")).raster.data;
    for (let i = 0; i < mr.length; i++) assert.ok(Math.abs(back[i] - mr[i]) <= 1 / 65535, `sample ${i}: ${back[i]} vs ${mr[i]}`);
  });

  it("DICOM MR: relative intensities in [0, 1] stay a gradient, not 0s and 1s", async () => {
    const series = createDerivedSeries({ direction: "ct2mr", modelName: "m", modelVersion: "1" });
    const mr = gradient(32, 0, 1);
    const { raster } = await decodeDicom(series.encode({ width: 32, height: 32, data: mr }), "dicom");
    assert.ok(new Set(raster.data).size > 1000, `only ${new Set(raster.data).size} distinct values`);
    for (let i = 1; i < raster.data.length; i++) assert.ok(raster.data[i] >= raster.data[i - 1], "order kept");
  });
});

/** One chunk of a PNG, length to CRC, as stored. */
function pngChunk(file: Buffer, type: string): Buffer {
  for (let at = 8; at + 8 <= file.length; at += 12 + file.readUInt32BE(at)) {
    if (file.toString("latin1", at + 4, at + 8) === type) return file.subarray(at, at + 12 + file.readUInt32BE(at));
  }
  throw new Error(`no ${type} chunk`);
}

describe("PNG: grey stored as colour", () => {
  const side = 48;
  // A grey ramp of 16 levels (few enough for an exact palette), 8-bit.
  const grey8 = Uint8Array.from({ length: side * side }, (_, i) => 17 * (Math.floor(i / side) % 16));
  const png = (data: Uint8Array | Uint16Array, channels: 1 | 2 | 3 | 4) =>
    sharp(data, { raw: { width: side, height: side, channels } });
  const interleave = (grey: Uint8Array | Uint16Array, channels: number, extra = (_c: number, v: number) => v) => {
    const out = new (grey.constructor as Uint8ArrayConstructor | Uint16ArrayConstructor)(grey.length * channels);
    grey.forEach((v, i) => { for (let c = 0; c < channels; c++) out[i * channels + c] = c === 3 ? (grey instanceof Uint16Array ? 65535 : 255) : extra(c, v); });
    return out;
  };
  const decoded = async (bytes: Buffer) => (await decodeImage(create(ImageSchema, { encoding: Encoding.PNG, data: bytes }), "slice.image")).raster.data;

  it("RGB, RGBA and palette PNGs of a grey slice decode to exactly its greyscale values", async () => {
    const expected = Float32Array.from(grey8);
    assert.deepEqual(await decoded(await png(grey8, 1).png().toBuffer()), expected, "greyscale");
    assert.deepEqual(await decoded(await png(interleave(grey8, 3), 3).png().toBuffer()), expected, "RGB");
    assert.deepEqual(await decoded(await png(interleave(grey8, 4), 4).png().toBuffer()), expected, "RGBA");
    const palette = await png(interleave(grey8, 3), 3).png({ palette: true, colours: 16, dither: 0 }).toBuffer();
    assert.equal((await sharp(palette).metadata()).isPalette, true);
    assert.deepEqual(await decoded(palette), expected, "palette");
  });

  it("a 16-bit RGB PNG of a grey slice keeps its 16-bit values", async () => {
    const grey16 = Uint16Array.from({ length: side * side }, (_, i) => 1000 + 7 * i);
    const rgb16 = await png(interleave(grey16, 3), 3).toColourspace("rgb16").png().toBuffer();
    assert.equal((await sharp(rgb16).metadata()).depth, "ushort");
    assert.deepEqual(await decoded(rgb16), Float32Array.from(grey16));
  });

  it("channels a level or two apart (a JPEG-made grey) give their mean", async () => {
    const near = interleave(grey8, 3, (c, v) => Math.min(255, v + (c === 2 ? 2 : 0)));
    const back = await decoded(await png(near, 3).png().toBuffer());
    back.forEach((v, i) => assert.equal(v, Math.round((2 * grey8[i] + Math.min(255, grey8[i] + 2)) / 3)));
  });

  it("an embedded colour profile does not remap the stored values", async () => {
    const grey16 = Uint16Array.from({ length: side * side }, (_, i) => 23 * i);
    const plain = await png(interleave(grey16, 3), 3).toColourspace("rgb16").png().toBuffer();
    // The same stored samples with a profile: sharp's iCCP chunk (sRGB, which sharp would turn into P3 for 16 bits) after IHDR.
    const iccp = pngChunk(await sharp(plain).withIccProfile("srgb").png().toBuffer(), "iCCP");
    const profiled = Buffer.concat([plain.subarray(0, 33), iccp, plain.subarray(33)]);
    assert.equal((await sharp(profiled).metadata()).hasProfile, true);
    assert.deepEqual(await decoded(profiled), Float32Array.from(grey16));
  });

  it("1-, 2- and 4-bit greyscale keep their stored values (a decoder scales them to 0-255 for display)", async () => {
    // Four pixels in one row: 4 bits 0, 1, 9, 15; 2 bits 0, 1, 2, 3; 1 bit 1, 0, 1, 1 (then padding).
    for (const [bits, row, expected] of [
      [4, [0x01, 0x9f], [0, 1, 9, 15]],
      [2, [0x1b], [0, 1, 2, 3]],
      [1, [0xb0], [1, 0, 1, 1]],
    ] as const) {
      assert.deepEqual(await decoded(handMadePng({ width: 4, height: 1, bits, rows: [0, ...row] })), Float32Array.from(expected), `${bits} bits`);
    }
  });

  it("a palette below 8 bits: each index's entry, as grey", async () => {
    // 2-bit indices 0..3 into a palette of greys 200, 10, 90, 255 (entry 3 stored as near-grey 254/255/255).
    const palette = [200, 200, 200, 10, 10, 10, 90, 90, 90, 254, 255, 255];
    const file = handMadePng({ width: 5, height: 2, bits: 2, colour: PNG_PALETTE, palette, rows: unfilteredRows([0, 1, 2, 3, 0, 3, 2, 1, 0, 1], 5, 2) });
    assert.deepEqual(await decoded(file), Float32Array.from([200, 10, 90, 255, 200, 255, 90, 10, 200, 10]));
  });

  it("a pixel_type that is not the PNG's own is refused, naming the field", async () => {
    const image = create(ImageSchema, { encoding: Encoding.PNG, data: await png(grey8, 1).png().toBuffer(), pixelType: PixelType.UINT16 });
    await assert.rejects(decodeImage(image, "slice.image"), /slice\.image\.pixel_type: UINT16 but the PNG stores UINT8 samples/);
    image.pixelType = PixelType.UINT8;
    assert.deepEqual((await decodeImage(image, "slice.image")).raster.data, Float32Array.from(grey8));
  });

  it("a slice in real colour is refused, naming the field and what to send", async () => {
    const overlay = interleave(grey8, 3, (c, v) => (c === 0 ? 255 : v));
    await assert.rejects(decoded(await png(overlay, 3).png().toBuffer()), (error: Error) => {
      assert.match(error.message, /slice\.image\.data: PNG is a colour image \(red, green and blue differ by up to 255 of 255 at \d+ pixels\)/);
      assert.match(error.message, /send a greyscale PNG/);
      return true;
    });
  });
});
