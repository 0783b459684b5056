/**
 * The foreground (head) mask of SliceResult.foreground_quality: pixels whose
 * reference value in the [0, 1] target window is above 0.05, with holes
 * filled (scipy.ndimage.binary_fill_holes: background not 4-connected to the
 * image border becomes foreground), and its bounding box.
 */
import { scratchI32, scratchU8 } from "./scratch.js";

/** Reference level, in the [0, 1] window, above which a pixel is foreground. */
const FOREGROUND_LEVEL = 0.05;

export interface Box {
  readonly left: number;
  readonly top: number;
  readonly width: number;
  readonly height: number;
}

export interface Foreground {
  /** 1 = foreground, 0 = background; row-major. Reused by the next call on this thread. */
  readonly mask: Uint8Array;
  /** Bounding box of the mask; undefined when the mask is empty. */
  readonly box: Box | undefined;
}

const OUTSIDE = 2;

/** `unit` is the reference mapped to [0, 1], `width`×`height`. */
export function foregroundMask(unit: Float32Array, width: number, height: number): Foreground {
  const n = width * height;
  const mask = scratchU8(0, n);
  for (let i = 0; i < n; i++) mask[i] = unit[i] > FOREGROUND_LEVEL ? 1 : 0;
  // Flood the background from the border (4-connected); what it cannot reach is a hole.
  const stack = scratchI32(0, n);
  let top = 0;
  const seed = (i: number): void => {
    if (mask[i] === 0) {
      mask[i] = OUTSIDE;
      stack[top++] = i;
    }
  };
  for (let c = 0; c < width; c++) {
    seed(c);
    seed(n - width + c);
  }
  for (let r = 1; r < height - 1; r++) {
    seed(r * width);
    seed(r * width + width - 1);
  }
  while (top > 0) {
    const i = stack[--top];
    const c = i % width;
    if (c > 0) seed(i - 1);
    if (c < width - 1) seed(i + 1);
    if (i >= width) seed(i - width);
    if (i < n - width) seed(i + width);
  }
  let left = width, right = -1, first = height, last = -1;
  for (let r = 0; r < height; r++) {
    for (let c = 0, i = r * width; c < width; c++, i++) {
      if (mask[i] === OUTSIDE) {
        mask[i] = 0;
        continue;
      }
      mask[i] = 1;
      if (c < left) left = c;
      if (c > right) right = c;
      if (r < first) first = r;
      last = r;
    }
  }
  const box = last < 0 ? undefined : { left, top: first, width: right - left + 1, height: last - first + 1 };
  return { mask, box };
}

/** Copies the `box` region of a `width`-wide image into `out` (box.width × box.height). */
export function crop(src: Float32Array, width: number, box: Box, out: Float32Array): Float32Array {
  for (let r = 0; r < box.height; r++) {
    const from = (box.top + r) * width + box.left;
    out.set(src.subarray(from, from + box.width), r * box.width);
  }
  return out;
}
