/**
 * Full-reference image-quality metrics on single-channel images, as defined
 * in test/fixtures/metrics/README.md (scikit-image for PSNR and SSIM, Wang &
 * Bovik 2002 for UQI, sewar >= 0.4.2 for pixel-domain VIF). Every value is
 * computed in float64 on the samples as given: no clipping or rescaling here
 * (quality.ts brings slices to their window first). `reference` is always
 * the first argument; VIF depends on the order, the others do not.
 *
 * A metric whose window does not fit the image returns NaN, as does VIF on a
 * constant reference (its denominator is 0).
 */
import { boxMoments, filterAndHalve, gaussianTaps, horizontalRunningSum, MOMENTS, verticalRunningSum, weightedMoments } from "./filters.js";
import { scratch, Scratch } from "./scratch.js";

/** An image: `height` rows of `width` samples, row-major. `Raster` is one. */
export interface Plane {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array | Float64Array;
}

export function checkPair(reference: Plane, distorted: Plane): void {
  const { width, height } = reference;
  if (distorted.width !== width || distorted.height !== height) {
    throw new RangeError(`image sizes differ: reference ${width}x${height}, distorted ${distorted.width}x${distorted.height}`);
  }
  if (reference.data.length !== width * height || distorted.data.length !== width * height) {
    throw new RangeError(`pixel count does not match ${width}x${height}`);
  }
}

/** Copies a plane into a float64 scratch buffer, so the hot loops see one array type. */
function float64(plane: Plane, role: number): Float64Array {
  const n = plane.width * plane.height;
  const out = scratch(role, n);
  const src = plane.data;
  for (let i = 0; i < n; i++) out[i] = src[i];
  return out;
}

/**
 * Peak signal-to-noise ratio in dB, 10·log10(L² / MSE) with L = `dataRange`;
 * +Infinity for identical images. With `mask`, the MSE is over the pixels
 * where mask is non-zero (NaN if there are none).
 */
export function psnr(reference: Plane, distorted: Plane, dataRange: number, mask?: Uint8Array): number {
  checkPair(reference, distorted);
  const x = reference.data, y = distorted.data;
  let sum = 0;
  let count = 0;
  if (mask === undefined) {
    for (let i = 0; i < x.length; i++) {
      const d = x[i] - y[i];
      sum += d * d;
    }
    count = x.length;
  } else {
    for (let i = 0; i < x.length; i++) {
      if (mask[i] === 0) continue;
      const d = x[i] - y[i];
      sum += d * d;
      count++;
    }
  }
  if (count === 0) return NaN;
  return 10 * Math.log10((dataRange * dataRange) / (sum / count));
}

/** Mean absolute error, in the images' own units; with `mask`, over its non-zero pixels. */
export function mae(reference: Plane, distorted: Plane, mask?: Uint8Array): number {
  checkPair(reference, distorted);
  const x = reference.data, y = distorted.data;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < x.length; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    sum += Math.abs(x[i] - y[i]);
    count++;
  }
  return count === 0 ? NaN : sum / count;
}

export interface SsimOptions {
  /**
   * false (default): scikit-image's default, 7×7 uniform window with sample
   * covariance. true: Wang et al. (2004), 11×11 Gaussian window of σ 1.5 with
   * population covariance (scikit-image `gaussian_weights=True, sigma=1.5,
   * use_sample_covariance=False`).
   */
  readonly gaussian?: boolean;
}

export const SSIM_GAUSSIAN_TAPS = gaussianTaps(5, 1.5);
/** Side of scikit-image's default (uniform) SSIM window: the smallest image SSIM is defined for. */
export const SSIM_SIDE = 7;

/**
 * Structural similarity: mean over all windows lying inside the image of
 * (2·μx·μy + C1)(2·σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),
 * C1 = (0.01·L)², C2 = (0.03·L)², L = `dataRange`.
 */
