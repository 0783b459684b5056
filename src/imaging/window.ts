/**
 * Intensity windows: how physical values map to a model's [-1, 1] and to the
 * metrics' [0, 1]. CT uses a fixed HU window; MR, whose units are relative,
 * uses the image's own percentiles.
 */
import { wasmPixels, type BracketCounts } from "./pixels-wasm.js";

export type WindowSpec =
  | { readonly window: "fixed"; readonly low: number; readonly high: number }
  | {
      readonly window: "percentile";
      /** Percentiles in [0, 100], e.g. 0.5 and 99.5. */
      readonly low: number;
      readonly high: number;
      /** For a model's MR output without a reference: the range [-1, 1] maps to. */
      readonly nominal?: readonly [number, number];
    };

/** A resolved window in physical units. */
export interface Range {
  readonly low: number;
  readonly high: number;
}

/**
 * Percentiles with NumPy's default rule (linear interpolation between the
 * closest ranks), from exact order statistics (see orderStatistics). `ps`
 * in [0, 100].
 */
export function percentiles(data: ArrayLike<number>, ps: readonly number[]): number[] {
  const n = data.length;
  if (n === 0) throw new RangeError("percentiles of an empty image");
  const ranks = ps.map((p) => (p / 100) * (n - 1));
  const values = orderStatistics(data, ranks.flatMap((rank) => [Math.floor(rank), Math.min(n - 1, Math.floor(rank) + 1)]));
  return ranks.map((rank, i) => {
    const k = Math.floor(rank);
    const below = values[2 * i];
    return rank === k ? below : below + (rank - k) * (values[2 * i + 1] - below);
  });
}

/** Values drawn, evenly spaced, to bracket each rank before the one pass over all of them. */
const SAMPLE = 1024;
/** Below this many values, sorting a copy costs less than sampling. */
const SORT_BELOW = 4 * SAMPLE;

/** Per-thread scratch, grown as needed: no image-sized allocation per call. */
let scratch = new Float64Array(0);
function scratchOf(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(n);
  return scratch.subarray(0, n);
}

/**
 * The values of the given ranks (0-based; the k-th smallest) of `data`,
 * whose values are finite. A sorted sample of 1024 values brackets each
 * rank (brackets that overlap merge); one pass per bracket counts the
 * values below and equal to its ends and collects those strictly inside,
 * and sorting the few collected gives the exact value. Ties are counted,
 * not collected, so a large uniform background costs nothing extra. Should
 * a bracket miss its rank or hold too many values (an unlucky sample), that
 * rank falls back to selection over a copy. Either way the result is a
 * value of `data`, not an estimate. Float32 data is counted by the
 * WebAssembly kernel where it loads (pixels-wasm.ts; the same counts).
 */
function orderStatistics(data: ArrayLike<number>, ranks: readonly number[]): number[] {
  const n = data.length;
  if (n < SORT_BELOW) {
    const sorted = scratchOf(n);
    for (let i = 0; i < n; i++) sorted[i] = data[i];
    sorted.sort();
    return ranks.map((rank) => sorted[rank]);
  }
  const sample = new Float64Array(SAMPLE);
  for (let j = 0; j < SAMPLE; j++) sample[j] = data[Math.floor(((j + 0.5) * n) / SAMPLE)];
  sample.sort();
  const brackets: { low: number; high: number }[] = [];
  for (const rank of [...ranks].sort((a, b) => a - b)) {
    // ± four standard deviations of the rank's place in the sample, and at least ± 8 places.
    const q = rank / (n - 1);
    const at = q * (SAMPLE - 1);
    const spread = 4 * Math.sqrt(SAMPLE * q * (1 - q)) + 8;
    const low = sample[Math.max(0, Math.floor(at - spread))];
    const high = sample[Math.min(SAMPLE - 1, Math.ceil(at + spread))];
    const last = brackets.at(-1);
    if (last && low <= last.high) last.high = Math.max(last.high, high);
    else brackets.push({ low, high });
  }
  const capacity = n >>> 3;
  const values = new Map<number, number>();
  const resolve = (b: number, { below, atLow, atHigh, between, inside }: BracketCounts) => {
    let sorted = false;
    for (const rank of ranks) {
      let r = rank - below;
      if (values.has(rank) || r < 0 || r >= atLow + between + atHigh) continue;
      if (r < atLow) values.set(rank, brackets[b].low);
      else if ((r -= atLow) >= between) values.set(rank, brackets[b].high);
      else if (between <= capacity) {
        if (!sorted) inside.sort();
        sorted = true;
        values.set(rank, inside[r]);
      }
    }
  };
  const wasm = data instanceof Float32Array ? wasmPixels() : undefined;
  if (!wasm?.count(data, brackets, capacity, resolve)) brackets.forEach((bracket, b) => resolve(b, countTs(data, bracket, capacity)));
  return ranks.map((rank) => values.get(rank) ?? select(data, rank));
}

