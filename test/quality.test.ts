import { test } from "node:test";
import assert from "node:assert/strict";
import type { Raster } from "../src/imaging/raster.js";
import { percentiles } from "../src/imaging/window.js";
import { computeQuality, foregroundMask, ssim, uqi, vifp, type QualityValues } from "../src/quality/index.js";
import { raster, readF32 } from "./quality-fixtures.js";

const CT: { window: "fixed"; low: number; high: number } = { window: "fixed", low: -1024, high: 3071 };
const MR: { window: "percentile"; low: number; high: number } = { window: "percentile", low: 0.5, high: 99.5 };

const fixture = (name: string, file: string): Raster => readF32(`${name}/${file}`, 256, 256);

const close = (got: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(got - expected) <= tolerance, `${what}: got ${got}, expected ${expected}`);

test("percentiles follow NumPy's linear interpolation (values from numpy 1.24 np.percentile)", () => {
  const n = 1000;
  const v = new Float32Array(n).map((_, i) => ((i * 40503 + 12345) % 65521) / 7);
  const got = percentiles(v, [0.5, 99.5, 50, 37.3]);
  const numpy = [34.965, 9318.177578125, 4676.571533203125, 3493.5222727050786];
  got.forEach((p, i) => close(p, numpy[i], 1e-9 * Math.abs(numpy[i]), `percentile ${i}`));
  // Many ties, 256×256.
  const ties = new Float32Array(65536).map((_, i) => (((i * 40503 + 12345) % 65521) % 997) / 3);
  const [low, high] = percentiles(ties, [0.5, 99.5]);
  close(low, 1.3333333730697632, 1e-12, "ties low");
  close(high, 330.3333435058594, 1e-12, "ties high");
  const [a, b] = percentiles(new Float32Array([5, 1, 4, 2, 3]), [0.5, 99.5]);
  close(a, 1.02, 1e-12, "5 values low");
  close(b, 4.98, 1e-12, "5 values high");
});

test("identical slices: PSNR +Infinity, SSIM 1, UQI 1, VIF 1, MAE 0 (CT and MR windows)", () => {
  const reference = fixture("ct_hu", "ref.f32");
  for (const target of [CT, MR]) {
    const { quality } = computeQuality({ ...reference, data: reference.data.slice() }, reference, target);
    assert.equal(quality.psnr, Infinity);
    close(quality.ssim, 1, 1e-12, "ssim");
    close(quality.uqi, 1, 1e-12, "uqi");
    close(quality.vif, 1, 1e-8, "vif");
    assert.equal(quality.mae, 0);
  }
});

test("CT: PSNR in the [-1024, 3071] window equals PSNR in HU with data range 4095; MAE in HU", () => {
  // The ct_hu pair lies inside the window, so mapping to [0, 1] only rescales:
  // its fixture PSNR (data range 4095) must come out unchanged.
  const reference = fixture("ct_hu", "ref.f32");
  const synthetic = fixture("ct_hu", "img.f32");
  const { quality } = computeQuality(synthetic, reference, CT);
  close(quality.psnr, 36.72143, 1e-4 * 36.72143, "psnr");
  let sum = 0;
  for (let i = 0; i < reference.data.length; i++) sum += Math.abs(synthetic.data[i] - reference.data[i]);
  close(quality.mae, sum / reference.data.length, 1e-9, "mae");
  assert.ok(quality.mae > 5 && quality.mae < 20, `MAE ${quality.mae} HU for noise of sd 12.5 HU`);
  assert.ok(quality.ssim > 0.5 && quality.ssim < 1 && quality.uqi > 0 && quality.uqi < 1 && quality.vif > 0 && quality.vif < 1);
});

test("values outside the window are clipped for the [0, 1] metrics but not for MAE", () => {
  // Air at -1024 HU predicted as -2000 HU: the same in the window, 976 HU off in MAE.
  const reference = raster(64, 64, () => -1024);
  const synthetic = raster(64, 64, () => -2000);
  const { quality } = computeQuality(synthetic, reference, CT);
  assert.equal(quality.psnr, Infinity);
  assert.equal(quality.ssim, 1);
  assert.equal(quality.uqi, 1);
  assert.ok(Number.isNaN(quality.vif), "VIF of a constant reference is undefined");
  assert.equal(quality.mae, 976);
});

test("MR: the window is the reference's 0.5–99.5 percentiles", () => {
  // Reference 0..9999 (one value per pixel, 100×100): p0.5 = 49.995, p99.5 = 9949.005.
  const reference = raster(100, 100, (r, c) => r * 100 + c);
  const synthetic = raster(100, 100, (r, c) => r * 100 + c + 99);
  const { quality } = computeQuality(synthetic, reference, MR);
  // Inside the window the difference is 99 / 9899.01 ≈ 0.01; near the top both clip to 1.
  const low = 49.995, span = 9949.005 - 49.995;
  let sum = 0;
  for (let v = 0; v < 10000; v++) {
    const clip = (u: number) => Math.min(1, Math.max(0, (u - low) / span));
    sum += (clip(v + 99) - clip(v)) ** 2;
  }
  close(quality.psnr, 10 * Math.log10(10000 / sum), 1e-5, "psnr");
  assert.equal(quality.mae, 99);
});