export function ssim(reference: Plane, distorted: Plane, dataRange: number, options: SsimOptions = {}): number {
  checkPair(reference, distorted);
  const { width: w, height: h } = reference;
  const gaussian = options.gaussian === true;
  const k = gaussian ? SSIM_GAUSSIAN_TAPS.length : SSIM_SIDE;
  if (w < k || h < k) return NaN;
  const x = float64(reference, Scratch.X);
  const y = float64(distorted, Scratch.Y);
  // Box moments are window sums; weighted ones are already means.
  const m = gaussian ? weightedMoments(x, y, w, h, SSIM_GAUSSIAN_TAPS) : boxMoments(x, y, w, h, k);
  const meanScale = gaussian ? 1 : 1 / (k * k);
  const covScale = gaussian ? 1 : (k * k) / (k * k - 1);
  const c1 = (0.01 * dataRange) ** 2;
  const c2 = (0.03 * dataRange) ** 2;
  const n = m.width * m.height;
  const v = m.data;
  const step = MOMENTS; // a local: imported bindings are re-read inside loops
  let total = 0;
  for (let o = 0, end = step * n; o < end; o += step) {
    const mx = v[o] * meanScale, my = v[o + 1] * meanScale;
    const vx = covScale * (v[o + 2] * meanScale - mx * mx);
    const vy = covScale * (v[o + 3] * meanScale - my * my);
    const cxy = covScale * (v[o + 4] * meanScale - mx * my);
    total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  return total / n;
}

export const UQI_SIZE = 8;

/**
 * Universal Quality Index (Wang & Bovik 2002) over 8×8 windows with
 * population statistics:
 * Q = 4·σxy·μx·μy / ((σx² + σy²)(μx² + μy²)); where both windows are
 * constant, Q = 2·μx·μy / (μx² + μy²), or 1 if both are zero (img_qi.m).
 * Mean over the windows whose top-left corner is at rows 0..H-9, columns
 * 0..W-9, the positions sewar keeps.
 *
 * This is the published index, not the value `sewar.full_ref.uqi` returns
 * (sewar puts window means into a formula written for window sums).
 *
 * "Both windows constant" is decided exactly, by counting unequal
 * neighbours, not from variances near 0: running sums leave rounding
 * residue, and flat background (clipped air, zero MR background) is common
 * in medical slices.
 */
export function uqi(reference: Plane, distorted: Plane): number {
  checkPair(reference, distorted);
  const { width: w, height: h } = reference;
  if (w <= UQI_SIZE || h <= UQI_SIZE) return NaN;
  const x = float64(reference, Scratch.X);
  const y = float64(distorted, Scratch.Y);
  const changes = neighbourChanges(x, y, w, h);
  const m = boxMoments(x, y, w, h, UQI_SIZE);
  const v = m.data;
  const step = MOMENTS;
  const inv = 1 / (UQI_SIZE * UQI_SIZE);
  const cw = w - 7; // row length of `changes`
  const corner = (UQI_SIZE - 1) * (w + 1);
  const rows = h - UQI_SIZE;
  const cols = w - UQI_SIZE;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const o = step * (r * m.width + c);
      const p = r * w + c;
      const mx = v[o] * inv, my = v[o + 1] * inv;
      const d2 = mx * mx + my * my;
      if (changes[r * cw + c] === 0 && x[p + corner] === x[p] && y[p + corner] === y[p]) {
        // Both windows constant: exact means, the img_qi.m convention.
        const a = x[p], b = y[p];
        const s = a * a + b * b;
        total += s === 0 ? 1 : (2 * a * b) / s;
        continue;
      }
      const d1 = v[o + 2] * inv - mx * mx + (v[o + 3] * inv - my * my);
      const cov = v[o + 4] * inv - mx * my;
      const den = d1 * d2;
      if (den !== 0) total += (4 * cov * mx * my) / den;
      else if (d1 === 0 && d2 !== 0) total += (2 * mx * my) / d2;
      else total += 1;
    }
  }
  return total / (rows * cols);
}

/**
 * For every 7×7 block (top-left (r, c), row length w-7): how many pixels in
 * it differ from their right or lower neighbour, in x or in y. An 8×8 window
 * at (r, c) is constant in both images iff this is 0 and its bottom-right
 * pixel equals its top-left one (the block's pairs reach every other pixel).
 * Counts are small integers, so the running sums are exact.
 */
function neighbourChanges(x: Float64Array, y: Float64Array, w: number, h: number): Float64Array {
  const dw = w - 1, dh = h - 1;
  const flags = scratch(Scratch.Changes, dw * dh);
  for (let r = 0; r < dh; r++) {
    for (let c = 0; c < dw; c++) {
      const p = r * w + c;
      const right = p + 1, below = p + w;
      flags[r * dw + c] = x[p] !== x[right] || x[p] !== x[below] || y[p] !== y[right] || y[p] !== y[below] ? 1 : 0;
    }
  }
  const block = 7;
  const rowSums = scratch(Scratch.Rows, dh * (dw - block + 1));
  horizontalRunningSum(flags, rowSums, dw, dh, block);
  verticalRunningSum(rowSums, flags, dw - block + 1, dh - block + 1, block);
  return flags;
}

