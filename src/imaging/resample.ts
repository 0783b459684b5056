import type { Raster } from "./raster.js";

/**
 * Resizes a raster with a separable triangle (bilinear) filter whose support
 * widens when shrinking, so a 512² slice going to a 256² model is averaged
 * rather than aliased. Pure; returns the input itself when the size matches.
 */
export function resample(src: Raster, width: number, height: number): Raster {
  if (src.width === width && src.height === height) return src;
  const xs = filterTaps(src.width, width);
  const ys = filterTaps(src.height, height);
  // Horizontal pass: src.height rows of `width` samples.
  const mid = new Float32Array(width * src.height);
  for (let y = 0; y < src.height; y++) {
    const row = y * src.width;
    for (let x = 0; x < width; x++) {
      let acc = 0;
      for (let t = xs.start[x], k = xs.offset[x]; k < xs.offset[x + 1]; k++, t++) acc += src.data[row + t] * xs.weight[k];
      mid[y * width + x] = acc;
    }
  }
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let k = ys.offset[y], t = ys.start[y]; k < ys.offset[y + 1]; k++, t++) {
      const w = ys.weight[k];
      const srcRow = t * width;
      const dstRow = y * width;
      for (let x = 0; x < width; x++) out[dstRow + x] += mid[srcRow + x] * w;
    }
  }
  return { width, height, data: out };
}

interface Taps {
  /** First source index of each output sample. */
  start: Int32Array;
  /** offset[i]..offset[i+1] are output sample i's entries in `weight`. */
  offset: Int32Array;
  weight: Float32Array;
}

function filterTaps(srcSize: number, dstSize: number): Taps {
  const scale = srcSize / dstSize;
  const support = Math.max(1, scale);
  const start = new Int32Array(dstSize);
  const offset = new Int32Array(dstSize + 1);
  const weights: number[] = [];
  for (let i = 0; i < dstSize; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    const first = Math.max(0, Math.ceil(centre - support));
    const last = Math.min(srcSize - 1, Math.floor(centre + support));
    let sum = 0;
    const row: number[] = [];
    for (let t = first; t <= last; t++) {
      const w = Math.max(0, 1 - Math.abs(t - centre) / support);
      row.push(w);
      sum += w;
    }
    // Edges: fall back to the nearest sample if every weight vanished.
    if (sum === 0) {
      start[i] = Math.min(srcSize - 1, Math.max(0, Math.round(centre)));
      weights.push(1);
    } else {
      start[i] = first;
      for (const w of row) weights.push(w / sum);
    }
    offset[i + 1] = weights.length;
  }
  return { start, offset, weight: Float32Array.from(weights) };
}
