import { test } from "node:test";
import assert from "node:assert/strict";
import type { Raster } from "../src/imaging/raster.js";
import * as reference from "../src/quality/kernels.js";
import { computeQuality, computeQualityTs, type QualityReport, type TargetWindow } from "../src/quality/quality.js";
import { MAX_MEMORY_BYTES, wasmFailure, wasmMetrics, type WasmMetrics } from "../src/quality/wasm.js";
import { random, raster, readF32 } from "./quality-fixtures.js";

// The WebAssembly kernels against the TypeScript ones (the reference): per
// window the arithmetic is the same, only the sums over windows are added in
// another order, so every value must agree to 1e-10 relative.

const CT: TargetWindow = { window: "fixed", low: -1024, high: 3071 };
const MR: TargetWindow = { window: "percentile", low: 0.5, high: 99.5 };

function kernels(): WasmMetrics {
  const wasm = wasmMetrics();
  assert.ok(wasm, `the WebAssembly kernels did not load: ${String(wasmFailure())}`);
  return wasm;
}

/** Structure plus texture on [0, scale]; a second image is a noisy, slightly blurred-looking variant. */
function pair(width: number, height: number, scale: number, seed: number): [Raster, Raster] {
  const rnd = random(seed);
  const x = raster(width, height, (r, c) => scale * (0.5 + 0.3 * Math.sin(r / 7) * Math.cos(c / 11) + 0.2 * rnd()));
  const y = { ...x, data: x.data.map((v) => v + scale * 0.15 * (rnd() - 0.5)) };
  return [x, y];
}

/** Equal to 1e-10 relative; NaN only where the reference is NaN, infinities exactly. */
function same(got: number, expected: number, what: string): void {
  if (!Number.isFinite(expected)) {
    assert.ok(Object.is(got, expected) || (Number.isNaN(got) && Number.isNaN(expected)), `${what}: got ${got}, expected ${expected}`);
    return;
  }
  assert.ok(Math.abs(got - expected) <= 1e-10 * Math.abs(expected), `${what}: got ${got}, expected ${expected}`);
}

/** Every kernel and variant on one pair, WebAssembly against the reference. */
function compareKernels(x: Raster, y: Raster, dataRange: number, what: string): void {
  const wasm = kernels();
  same(wasm.psnr(x, y, dataRange), reference.psnr(x, y, dataRange), `${what} psnr`);
  same(wasm.mae(x, y), reference.mae(x, y), `${what} mae`);
  same(wasm.ssim(x, y, dataRange), reference.ssim(x, y, dataRange), `${what} ssim`);
  same(wasm.ssim(x, y, dataRange, { gaussian: true }), reference.ssim(x, y, dataRange, { gaussian: true }), `${what} ssim gaussian`);
  same(wasm.uqi(x, y), reference.uqi(x, y), `${what} uqi`);
  same(wasm.vifp(x, y), reference.vifp(x, y), `${what} vifp`);
  same(wasm.vifp(y, x), reference.vifp(y, x), `${what} vifp, arguments swapped`);
}

function compareReports(got: QualityReport, expected: QualityReport, what: string): void {
  for (const key of ["psnr", "ssim", "uqi", "vif", "mae"] as const) {
    same(got.quality[key], expected.quality[key], `${what} ${key}`);
    assert.equal(got.foreground === undefined, expected.foreground === undefined, `${what}: foreground present in both or neither`);
    if (expected.foreground) same(got.foreground![key], expected.foreground[key], `${what} foreground ${key}`);
  }
}

test("the WebAssembly kernels load on this runtime, and computeQuality uses them", () => {
  const wasm = kernels();
  assert.equal(wasmFailure(), undefined);
  const [x, y] = pair(64, 64, 4000, 1);
  const report = computeQuality(y, x, CT, { foreground: true });
  assert.deepEqual(report, wasm.computeQuality(y, x, CT, { foreground: true }));
});

