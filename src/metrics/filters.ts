/**
 * Window statistics of an image pair over every window lying completely
 * inside the image ('valid' filtering, nothing padded), by separable passes:
 * running sums for uniform windows, symmetric-folded taps for weighted ones.
 * All arithmetic is float64; outputs live in scratch buffers (see scratch.ts)
 * and are overwritten by the next call.
 */
import { scratch, Slot } from "./scratch.js";

/**
 * First and second moments of every window, row-major over window positions:
 * entry r * width + c belongs to the window whose top-left pixel is (r, c).
 */
export interface Moments {
  readonly width: number;
  readonly height: number;
  readonly x: Float64Array;
  readonly y: Float64Array;
  readonly xx: Float64Array;
  readonly yy: Float64Array;
  readonly xy: Float64Array;
}

function momentBuffers(width: number, height: number): Moments {
  const n = width * height;
  return {
    width,
    height,
    x: scratch(Slot.M0, n),
    y: scratch(Slot.M1, n),
    xx: scratch(Slot.M2, n),
    yy: scratch(Slot.M3, n),
    xy: scratch(Slot.M4, n),
  };
}

/**
 * Window SUMS (not means) of x, y, x², y², xy over k×k uniform windows.
 * O(1) per pixel whatever k: a running sum along each row, then a running sum
 * of those rows down each column.
 */
export function boxMoments(x: Float64Array, y: Float64Array, w: number, h: number, k: number): Moments {
  const ow = w - k + 1;
  const oh = h - k + 1;
  const n = h * ow;
  const hx = scratch(Slot.H0, n);
  const hy = scratch(Slot.H1, n);
  const hxx = scratch(Slot.H2, n);
  const hyy = scratch(Slot.H3, n);
  const hxy = scratch(Slot.H4, n);
  for (let r = 0; r < h; r++) {
    const row = r * w;
    let o = r * ow;
    let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (let c = row; c < row + k; c++) {
      const a = x[c], b = y[c];
      sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
    }
    hx[o] = sx; hy[o] = sy; hxx[o] = sxx; hyy[o] = syy; hxy[o] = sxy;
    for (let c = row + k; c < row + w; c++) {
      const a = x[c], b = y[c], a0 = x[c - k], b0 = y[c - k];
      sx += a - a0; sy += b - b0;
      sxx += a * a - a0 * a0; syy += b * b - b0 * b0; sxy += a * b - a0 * b0;
      o++;
      hx[o] = sx; hy[o] = sy; hxx[o] = sxx; hyy[o] = syy; hxy[o] = sxy;
    }
  }
  const m = momentBuffers(ow, oh);
  verticalRunningSum(hx, m.x, ow, oh, k);
  verticalRunningSum(hy, m.y, ow, oh, k);
  verticalRunningSum(hxx, m.xx, ow, oh, k);
  verticalRunningSum(hyy, m.yy, ow, oh, k);
  verticalRunningSum(hxy, m.xy, ow, oh, k);
  return m;
}

/** out row r = sum of src rows r .. r+k-1 (rows `width` long, `height` output rows). */
export function verticalRunningSum(src: Float64Array, out: Float64Array, width: number, height: number, k: number): void {
  for (let c = 0; c < width; c++) {
    let s = 0;
    for (let t = 0, i = c; t < k; t++, i += width) s += src[i];
    out[c] = s;
  }
  const drop = -width;
  const add = (k - 1) * width;
  for (let i = width, end = width * height; i < end; i++) {
    out[i] = out[i - width] + src[i + add] - src[i + drop];
  }
}

/** Horizontal running sums of `src` over k columns ('valid': w-k+1 per row). */
export function horizontalRunningSum(src: Float64Array, out: Float64Array, w: number, h: number, k: number): void {
  const ow = w - k + 1;
  for (let r = 0; r < h; r++) {
    const row = r * w;
    let o = r * ow;
    let s = 0;
    for (let c = row; c < row + k; c++) s += src[c];
    out[o] = s;
    for (let c = row + k; c < row + w; c++) {
      s += src[c] - src[c - k];
      out[++o] = s;
    }
  }
}

/**
 * Weighted means of x, y, x², y², xy over every k×k window with weights
 * g(i)·g(j); `g` is symmetric, odd-length and sums to 1.
 */