/** orderStatistics()'s counting pass in TypeScript: the reference of the WebAssembly kernel, and its fallback. */
export function countTs(data: ArrayLike<number>, { low, high }: { low: number; high: number }, capacity: number): BracketCounts {
  const inside = scratchOf(capacity);
  let below = 0;
  let atLow = 0;
  let atHigh = 0;
  let between = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v < low) below++;
    else if (v <= high) {
      if (v === low) atLow++;
      else if (v === high) atHigh++;
      else if (between < capacity) inside[between++] = v;
      else between++;
    }
  }
  return { below, atLow, atHigh, between, inside: inside.subarray(0, Math.min(between, capacity)) };
}

/** The value of rank `k` by Hoare's quickselect over a copy of `data` (the fallback). */
function select(data: ArrayLike<number>, k: number): number {
  const a = scratchOf(data.length);
  for (let i = 0; i < a.length; i++) a[i] = data[i];
  let left = 0;
  let right = a.length - 1;
  while (left < right) {
    const pivot = a[(left + right) >>> 1];
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else break;
  }
  return a[k];
}

/** The physical range a window spec selects on this image. */
export function resolveWindow(spec: WindowSpec, data: ArrayLike<number>): Range {
  if (spec.window === "fixed") return { low: spec.low, high: spec.high };
  const [low, high] = percentiles(data, [spec.low, spec.high]);
  return { low, high };
}

/**
 * The window of a target (reference) image: resolveWindow, except that
 * coinciding percentiles (99 % of the pixels share one value, as on a slice
 * above the head) give the full range, so the few pixels that differ still
 * count; only a constant image keeps a window of zero width.
 */
export function resolveTargetWindow(spec: WindowSpec, data: ArrayLike<number>): Range {
  const range = resolveWindow(spec, data);
  return spec.window === "percentile" && !(range.high > range.low) ? fullRange(data) : range;
}

/** The smallest and largest value. */
export function fullRange(data: ArrayLike<number>): Range {
  let low = Infinity;
  let high = -Infinity;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < low) low = data[i];
    if (data[i] > high) high = data[i];
  }
  return { low, high };
}

/**
 * Maps `data` from `range` linearly onto [outLow, outHigh], clipping. A flat
 * window (high == low) maps everything to outLow. Float32 data goes through
 * the WebAssembly kernel where it loads (pixels-wasm.ts; the same results);
 * `kernel` false keeps to the TypeScript loop, the kernel's reference.
 */
export function mapRange(
  data: ArrayLike<number>,
  range: Range,
  outLow: number,
  outHigh: number,
  out: Float32Array = new Float32Array(data.length),
  offset = 0,
  kernel = true,
): Float32Array {
  const { scale, lo, hi } = mapping(range, outLow, outHigh);
  const wasm = kernel && data instanceof Float32Array ? wasmPixels() : undefined;
  if (wasm?.mapRange(data, range.low, scale, outLow, lo, hi, out, offset)) return out;
  const low = range.low;
  for (let i = 0; i < data.length; i++) {
    const v = outLow + (data[i] - low) * scale;
    out[offset + i] = v < lo ? lo : v > hi ? hi : v;
  }
  return out;
}

function mapping(range: Range, outLow: number, outHigh: number): { scale: number; lo: number; hi: number } {
  const span = range.high - range.low;
  return {
    scale: span > 0 ? (outHigh - outLow) / span : 0,
    lo: Math.min(outLow, outHigh),
    hi: Math.max(outLow, outHigh),
  };
}
