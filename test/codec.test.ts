import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Encoding } from "../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage, encodeImage } from "../src/imaging/codec.js";
import { createDerivedSeries, decodeDicom } from "../src/imaging/dicom.js";

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