test("random pairs of many sizes, odd, non-square and at each window's minimum: every kernel equals the reference", () => {
  const sizes: [number, number][] = [
    [7, 7], [8, 8], [9, 9], [7, 12], [10, 9], [11, 11], [12, 11], [13, 17],
    [41, 41], [42, 41], [41, 44], [43, 47], [64, 48], [97, 61], [120, 200], [256, 256],
  ];
  sizes.forEach(([w, h], i) => {
    for (const scale of [1, 255]) {
      const [x, y] = pair(w, h, scale, 10 * i + scale);
      compareKernels(x, y, scale, `${w}x${h} on [0, ${scale}]`);
    }
  });
});

test("the windows that fit exactly: one SSIM window at 7×7, one Gaussian window at 11×11, one UQI window at 9×9; none below", () => {
  const wasm = kernels();
  for (const [w, h] of [[6, 6], [6, 20], [8, 8], [8, 30], [10, 10], [40, 80]]) {
    const [x, y] = pair(w, h, 255, w * h);
    compareKernels(x, y, 255, `${w}x${h}`);
  }
  const [x, y] = pair(8, 8, 255, 3);
  assert.ok(Number.isNaN(wasm.uqi(x, y)), "UQI needs 9 px on a side");
  assert.ok(Number.isFinite(wasm.ssim(x, y, 255)));
  assert.ok(Number.isNaN(wasm.vifp(...pair(40, 41, 255, 4))), "VIF needs 41 px on a side");
});

test("constant images: equal, different, zero, and constant on one side only", () => {
  const flat = (w: number, h: number, v: number): Raster => raster(w, h, () => v);
  const cases: [string, Raster, Raster][] = [
    ["equal constants", flat(45, 43, 0.3), flat(45, 43, 0.3)],
    ["different constants", flat(45, 43, 60), flat(45, 43, 80)],
    ["zeros", flat(45, 43, 0), flat(45, 43, 0)],
    ["reference flat", flat(45, 43, 0.7), pair(45, 43, 1, 5)[0]],
    ["distorted flat", pair(45, 43, 1, 6)[0], flat(45, 43, 0.7)],
  ];
  for (const [what, x, y] of cases) compareKernels(x, y, 1, what);
  assert.equal(kernels().uqi(flat(20, 20, 0), flat(20, 20, 0)), 1);
  assert.ok(Number.isNaN(kernels().vifp(flat(45, 45, 3), pair(45, 45, 255, 7)[0])), "VIF of a flat reference is NaN");
});

test("flat background beside texture (UQI's exact constant-window branch) and clipped extremes", () => {
  const rnd = random(11);
  for (const level of [0, 1, 0.7]) {
    // Texture on the left, exact constants on the right, a gradient below: windows of every kind.
    const x = raster(83, 57, (r, c) => (c < 30 ? rnd() ** 8 + 0.3 * rnd() : r > 40 ? r / 57 : level));
    const y = raster(83, 57, (r, c) => (c < 30 ? rnd() ** 8 + 0.3 * rnd() : r > 40 ? r / 57 : c % 17 === 0 ? 1 - level : level));
    compareKernels(x, y, 1, `flat ${level}`);
  }
});

test("one different pixel in flat images: no window that holds it counts as constant, whichever corner it is", () => {
  // The 8×8 window whose bottom-right pixel it is sees it only through the corner comparison.
  for (const [r, c] of [[20, 20], [7, 7], [0, 0], [15, 30], [33, 40]]) {
    const dotted = (flat: number, dot: number): Raster => raster(42, 35, (i, j) => (i === r && j === c ? dot : flat));
    compareKernels(dotted(0.5, 0.9), dotted(0.6, 0.9), 1, `dot at ${r},${c}`);
    compareKernels(dotted(0.5, 0.9), dotted(0.5, 0.5), 1, `dot at ${r},${c} in the reference only`);
  }
});