/** A "head": a disk of radius 40 at the centre of 128×128, tissue 40 HU, an air pocket inside, air around. */
function head(): Raster {
  return raster(128, 128, (r, c) => {
    const d = Math.hypot(r - 64, c - 60);
    if (d > 40) return -1024;
    if (Math.hypot(r - 70, c - 62) < 8) return -1000; // sinus: below the 0.05 level, a hole to fill
    return 40 + 30 * Math.sin(r / 3) * Math.cos(c / 5);
  });
}

test("foreground mask: threshold at 0.05 of the window, holes filled, bounding box", () => {
  const reference = head();
  const unit = reference.data.map((v) => Math.min(1, Math.max(0, (v + 1024) / 4095)));
  const { mask, box } = foregroundMask(unit, 128, 128);
  assert.deepEqual(box, { left: 20, top: 24, width: 81, height: 81 });
  assert.equal(mask[70 * 128 + 62], 1, "the air pocket inside the head is filled");
  assert.equal(mask[0], 0);
  let count = 0;
  for (const m of mask) count += m;
  // Every pixel within 40 px of the centre.
  let disk = 0;
  for (let r = 0; r < 128; r++) for (let c = 0; c < 128; c++) if (Math.hypot(r - 64, c - 60) <= 40) disk++;
  assert.equal(count, disk);

  // A ring open to the border through a 4-connected gap is not a hole; a
  // diagonal-only gap does not let the background in.
  const w = 7;
  const rows = [
    "0000000",
    "0111110",
    "0100010",
    "0100010",
    "0111010", // gap at column 4 opens the inside downwards ...
    "0000010", // ... to the border region
    "0000000",
  ];
  const open = Float32Array.from(rows.join("").split(""), (ch) => (ch === "1" ? 1 : 0));
  assert.equal(foregroundMask(open, w, 7).mask[2 * w + 2], 0, "connected to the border: stays background");
  const diagonal = ["00000", "01110", "01010", "01101", "00000"];
  const closed = Float32Array.from(diagonal.join("").split(""), (ch) => (ch === "1" ? 1 : 0));
  assert.equal(foregroundMask(closed, 5, 5).mask[2 * 5 + 2], 1, "only a diagonal gap: a hole");
  assert.equal(foregroundMask(new Float32Array(25), 5, 5).box, undefined);
});

test("foreground quality: PSNR and MAE over the mask, SSIM/UQI/VIF over its bounding box", () => {
  const reference = head();
  const rnd = (i: number) => Math.sin(i * 12.9898) * 0.5;
  // Errors outside the head only: the foreground is perfect.
  const outside = raster(128, 128, (r, c) => {
    const v = reference.data[r * 128 + c];
    return Math.hypot(r - 64, c - 60) > 41 ? v + 300 + 200 * rnd(r * 128 + c) : v;
  });
  const a = computeQuality(outside, reference, CT, { foreground: true });
  assert.ok(Number.isFinite(a.quality.psnr) && a.quality.mae > 0);
  assert.ok(a.foreground);
  assert.equal(a.foreground.psnr, Infinity);
  assert.equal(a.foreground.mae, 0);

  // Errors inside the filled air pocket count in the foreground.
  const pocket = raster(128, 128, (r, c) => reference.data[r * 128 + c] + (Math.hypot(r - 70, c - 62) < 8 ? 500 : 0));
  const b = computeQuality(pocket, reference, CT, { foreground: true });
  assert.ok(b.foreground);
  assert.ok(b.foreground.mae > 0 && b.foreground.psnr < b.quality.psnr, "the pocket is part of the mask");
  let pocketPixels = 0, maskPixels = 0;
  for (let r = 0; r < 128; r++) for (let c = 0; c < 128; c++) {
    if (Math.hypot(r - 64, c - 60) <= 40) maskPixels++;
    if (Math.hypot(r - 70, c - 62) < 8) pocketPixels++;
  }
  close(b.foreground.mae, (500 * pocketPixels) / maskPixels, 1e-3, "foreground MAE");

  // Window metrics equal the kernels on the cropped [0, 1] (×255 for VIF) images.
  const box = { left: 20, top: 24, width: 81, height: 81 };
  const cropUnit = (img: Raster, scale: number) => ({
    width: box.width,
    height: box.height,
    data: Float32Array.from({ length: box.width * box.height }, (_, i) => {
      const v = img.data[(box.top + Math.floor(i / box.width)) * 128 + box.left + (i % box.width)];
      return scale * Math.min(1, Math.max(0, (v + 1024) / 4095));
    }),
  });
  const expected: Partial<QualityValues> = {
    ssim: ssim(cropUnit(reference, 1), cropUnit(pocket, 1), 1),
    uqi: uqi(cropUnit(reference, 1), cropUnit(pocket, 1)),
    vif: vifp(cropUnit(reference, 255), cropUnit(pocket, 255)),
  };
  for (const [k, v] of Object.entries(expected)) close(b.foreground[k as keyof QualityValues], v, 1e-6, `foreground ${k}`);
  assert.notEqual(b.foreground.ssim, b.quality.ssim);
  // Without the option there is no foreground entry.
  assert.equal(computeQuality(pocket, reference, CT).foreground, undefined);
});

test("an empty foreground gives NaN foreground metrics; mismatched sizes throw", () => {
  const air = raster(64, 64, () => -1024);
  const r = computeQuality(raster(64, 64, () => -1000), air, CT, { foreground: true });
  assert.ok(r.foreground && Object.values(r.foreground).every(Number.isNaN));
  assert.throws(() => computeQuality(raster(64, 32, () => 0), air, CT), RangeError);
});