/** Noise variance of the HVS model (σ²ₙ) and the stabiliser of sewar.vifp. */
export const VIF_NOISE = 2;
export const VIF_EPS = 1e-10;
/** Per scale s = 1..4: N = 2^(5-s)+1 taps, σ = N/5 (MATLAB fspecial). */
export const VIF_TAPS = [17, 9, 5, 3].map((n) => gaussianTaps((n - 1) / 2, n / 5));
/** Smallest side for which all four scales have a window (17 → 9 → 5 → 3). */
export const VIF_MIN_SIDE = 41;

/**
 * Pixel-domain Visual Information Fidelity (Sheikh & Bovik 2006, as
 * sewar.full_ref.vifp >= 0.4.2): four scales, Gaussian windows, σ²ₙ = 2,
 * ratio of the sums over all scales. Depends on the intensity scale (σ²ₙ is
 * absolute; designed for 0..255) and on the argument order. Identical images
 * give 1 - O(1e-10 / local variance).
 */
export function vifp(reference: Plane, distorted: Plane): number {
  checkPair(reference, distorted);
  let w = reference.width, h = reference.height;
  if (w < VIF_MIN_SIDE || h < VIF_MIN_SIDE) return NaN;
  let xBuffer: number = Scratch.X, yBuffer: number = Scratch.Y;
  let x = float64(reference, xBuffer);
  let y = float64(distorted, yBuffer);
  // Σ log(1 + ·) kept as running products, flushed to a log before they
  // could overflow: one Math.log per ~100 windows instead of two per window.
  let num = 0, den = 0;
  let numProduct = 1, denProduct = 1;
  for (let s = 0; s < VIF_TAPS.length; s++) {
    const g = VIF_TAPS[s];
    if (s > 0) {
      // Next scale: filter, keep every second row and column (ping-pong buffers).
      xBuffer = xBuffer === Scratch.X ? Scratch.NextX : Scratch.X;
      yBuffer = yBuffer === Scratch.Y ? Scratch.NextY : Scratch.Y;
      const nextX = scratch(xBuffer, w * h);
      const nextY = scratch(yBuffer, w * h);
      filterAndHalve(x, w, h, g, nextX);
      ({ width: w, height: h } = filterAndHalve(y, w, h, g, nextY));
      x = nextX;
      y = nextY;
    }
    const m = weightedMoments(x, y, w, h, g);
    const v = m.data;
    const step = MOMENTS;
    for (let o = 0, end = step * m.width * m.height; o < end; o += step) {
      const mx = v[o], my = v[o + 1];
      let vx = v[o + 2] - mx * mx;
      let vy = v[o + 3] - my * my;
      const cov = v[o + 4] - mx * my;
      if (vx < 0) vx = 0;
      if (vy < 0) vy = 0;
      let gain = cov / (vx + VIF_EPS);
      let sv = vy - gain * cov;
      if (vx < VIF_EPS) {
        gain = 0;
        sv = vy;
        vx = 0;
      }
      if (vy < VIF_EPS) {
        gain = 0;
        sv = 0;
      }
      if (gain < 0) {
        sv = vy;
        gain = 0;
      }
      if (sv <= VIF_EPS) sv = VIF_EPS;
      // Both factors are >= 1, so the products only grow.
      const fn = 1 + (gain * gain * vx) / (sv + VIF_NOISE);
      const fd = 1 + vx / VIF_NOISE;
      if (fn > 1e100 || fd > 1e100) {
        num += Math.log(fn);
        den += Math.log(fd);
        continue;
      }
      numProduct *= fn;
      denProduct *= fd;
      if (numProduct > 1e200) {
        num += Math.log(numProduct);
        numProduct = 1;
      }
      if (denProduct > 1e200) {
        den += Math.log(denProduct);
        denProduct = 1;
      }
    }
  }
  num += Math.log(numProduct);
  den += Math.log(denProduct);
  return den === 0 ? NaN : num / den;
}