test("intensities up to float32's largest: VIF's running products stay finite and equal the reference", () => {
  const [x, y] = pair(47, 45, 1, 15);
  const scaled = (p: Raster, scale: number): Raster => ({ ...p, data: p.data.map((v) => v * scale) });
  for (const scale of [1e30, 3e38]) {
    const [sx, sy] = [scaled(x, scale), scaled(y, scale)];
    assert.ok(sx.data.every(Number.isFinite) && sy.data.every(Number.isFinite));
    compareKernels(sx, sy, scale, `scaled by ${scale}`);
    assert.ok(Number.isFinite(kernels().vifp(sx, sy)));
  }
});

test("NaN and infinite samples give the reference's NaN (or value) in every metric", () => {
  const [x, y] = pair(50, 47, 255, 12);
  for (const [what, value] of [["NaN", NaN], ["Infinity", Infinity]] as const) {
    for (const at of [0, 50 * 20 + 17, 50 * 47 - 1]) {
      const bad = { ...y, data: y.data.slice() };
      bad.data[at] = value;
      compareKernels(x, bad, 255, `${what} at ${at}`);
      compareKernels(bad, x, 255, `${what} at ${at} in the reference`);
    }
  }
  const identical = { ...x, data: x.data.slice() };
  assert.equal(kernels().psnr(x, identical, 255), Infinity);
});

test("computeQuality: CT and MR windows, with the foreground crop at odd offsets, equals computeQualityTs", () => {
  const head = (w: number, h: number, shift: number): Raster =>
    raster(w, h, (r, c) => {
      const d = Math.hypot(r - h / 2, c - w / 2 - 3);
      if (d > Math.min(w, h) / 2 - 5) return -1024;
      if (Math.hypot(r - h / 2 + 4, c - w / 2) < 5) return -1000;
      return 40 + shift + 300 * Math.sin(r / 3) * Math.cos(c / 5);
    });
  for (const [w, h] of [[128, 128], [97, 83], [61, 101]]) {
    const ref = head(w, h, 0);
    const syn = { ...ref, data: head(w, h, 25).data.map((v, i) => v + 40 * Math.sin(i * 12.9898)) };
    for (const target of [CT, MR]) {
      for (const foreground of [false, true]) {
        compareReports(kernels().computeQuality(syn, ref, target, { foreground })!, computeQualityTs(syn, ref, target, { foreground }), `${w}x${h} ${target.window}`);
      }
    }
  }
  const ctRef = readF32("ct_hu/ref.f32", 256, 256);
  const ctImg = readF32("ct_hu/img.f32", 256, 256);
  compareReports(computeQuality(ctImg, ctRef, CT, { foreground: true }), computeQualityTs(ctImg, ctRef, CT, { foreground: true }), "ct_hu fixture");
  const air = raster(64, 64, () => -1024);
  compareReports(computeQuality(raster(64, 64, () => -1000), air, CT, { foreground: true }), computeQualityTs(raster(64, 64, () => -1000), air, CT, { foreground: true }), "empty foreground");
});

test("computeQuality leaves what the WebAssembly memory cannot hold, and errors, to the TypeScript path", () => {
  const wasm = kernels();
  // Width beyond DEFAULT_MAX_DIMENSION, or more pixels than MAX_MEMORY_BYTES holds at ~30 bytes each.
  assert.equal(wasm.fits(4097, 9), false);
  assert.equal(wasm.fits(4096, 4096), true, `a 4096² slice fits in ${MAX_MEMORY_BYTES} bytes`);
  assert.equal(wasm.fits(4096, 8192), false);
  const [x, y] = pair(4097, 9, 4000, 13);
  assert.equal(wasm.computeQuality(y, x, CT), undefined);
  assert.deepEqual(computeQuality(y, x, CT), computeQualityTs(y, x, CT));
  assert.throws(() => wasm.ssim(x, y, 1), RangeError);
  // Mismatched sizes: the reference path's RangeError.
  assert.throws(() => computeQuality(raster(64, 32, () => 0), raster(32, 64, () => 0), CT), RangeError);
  assert.throws(() => wasm.uqi(raster(20, 10, () => 0), raster(10, 20, () => 0)), RangeError);
  // After a large image, small ones still agree (the layout follows each call's size).
  compareKernels(...pair(45, 50, 255, 14), 255, "small after large");
});
