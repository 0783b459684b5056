import { test } from "node:test";
import assert from "node:assert/strict";
import { mae, psnr, ssim, uqi, vifp, type Plane } from "../src/quality/kernels.js";
import { random, raster as plane } from "./quality-fixtures.js";

/** Smooth structure plus texture on 0..255, `width` ≠ `height` to catch row/column mix-ups. */
function textured(width: number, height: number, seed: number): Plane {
  const rnd = random(seed);
  return plane(width, height, (r, c) => 128 + 60 * Math.sin(r / 9) * Math.cos(c / 13) + 30 * rnd());
}

function noisy(p: Plane, amount: number, seed: number): Plane {
  const rnd = random(seed);
  return { ...p, data: p.data.map((v) => v + amount * (rnd() - 0.5)) };
}

const close = (got: number, expected: number, tolerance: number, what: string): void =>
  assert.ok(Math.abs(got - expected) <= tolerance, `${what}: got ${got}, expected ${expected}`);

test("identical images: PSNR +Infinity, SSIM 1 (both variants), UQI 1, VIF 1, MAE 0", () => {
  const x = textured(97, 64, 1);
  const y = { ...x, data: x.data.slice() };
  assert.equal(psnr(x, y, 255), Infinity);
  close(ssim(x, y, 255), 1, 1e-12, "ssim");
  close(ssim(x, y, 255, { gaussian: true }), 1, 1e-12, "ssim gaussian");
  close(uqi(x, y), 1, 1e-12, "uqi");
  // σ²ₙ and eps of VIF leave 1 - O(1e-10 / local variance) on 0..255 data.
  close(vifp(x, y), 1, 1e-8, "vifp");
  assert.equal(mae(x, y), 0);
});

test("PSNR, SSIM, UQI and MAE are symmetric; VIF is not", () => {
  const x = textured(80, 53, 2);
  const y = noisy(x, 40, 3);
  assert.equal(psnr(x, y, 255), psnr(y, x, 255));
  assert.equal(mae(x, y), mae(y, x));
  close(ssim(x, y, 255), ssim(y, x, 255), 1e-14, "ssim");
  close(ssim(x, y, 255, { gaussian: true }), ssim(y, x, 255, { gaussian: true }), 1e-14, "ssim gaussian");
  close(uqi(x, y), uqi(y, x), 1e-14, "uqi");
  assert.ok(Math.abs(vifp(x, y) - vifp(y, x)) > 1e-3, "vifp(x, y) and vifp(y, x) should differ for a noisy pair");
});

test("small cases known by hand", () => {
  // MSE = 1/64 → PSNR = 10·log10(64) = 18.06 dB; MAE = 1/8 (exact in float32).
  const zeros = plane(3, 2, () => 0);
  const eighth = plane(3, 2, () => 0.125);
  close(psnr(zeros, eighth, 1), 10 * Math.log10(64), 1e-12, "psnr");
  close(mae(zeros, eighth), 0.125, 1e-15, "mae");
  // One 7×7 window of constants a, b: SSIM = (2ab + C1) / (a² + b² + C1), C1 = (0.01·255)².
  const c1 = (0.01 * 255) ** 2;
  close(ssim(plane(7, 7, () => 60), plane(7, 7, () => 80), 255), (2 * 60 * 80 + c1) / (60 ** 2 + 80 ** 2 + c1), 1e-12, "ssim constants");
  // 9×9: exactly one UQI window. Two constant windows: 2ab/(a²+b²) = 0.96; both zero: 1.
  close(uqi(plane(9, 9, () => 60), plane(9, 9, () => 80)), 0.96, 1e-12, "uqi constants");
  assert.equal(uqi(plane(9, 9, () => 0), plane(9, 9, () => 0)), 1);
  // Constant in one image only: σxy = 0, so Q = 0.
  close(uqi(plane(9, 9, () => 60), plane(9, 9, (r, c) => (r + c) % 2)), 0, 1e-12, "uqi one flat");
  // A pure gain y = a·x gives Q = 4a²/(1+a²)² in every window: 0.64 for a = 0.5.
  const x = textured(31, 22, 4);
  close(uqi(x, { ...x, data: x.data.map((v) => 0.5 * v) }), 0.64, 1e-9, "uqi gain");
});

