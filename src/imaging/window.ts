/**
 * Intensity windows: how physical values map to a model's [-1, 1] and to the
 * metrics' [0, 1]. CT uses a fixed HU window; MR, whose units are relative,
 * uses the image's own percentiles.
 */
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
 * closest ranks), by selection rather than a full sort. `ps` in [0, 100].
 */
export function percentiles(data: ArrayLike<number>, ps: readonly number[]): number[] {
  const n = data.length;
  if (n === 0) throw new RangeError("percentiles of an empty image");
  const a = Float64Array.from(data);
  return ps.map((p) => {
    const rank = (p / 100) * (n - 1);
    const k = Math.floor(rank);
    const below = select(a, k);
    if (k + 1 >= n || rank === k) return below;
    // After select(k) everything right of k is >= a[k]: the next rank is their minimum.
    let above = Infinity;
    for (let i = k + 1; i < n; i++) if (a[i] < above) above = a[i];
    return below + (rank - k) * (above - below);
  });
}

/** Hoare quickselect: puts the k-th smallest at a[k] and returns it. */
function select(a: Float64Array, k: number): number {
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
 * Maps `data` from `range` linearly onto [outLow, outHigh], clipping. A flat
 * window (high == low) maps everything to outLow.
 */
export function mapRange(
  data: ArrayLike<number>,
  range: Range,
  outLow: number,
  outHigh: number,
  out: Float32Array = new Float32Array(data.length),
  offset = 0,
): Float32Array {
  const span = range.high - range.low;
  const scale = span > 0 ? (outHigh - outLow) / span : 0;
  const lo = Math.min(outLow, outHigh);
  const hi = Math.max(outLow, outHigh);
  for (let i = 0; i < data.length; i++) {
    const v = outLow + (data[i] - range.low) * scale;
    out[offset + i] = v < lo ? lo : v > hi ? hi : v;
  }
  return out;
}
