/**
 * WebAssembly SIMD kernels of a slice's per-pixel passes (see
 * src/imaging/pixels-wasm.ts): the rescale of decoded samples, the counting
 * pass of the percentiles and the window mapping, four float32 samples per
 * vector. The arithmetic is the TypeScript reference's (src/imaging/raster.ts
 * rescale, src/imaging/window.ts mapRange and orderStatistics): float64 on
 * float32 samples, rounded to float32 on store, the same operations in the
 * same order, so the results are the same to the bit.
 *
 * Built by `npm run build:wasm` (asc; part of `npm run build`, hence of
 * `npm ci`) into dist/wasm/pixels.wasm.
 *
 * Nothing is allocated: reserve(n) lays out one image of n float32 samples
 * and, after it, room for the values a counting pass collects, then grows
 * the memory to fit; the module's maximum memory (asc --maximumMemory) is
 * the bound. Vector loops cover the whole vectors; the last n mod 4 samples
 * are done one at a time.
 */

const F32: usize = 4;
const V128: usize = 16;
/** count(): below, at low, at high, strictly between. */
const COUNTS = memory.data(4 * <i32>F32, <i32>V128);

let image: usize = 0;
let collected: usize = 0;

/** Lays out an image of `n` float32 samples and room to collect `n` more; false when the memory cannot hold them. */
export function reserve(n: i32): bool {
  if (n < 0) return false;
  const bytes = (<u64>n * <u64>F32 + 15) & ~(<u64>15);
  const start = (<u64>__heap_base + 15) & ~(<u64>15);
  const end = start + 2 * bytes;
  if (end > 0xffff_ffff) return false;
  image = <usize>start;
  collected = <usize>(start + bytes);
  const pages = <i32>((end + 0xffff) >> 16);
  const have = memory.size();
  return pages <= have || memory.grow(pages - have) >= 0;
}

export function imagePointer(): usize {
  return image;
}

export function collectedPointer(): usize {
  return collected;
}

export function countsPointer(): usize {
  return COUNTS;
}

/** Four float64 results, rounded to float32 and stored as one vector. */
@inline function storeF32(at: usize, low: v128, high: v128): void {
  v128.store(at, i64x2.shuffle(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 2));
}

@inline function lowPair(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

@inline function highPair(v: v128): v128 {
  return f64x2.promote_low_f32x4(i64x2.shuffle(v, v, 1, 1));
}

/**
 * image[i] = image[i]·slope + intercept, in place, as rescale() does (the
 * slope already resolved: 0 means 1 there). True when every result is
 * finite as float32 (x·0 is 0 for finite x and NaN otherwise, and NaN
 * survives the sum).
 */
export function rescale(n: i32, slope: f64, intercept: f64): bool {
  const m = f64x2.splat(slope);
  const b = f64x2.splat(intercept);
  let check = f32x4.splat(0);
  const zero = f32x4.splat(0);
  const vectors = <usize>(n >> 2) << 4;
  for (let i: usize = 0; i < vectors; i += V128) {
    const v = v128.load(image + i);
    storeF32(image + i, f64x2.add(f64x2.mul(lowPair(v), m), b), f64x2.add(f64x2.mul(highPair(v), m), b));
    check = f32x4.add(check, f32x4.mul(v128.load(image + i), zero));
  }
  let tail: f32 = 0;
  for (let i = vectors; i < <usize>n * F32; i += F32) {
    const v = <f32>(<f64>load<f32>(image + i) * slope + intercept);
    store<f32>(image + i, v);
    tail += v * 0;
  }
  return tail == 0 && v128.all_true<i32>(f32x4.eq(check, zero));
}

/**
 * image[i] = clip(outLow + (image[i] − low)·scale) into [lo, hi], in place,
 * as mapRange() does (its ternaries are pmax then pmin, NaN included).
 */
export function mapRange(n: i32, low: f64, scale: f64, outLow: f64, lo: f64, hi: f64): void {
  const l = f64x2.splat(low);
  const s = f64x2.splat(scale);
  const o = f64x2.splat(outLow);
  const bottom = f64x2.splat(lo);
  const top = f64x2.splat(hi);
  const vectors = <usize>(n >> 2) << 4;
  for (let i: usize = 0; i < vectors; i += V128) {
    const v = v128.load(image + i);
    const a = f64x2.add(o, f64x2.mul(f64x2.sub(lowPair(v), l), s));
    const c = f64x2.add(o, f64x2.mul(f64x2.sub(highPair(v), l), s));
    storeF32(image + i, f64x2.pmin(f64x2.pmax(a, bottom), top), f64x2.pmin(f64x2.pmax(c, bottom), top));
  }
  for (let i = vectors; i < <usize>n * F32; i += F32) {
    const v = outLow + (<f64>load<f32>(image + i) - low) * scale;
    store<f32>(image + i, <f32>(v < lo ? lo : v > hi ? hi : v));
  }
}

/**
 * orderStatistics()'s pass over one bracket [low, high]: counts the samples
 * below low, equal to low, equal to high (when above low) and strictly
 * between, into COUNTS, and collects those between (up to `capacity`, in
 * the order met) from `collected` on. NaN counts nowhere.
 */
export function count(n: i32, low: f32, high: f32, capacity: i32): void {
  const l = f32x4.splat(low);
  const h = f32x4.splat(high);
  let below = i32x4.splat(0);
  let atLow = i32x4.splat(0);
  let atHigh = i32x4.splat(0);
  let between: i32 = 0;
  const vectors = <usize>(n >> 2) << 4;
  for (let i: usize = 0; i < vectors; i += V128) {
    const v = v128.load(image + i);
    const isLow = f32x4.eq(v, l);
    // Masks are -1 where true: subtracting them counts.
    below = i32x4.sub(below, f32x4.lt(v, l));
    atLow = i32x4.sub(atLow, isLow);
    atHigh = i32x4.sub(atHigh, v128.andnot(f32x4.eq(v, h), isLow));
    const inside = v128.and(f32x4.gt(v, l), f32x4.lt(v, h));
    if (v128.any_true(inside)) {
      for (let k: usize = 0; k < 4; k++) {
        const x = load<f32>(image + i + k * F32);
        if (x > low && x < high) {
          if (between < capacity) store<f32>(collected + <usize>between * F32, x);
          between++;
        }
      }
    }
  }
  let b = i32x4.extract_lane(below, 0) + i32x4.extract_lane(below, 1) + i32x4.extract_lane(below, 2) + i32x4.extract_lane(below, 3);
  let a = i32x4.extract_lane(atLow, 0) + i32x4.extract_lane(atLow, 1) + i32x4.extract_lane(atLow, 2) + i32x4.extract_lane(atLow, 3);
  let t = i32x4.extract_lane(atHigh, 0) + i32x4.extract_lane(atHigh, 1) + i32x4.extract_lane(atHigh, 2) + i32x4.extract_lane(atHigh, 3);
  for (let i = vectors; i < <usize>n * F32; i += F32) {
    const x = load<f32>(image + i);
    if (x < low) b++;
    else if (x <= high) {
      if (x == low) a++;
      else if (x == high) t++;
      else {
        if (between < capacity) store<f32>(collected + <usize>between * F32, x);
        between++;
      }
    }
  }
  store<i32>(COUNTS, b);
  store<i32>(COUNTS, a, 4);
  store<i32>(COUNTS, t, 8);
  store<i32>(COUNTS, between, 12);
}