test("windows that do not fit give NaN", () => {
  const small = textured(40, 60, 5);
  assert.ok(Number.isNaN(vifp(small, noisy(small, 10, 6))), "VIF needs 41 px on each side");
  const tiny = plane(6, 20, () => 1);
  assert.ok(Number.isNaN(ssim(tiny, tiny, 1)));
  assert.ok(Number.isNaN(uqi(plane(8, 20, () => 1), plane(8, 20, () => 1))));
});

test("VIF: adding a constant to an image leaves it unchanged; a flat reference gives NaN", () => {
  const x = textured(64, 48, 7);
  const y = noisy(x, 30, 8);
  const shifted = { ...y, data: y.data.map((v) => v + 10) };
  close(vifp(x, shifted), vifp(x, y), 1e-6, "vifp shift");
  assert.ok(Number.isNaN(vifp(plane(48, 48, () => 3), plane(48, 48, (r, c) => r + c))));
});

test("mismatched sizes are an error, not a number", () => {
  assert.throws(() => ssim(textured(20, 10, 1), textured(10, 20, 1), 255), RangeError);
});

/**
 * Straight from the definitions (README of the fixtures): every window summed
 * directly with centred statistics; slow, independent of the separable filters.
 */
function naiveWindowMean(x: Plane, y: Plane, k: number, weights: (i: number, j: number) => number,
  perWindow: (mx: number, my: number, vx: number, vy: number, cxy: number) => number, rows: number, cols: number): number {
  const w = x.width;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let mx = 0, my = 0;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        mx += weights(i, j) * x.data[(r + i) * w + c + j];
        my += weights(i, j) * y.data[(r + i) * w + c + j];
      }
      let vx = 0, vy = 0, cxy = 0;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) {
        const a = x.data[(r + i) * w + c + j] - mx, b = y.data[(r + i) * w + c + j] - my;
        vx += weights(i, j) * a * a; vy += weights(i, j) * b * b; cxy += weights(i, j) * a * b;
      }
      total += perWindow(mx, my, vx, vy, cxy);
    }
  }
  return total / (rows * cols);
}

function naiveSsim(x: Plane, y: Plane, L: number): number {
  const c1 = (0.01 * L) ** 2, c2 = (0.03 * L) ** 2, s = 49 / 48;
  return naiveWindowMean(x, y, 7, () => 1 / 49,
    (mx, my, vx, vy, cxy) => ((2 * mx * my + c1) * (2 * s * cxy + c2)) / ((mx * mx + my * my + c1) * (s * vx + s * vy + c2)),
    x.height - 6, x.width - 6);
}

function naiveUqi(x: Plane, y: Plane): number {
  return naiveWindowMean(x, y, 8, () => 1 / 64, (mx, my, vx, vy, cxy) => {
    const d1 = vx + vy, d2 = mx * mx + my * my;
    if (d1 * d2 !== 0) return (4 * cxy * mx * my) / (d1 * d2);
    if (d1 === 0 && d2 !== 0) return (2 * mx * my) / d2;
    return 1;
  }, x.height - 8, x.width - 8);
}

test("SSIM and UQI equal a direct per-window evaluation on an odd-sized pair", () => {
  const x = textured(37, 29, 9);
  const y = noisy(x, 50, 10);
  close(ssim(x, y, 255), naiveSsim(x, y, 255), 1e-10, "ssim");
  close(uqi(x, y), naiveUqi(x, y), 1e-10, "uqi");
});

test("UQI over flat background: constant windows follow img_qi.m despite running-sum residue", () => {
  // Values of widely different magnitudes on the left, exact constants on the
  // right (like clipped air, or tissue saturated at the top of the window):
  // the running sums carry rounding residue into the constant windows.
  const rnd = random(11);
  const w = 64, h = 40;
  const pair = (flat: number): [Plane, Plane] => {
    const x = new Float64Array(w * h), y = new Float64Array(w * h);
    for (let r = 0; r < h; r++) {
      for (let c = 0; c < w; c++) {
        const left = c < 30;
        x[r * w + c] = left ? rnd() ** 8 + 0.3 * rnd() : flat;
        y[r * w + c] = left ? rnd() ** 8 + 0.3 * rnd() : flat;
      }
    }
    return [{ width: w, height: h, data: x }, { width: w, height: h, data: y }];
  };
  for (const flat of [0, 1, 0.7]) {
    const [x, y] = pair(flat);
    close(uqi(x, y), naiveUqi(x, y), 1e-10, `uqi, flat ${flat}`);
  }
});