export function weightedMoments(x: Float64Array, y: Float64Array, w: number, h: number, g: Float64Array): Moments {
  const k = g.length;
  const half = (k - 1) >> 1;
  const gc = g[half];
  const ow = w - k + 1;
  const oh = h - k + 1;
  const n = h * ow;
  const hx = scratch(Slot.H0, n);
  const hy = scratch(Slot.H1, n);
  const hxx = scratch(Slot.H2, n);
  const hyy = scratch(Slot.H3, n);
  const hxy = scratch(Slot.H4, n);
  // Horizontal: products are formed on the fly, taps folded in mirror pairs.
  for (let r = 0; r < h; r++) {
    const row = r * w;
    const orow = r * ow;
    for (let c = 0; c < ow; c++) {
      const i = row + c;
      let a = x[i + half], b = y[i + half];
      let sx = gc * a, sy = gc * b, sxx = gc * a * a, syy = gc * b * b, sxy = gc * a * b;
      for (let t = 0; t < half; t++) {
        const wt = g[t];
        const p = i + t, q = i + k - 1 - t;
        a = x[p]; b = y[p];
        const a2 = x[q], b2 = y[q];
        sx += wt * (a + a2); sy += wt * (b + b2);
        sxx += wt * (a * a + a2 * a2); syy += wt * (b * b + b2 * b2); sxy += wt * (a * b + a2 * b2);
      }
      const o = orow + c;
      hx[o] = sx; hy[o] = sy; hxx[o] = sxx; hyy[o] = syy; hxy[o] = sxy;
    }
  }
  // Vertical, same folding, column stride ow.
  const m = momentBuffers(ow, oh);
  const { x: mx, y: my, xx: mxx, yy: myy, xy: mxy } = m;
  const span = (k - 1) * ow;
  for (let i = 0, end = ow * oh; i < end; i++) {
    const ci = i + half * ow;
    let sx = gc * hx[ci], sy = gc * hy[ci], sxx = gc * hxx[ci], syy = gc * hyy[ci], sxy = gc * hxy[ci];
    for (let t = 0, p = i, q = i + span; t < half; t++, p += ow, q -= ow) {
      const wt = g[t];
      sx += wt * (hx[p] + hx[q]); sy += wt * (hy[p] + hy[q]);
      sxx += wt * (hxx[p] + hxx[q]); syy += wt * (hyy[p] + hyy[q]); sxy += wt * (hxy[p] + hxy[q]);
    }
    mx[i] = sx; my[i] = sy; mxx[i] = sxx; myy[i] = syy; mxy[i] = sxy;
  }
  return m;
}

/**
 * 'valid' filtering of one image with weights g(i)·g(j), keeping every
 * second row and column from the first (MATLAB `filter2(.., 'valid')` then
 * `[::2, ::2]`). Returns the output size; `out` holds the result.
 */
export function filterAndHalve(
  src: Float64Array,
  w: number,
  h: number,
  g: Float64Array,
  out: Float64Array,
): { width: number; height: number } {
  const k = g.length;
  const half = (k - 1) >> 1;
  const gc = g[half];
  const ow = ((w - k) >> 1) + 1;
  const oh = ((h - k) >> 1) + 1;
  // Horizontal at even columns, for every row that an even output row reads.
  const rows = 2 * (oh - 1) + k;
  const tmp = scratch(Slot.H0, rows * ow);
  for (let r = 0; r < rows; r++) {
    const row = r * w;
    for (let c = 0; c < ow; c++) {
      const i = row + 2 * c;
      let s = gc * src[i + half];
      for (let t = 0; t < half; t++) s += g[t] * (src[i + t] + src[i + k - 1 - t]);
      tmp[r * ow + c] = s;
    }
  }
  const span = (k - 1) * ow;
  for (let r = 0; r < oh; r++) {
    for (let c = 0; c < ow; c++) {
      const i = 2 * r * ow + c;
      let s = gc * tmp[i + half * ow];
      for (let t = 0, p = i, q = i + span; t < half; t++, p += ow, q -= ow) s += g[t] * (tmp[p] + tmp[q]);
      out[r * ow + c] = s;
    }
  }
  return { width: ow, height: oh };
}

/**
 * 1-D factor of a separable Gaussian window, normalised to sum 1:
 * g(t) ∝ exp(-t²/(2σ²)), t = -radius..radius. The 2-D window g(i)·g(j) is
 * then both scikit-image's Gaussian SSIM window and MATLAB's
 * fspecial('gaussian') (whose cut-off at 2.2e-16·max never bites at these
 * sizes), since a normalised outer product is the product of normalised
 * factors.
 */
export function gaussianTaps(radius: number, sigma: number): Float64Array {
  const g = new Float64Array(2 * radius + 1);
  let sum = 0;
  for (let t = -radius; t <= radius; t++) sum += g[t + radius] = Math.exp(-(t * t) / (2 * sigma * sigma));
  for (let i = 0; i < g.length; i++) g[i] /= sum;
  return g;
}
