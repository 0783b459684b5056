/**
 * WebAssembly SIMD kernels of the quality metrics (see src/quality/README.md):
 * for every window, the same float64 operations in the same order as the
 * TypeScript reference (src/quality/kernels.ts, filters.ts), two neighbouring
 * windows per f64x2 vector. Only the sums over all windows are kept in two
 * lanes and added at the end, so results differ from the reference by the
 * rounding of those sums (about 1e-15 relative).
 *
 * Built by `npm run build:wasm` (asc; part of `npm run build`, hence of
 * `npm ci`) into dist/wasm/metrics.wasm; src/quality/wasm.ts loads it.
 *
 * Nothing is allocated: reserve(width, height) lays out every buffer after
 * the static data and grows the memory to fit; the module's maximum memory
 * (asc --maximumMemory) is the bound. Images are float32, row-major,
 * `stride` samples from one row to the next, so a crop is a pointer into its
 * image. Vector loops run up to a pair (and padding) past the end of a row:
 * each buffer has PAD bytes behind it, and results of lanes past the end are
 * masked out of the sums.
 */

const F32: usize = 4;
const F64: usize = 8;
const V128: usize = 16;
/**
 * Window statistics: Σx, Σy, Σx², Σy², Σxy (or weighted means of those).
 * A row of them is stored by column pair: the five vectors of columns c and
 * c + 1 side by side (PAIR bytes), so that one address with constant
 * offsets reaches all five.
 */
const MOMENTS: usize = 5;
const PAIR: usize = MOMENTS * V128;
/** Bytes behind every buffer and row: room for the vector loops' overrun. */
const PAD: usize = 256;
/** Gaussian windows, in the order the loader writes their taps: SSIM's, then VIF's four scales. */
const WINDOWS = memory.data<i32>([11, 17, 9, 5, 3]);
const SSIM_WINDOW = 0;
const VIF_WINDOW = 1;
const VIF_SCALES = 4;
const TAPS = memory.data(64 * <i32>F64, <i32>V128);
/** sums(): Σ(x-y)², Σ|x-y|, count. */
const RESULTS = memory.data(3 * <i32>F64, <i32>V128);
/** Ring-buffer slots feeding the current output row, by tap. */
const TAP_ROWS = memory.data(32 * <i32>F32, <i32>V128);
/** halve(): where tap m of the first output column is, in the split input row. */
const TAP_COLUMNS = memory.data(32 * <i32>F32, <i32>V128);
const MAX_TAPS: usize = 17;
/** Widest image (DEFAULT_MAX_DIMENSION): the input rows lie a constant INPUT_ROW bytes apart, so one address reaches both. */
const MAX_WIDTH = 4096;
const INPUT_ROW: usize = (<usize>MAX_WIDTH + 64) * F64;

const ZERO = f64x2(0, 0);
const ONE = f64x2(1, 1);
const ALL = i64x2(-1, -1);
/** Lane 0 only: the last pair of an odd-length row. */
const LOW = i64x2(-1, 0);

// ---- layout ------------------------------------------------------------------

let imageX: usize = 0;
let imageY: usize = 0;
let unitX: usize = 0;
let unitY: usize = 0;
let byteX: usize = 0;
let byteY: usize = 0;
let maskAt: usize = 0;
/** VIF's coarser scales (float64): scales 2 and 4 in A, scale 3 in B. */
let levelAX: usize = 0;
let levelAY: usize = 0;
let levelBX: usize = 0;
let levelBY: usize = 0;
/**
 * Two input rows as float64, INPUT_ROW bytes apart: x and y of one image
 * row for the Gaussian windows; the even and odd samples of a row when
 * halving.
 */
let inputs: usize = 0;
/** MAX_TAPS slots of one row of window statistics: horizontal-pass rows awaiting the vertical pass (box windows: k + 2 slots). */
let ring: usize = 0;
/** The statistics of one row of windows. */
let out: usize = 0;
/** UQI: per-column counts of changing pixels (i32) and their block sums. */
let columnChanges: usize = 0;
let blockChanges: usize = 0;
/** Bytes of one float64 row (the widest, padded); a row of window statistics takes MOMENTS times that. */
let row: usize = 0;

/** Where reserve() lays out the next buffer; summed in 64 bits, so that no layout wraps around. */
let cursor: u64 = 0;

/** The next buffer of `bytes`, 16-byte aligned, with PAD bytes behind it. */
@inline function take(bytes: u64): usize {
  const at = cursor;
  cursor = (cursor + bytes + <u64>PAD + 15) & ~(<u64>15);
  return <usize>at;
}

/**
 * Lays out the buffers for images up to width × height and grows the memory
 * to fit. false when the memory cannot grow that far, or width > MAX_WIDTH.
 */
export function reserve(width: i32, height: i32): bool {
  if (width > MAX_WIDTH || width < 0 || height < 0) return false;
  const w = <u64>width;
  const n = w * <u64>height;
  const image = n * <u64>F32;
  const level = ((w >> 1) + 2) * ((<u64>height >> 1) + 2) * <u64>F64;
  const rowBytes = ((w + 48) & ~1) * <u64>F64;
  cursor = (<u64>__heap_base + 15) & ~(<u64>15);
  imageX = take(image);
  imageY = take(image);
  unitX = take(image);
  unitY = take(image);
  byteX = take(image);
  byteY = take(image);
  maskAt = take(n);
  levelAX = take(level);
  levelAY = take(level);
  levelBX = take(level >> 2);
  levelBY = take(level >> 2);
  inputs = take(<u64>(2 * INPUT_ROW));
  ring = take(<u64>MAX_TAPS * <u64>MOMENTS * rowBytes);
  out = take(<u64>MOMENTS * rowBytes);
  columnChanges = take(rowBytes);
  blockChanges = take(rowBytes);
  row = <usize>rowBytes;
  if (cursor > 0xffff_ffff) return false;
  const pages = <i32>((cursor + 0xffff) >> 16);
  const have = memory.size();
  return pages <= have || memory.grow(pages - have) >= 0;
}

export function imageXPointer(): usize { return imageX; }
export function imageYPointer(): usize { return imageY; }
export function unitXPointer(): usize { return unitX; }
export function unitYPointer(): usize { return unitY; }
export function byteXPointer(): usize { return byteX; }
export function byteYPointer(): usize { return byteY; }
export function maskPointer(): usize { return maskAt; }
export function resultsPointer(): usize { return RESULTS; }

/** Gaussian window `set` (0: SSIM's, 1..4: VIF's scales): its taps, written by the loader. */
export function tapsPointer(set: i32): usize {
  let p = TAPS;
  for (let s = 0; s < set; s++) p += <usize>load<i32>(WINDOWS + <usize>s * F32) * F64;
  return p;
}

export function tapCount(set: i32): i32 {
  return load<i32>(WINDOWS + <usize>set * F32);
}

// ---- whole-image passes ----------------------------------------------------------

/**
 * Maps imageX/imageY (physical units) into unitX/unitY ([0, 1]) and
 * byteX/byteY ([0, 255]) as mapRange (src/imaging/window.ts) does into
 * float32: v = outLow + (v - low)·scale, clipped, rounded to float32.
 */
export function mapWindow(n: i32, low: f64, unitScale: f64, byteScale: f64): void {
  const lo = f64x2.splat(low);
  const s1 = f64x2.splat(unitScale);
  const s255 = f64x2.splat(byteScale);
  const top255 = f64x2.splat(255);
  for (let i: usize = 0, end = <usize>n * F32; i < end; i += 2 * F32) {
    const x = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(imageX + i)), lo);
    const y = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(imageY + i)), lo);
    v128.store64_lane(unitX + i, clipToF32(x, s1, ONE), 0);
    v128.store64_lane(unitY + i, clipToF32(y, s1, ONE), 0);
    v128.store64_lane(byteX + i, clipToF32(x, s255, top255), 0);
    v128.store64_lane(byteY + i, clipToF32(y, s255, top255), 0);
  }
}

/** 0 + d·scale clipped to [0, top] like mapRange's `v < lo ? lo : v > hi ? hi : v` (pmax/pmin are those ternaries), as float32. */
@inline function clipToF32(d: v128, scale: v128, top: v128): v128 {
  const v = f64x2.add(ZERO, f64x2.mul(d, scale));
  return f32x4.demote_f64x2_zero(f64x2.pmin(f64x2.pmax(v, ZERO), top));
}

/**
 * Σ(x-y)², Σ|x-y| and the count over the n samples of two float32 images
 * (where mask, if not 0, is non-zero), into RESULTS.
 */
export function sums(x: usize, y: usize, n: i32, mask: usize): void {
  let squares = ZERO;
  let absolute = ZERO;
  let count = mask === 0 ? n : 0;
  const pairs = <usize>(n >> 1);
  for (let j: usize = 0; j < pairs; j++) {
    let keep = ALL;
    if (mask !== 0) {
      keep = maskPair(mask + 2 * j);
      count += <i32>(load<u8>(mask + 2 * j) !== 0) + <i32>(load<u8>(mask + 2 * j + 1) !== 0);
    }
    const d = f64x2.sub(f64x2.promote_low_f32x4(v128.load64_zero(x + j * 2 * F32)), f64x2.promote_low_f32x4(v128.load64_zero(y + j * 2 * F32)));
    squares = f64x2.add(squares, v128.and(f64x2.mul(d, d), keep));
    absolute = f64x2.add(absolute, v128.and(f64x2.abs(d), keep));
  }
  let sq = f64x2.extract_lane(squares, 0) + f64x2.extract_lane(squares, 1);
  let ab = f64x2.extract_lane(absolute, 0) + f64x2.extract_lane(absolute, 1);
  if (n & 1) {
    const i = <usize>(n - 1);
    if (mask === 0 || load<u8>(mask + i) !== 0) {
      const d = <f64>load<f32>(x + i * F32) - <f64>load<f32>(y + i * F32);
      sq += d * d;
      ab += Math.abs(d);
      if (mask !== 0) count++;
    }
  }
  store<f64>(RESULTS, sq);
  store<f64>(RESULTS, ab, 8);
  store<f64>(RESULTS, <f64>count, 16);
}

/** Two mask bytes as two 64-bit lane masks (all ones where non-zero). */
@inline function maskPair(p: usize): v128 {
  const bytes = v128.load16_splat(p);
  const wide = i64x2.extend_low_i32x4_u(i32x4.extend_low_i16x8_u(i16x8.extend_low_i8x16_u(bytes)));
  return v128.not(i64x2.eq(wide, i64x2.splat(0)));
}

// ---- rows -------------------------------------------------------------------------

/** The address of sample c of row r of an image of float32 (or, `wide`, float64) samples. */
@inline function sampleAt(src: usize, wide: bool, stride: i32, r: i32, c: usize): usize {
  return src + (<usize>r * <usize>stride + c) * (wide ? F64 : F32);
}

/** Samples c and c + 1 of an image row as float64. */
@inline function loadPair(from: usize, wide: bool, c: usize): v128 {
  return wide ? v128.load(from + c * F64) : f64x2.promote_low_f32x4(v128.load64_zero(from + c * F32));
}

/** Row r of x and y as the input rows (float64) for gaussianRow, zeros past w. */
function loadRows(x: usize, y: usize, wide: bool, stride: i32, r: i32, w: i32): void {
  const fromX = sampleAt(x, wide, stride, r, 0);
  const fromY = sampleAt(y, wide, stride, r, 0);
  const count = <usize>w;
  for (let c: usize = 0; c < count; c += 2) {
    const a = loadPair(fromX, wide, c);
    const b = loadPair(fromY, wide, c);
    const to = inputs + c * F64;
    v128.store(to, a);
    v128.store(to, b, INPUT_ROW);
  }
  memory.fill(inputs + count * F64, 0, 32 * F64);
  memory.fill(inputs + INPUT_ROW + count * F64, 0, 32 * F64);
}

/**
 * Horizontal pass of weightedMoments (filters.ts) over the input rows: the
 * weighted sums of x, y, x², y², xy for ow windows, taps folded in mirror
 * pairs, into dst.
 */
function gaussianRow(g: usize, k: i32, ow: i32, dst: usize): void {
  const half = <usize>((k - 1) >> 1);
  const last = <usize>(k - 1) * F64;
  const gc = v128.load64_splat(g + half * F64);
  for (let i = inputs, o = dst, end = inputs + <usize>ow * F64; i < end; i += V128, o += PAIR) {
    // The centre tap as the reference writes it: (gc·a)·a, not gc·(a·a).
    const a = v128.load(i + half * F64);
    const b = v128.load(i + half * F64, INPUT_ROW);
    const ga = f64x2.mul(gc, a);
    const gb = f64x2.mul(gc, b);
    let sx = ga;
    let sy = gb;
    let sxx = f64x2.mul(ga, a);
    let syy = f64x2.mul(gb, b);
    let sxy = f64x2.mul(ga, b);
    for (let t: usize = 0; t < half; t++) {
      const wt = v128.load64_splat(g + t * F64);
      const p = i + t * F64;
      const q = i + last - t * F64;
      const a1 = v128.load(p);
      const a2 = v128.load(q);
      const b1 = v128.load(p, INPUT_ROW);
      const b2 = v128.load(q, INPUT_ROW);
      sx = f64x2.add(sx, f64x2.mul(wt, f64x2.add(a1, a2)));
      sy = f64x2.add(sy, f64x2.mul(wt, f64x2.add(b1, b2)));
      sxx = f64x2.add(sxx, f64x2.mul(wt, f64x2.add(f64x2.mul(a1, a1), f64x2.mul(a2, a2))));
      syy = f64x2.add(syy, f64x2.mul(wt, f64x2.add(f64x2.mul(b1, b1), f64x2.mul(b2, b2))));
      sxy = f64x2.add(sxy, f64x2.mul(wt, f64x2.add(f64x2.mul(a1, b1), f64x2.mul(a2, b2))));
    }
    storeStatistics(o, sx, sy, sxx, syy, sxy);
  }
}

/**
 * Vertical pass of weightedMoments: the statistics of one row of windows
 * from the k horizontal-pass rows at TAP_ROWS, taps folded in mirror pairs
 * like the reference, into `out`.
 */
function verticalMoments(g: usize, k: i32, ow: i32): void {
  const half = <usize>((k - 1) >> 1);
  const gc = v128.load64_splat(g + half * F64);
  const centre = load<usize>(TAP_ROWS + half * F32);
  const last = TAP_ROWS + (<usize>k - 1) * F32;
  for (let o: usize = 0, end = <usize>((ow + 1) >> 1) * PAIR; o < end; o += PAIR) {
    const c = centre + o;
    let s0 = f64x2.mul(gc, v128.load(c));
    let s1 = f64x2.mul(gc, v128.load(c, 16));
    let s2 = f64x2.mul(gc, v128.load(c, 32));
    let s3 = f64x2.mul(gc, v128.load(c, 48));
    let s4 = f64x2.mul(gc, v128.load(c, 64));
    for (let t: usize = 0; t < half; t++) {
      const wt = v128.load64_splat(g + t * F64);
      const p = load<usize>(TAP_ROWS + t * F32) + o;
      const q = load<usize>(last - t * F32) + o;
      s0 = f64x2.add(s0, f64x2.mul(wt, f64x2.add(v128.load(p), v128.load(q))));
      s1 = f64x2.add(s1, f64x2.mul(wt, f64x2.add(v128.load(p, 16), v128.load(q, 16))));
      s2 = f64x2.add(s2, f64x2.mul(wt, f64x2.add(v128.load(p, 32), v128.load(q, 32))));
      s3 = f64x2.add(s3, f64x2.mul(wt, f64x2.add(v128.load(p, 48), v128.load(q, 48))));
      s4 = f64x2.add(s4, f64x2.mul(wt, f64x2.add(v128.load(p, 64), v128.load(q, 64))));
    }
    storeStatistics(out + o, s0, s1, s2, s3, s4);
  }
}

/** The five statistics of a column pair, in their order at `at`. */
@inline function storeStatistics(at: usize, sx: v128, sy: v128, sxx: v128, syy: v128, sxy: v128): void {
  v128.store(at, sx);
  v128.store(at, sy, 16);
  v128.store(at, sxx, 32);
  v128.store(at, syy, 48);
  v128.store(at, sxy, 64);
}

/** Points TAP_ROWS[t] at the ring slot of row first + t (slot (first + t) mod k, `bytes` long), t < k. */
function pointTaps(first: i32, k: i32, bytes: usize): void {
  for (let t = 0; t < k; t++) store<usize>(TAP_ROWS + <usize>t * F32, ring + <usize>((first + t) % k) * bytes);
}

// ---- per-window formulas ------------------------------------------------------------

const SSIM = 0;
const UQI = 1;
const VIF = 2;

/** Two-lane sum of SSIM or UQI terms. */
let total = ZERO;
/** VIF: running products of the factors of Σ log(1 + ·), and the logs already taken. */
let numProduct = ONE;
let denProduct = ONE;
let numLog: f64 = 0;
let denLog: f64 = 0;

let meanScale: f64 = 1;
let covScale: f64 = 1;
let c1: f64 = 0;
let c2: f64 = 0;
let noise: f64 = 2;
/** 1 / noise when that is exact (noise a power of two, as VIF's 2), else 0: a multiplication instead of a third division per window. */
let noiseInverse: f64 = 0;
let eps: f64 = 1e-10;

/**
 * Adds the statistics of one row of ow windows (at `out`) to the running
 * result. Each formula has a loop of its own, over column pairs; in the
 * last pair of an odd row only lane 0 is valid.
 */
function windowsRow(formula: i32, ow: i32, x: usize, y: usize, stride: i32, r: i32): void {
  const full = out + <usize>(ow >> 1) * PAIR;
  const end = out + <usize>((ow + 1) >> 1) * PAIR;
  if (formula === SSIM) ssimRow(full, end);
  else if (formula === UQI) uqiRow(full, end, x + <usize>r * <usize>stride * F32, y + <usize>r * <usize>stride * F32, stride);
  else vifRow(full, end);
}

/** kernels.ts ssim, per window. */
function ssimRow(full: usize, end: usize): void {
  const ms = f64x2.splat(meanScale);
  const cs = f64x2.splat(covScale);
  const two = f64x2.splat(2);
  const k1 = f64x2.splat(c1);
  const k2 = f64x2.splat(c2);
  let sum = total;
  for (let at = out; at < end; at += PAIR) {
    const mx = f64x2.mul(v128.load(at), ms);
    const my = f64x2.mul(v128.load(at, 16), ms);
    const vx = f64x2.mul(cs, f64x2.sub(f64x2.mul(v128.load(at, 32), ms), f64x2.mul(mx, mx)));
    const vy = f64x2.mul(cs, f64x2.sub(f64x2.mul(v128.load(at, 48), ms), f64x2.mul(my, my)));
    const cxy = f64x2.mul(cs, f64x2.sub(f64x2.mul(v128.load(at, 64), ms), f64x2.mul(mx, my)));
    const numerator = f64x2.mul(f64x2.add(f64x2.mul(f64x2.mul(two, mx), my), k1), f64x2.add(f64x2.mul(two, cxy), k2));
    const denominator = f64x2.mul(f64x2.add(f64x2.add(f64x2.mul(mx, mx), f64x2.mul(my, my)), k1), f64x2.add(f64x2.add(vx, vy), k2));
    sum = f64x2.add(sum, v128.and(f64x2.div(numerator, denominator), at < full ? ALL : LOW));
  }
  total = sum;
}

/**
 * kernels.ts uqi, per window, for the row of windows whose top-left pixels
 * start at xr, yr: the constant-window branch where the 7×7 block of
 * neighbour changes (blockChanges) is empty and the corners agree.
 */
function uqiRow(full: usize, end: usize, xr: usize, yr: usize, stride: i32): void {
  const inv = f64x2.splat(1.0 / 64);
  const corner = (<usize>stride + 1) * 7 * F32;
  let sum = total;
  // c: byte offset of the pair's first column in float32 (and int32) rows.
  for (let at = out, c: usize = 0; at < end; at += PAIR, c += 2 * F32) {
    const valid = at < full ? ALL : LOW;
    const xa = v128.load64_zero(xr + c);
    const ya = v128.load64_zero(yr + c);
    const same = v128.and(f32x4.eq(xa, v128.load64_zero(xr + c + corner)), f32x4.eq(ya, v128.load64_zero(yr + c + corner)));
    const still = i64x2.eq(i64x2.extend_low_i32x4_s(v128.load64_zero(blockChanges + c)), ZERO);
    const flat = v128.and(still, i64x2.extend_low_i32x4_s(same));
    const mx = f64x2.mul(v128.load(at), inv);
    const my = f64x2.mul(v128.load(at, 16), inv);
    const d2 = f64x2.add(f64x2.mul(mx, mx), f64x2.mul(my, my));
    const d1 = f64x2.add(f64x2.sub(f64x2.mul(v128.load(at, 32), inv), f64x2.mul(mx, mx)), f64x2.sub(f64x2.mul(v128.load(at, 48), inv), f64x2.mul(my, my)));
    const cov = f64x2.sub(f64x2.mul(v128.load(at, 64), inv), f64x2.mul(mx, my));
    const den = f64x2.mul(d1, d2);
    let q = f64x2.div(f64x2.mul(f64x2.mul(f64x2.mul(f64x2.splat(4), cov), mx), my), den);
    if (v128.any_true(v128.and(v128.or(flat, f64x2.eq(den, ZERO)), valid))) {
      // Constant windows (flat background) and zero denominators: their divisions only where they occur.
      const two = f64x2.splat(2);
      const luminance = f64x2.div(f64x2.mul(f64x2.mul(two, mx), my), d2);
      const flatOnly = v128.and(f64x2.eq(d1, ZERO), f64x2.ne(d2, ZERO));
      q = v128.bitselect(q, v128.bitselect(luminance, ONE, flatOnly), f64x2.ne(den, ZERO));
      const a = f64x2.promote_low_f32x4(xa);
      const b = f64x2.promote_low_f32x4(ya);
      const s = f64x2.add(f64x2.mul(a, a), f64x2.mul(b, b));
      const exact = v128.bitselect(ONE, f64x2.div(f64x2.mul(f64x2.mul(two, a), b), s), f64x2.eq(s, ZERO));
      q = v128.bitselect(exact, q, flat);
    }
    sum = f64x2.add(sum, v128.and(q, valid));
  }
  total = sum;
}

/** kernels.ts vifp, per window: the factors of Σ log(1 + ·) into the running products. */
function vifRow(full: usize, end: usize): void {
  const e = f64x2.splat(eps);
  const n = f64x2.splat(noise);
  const byInverse = noiseInverse !== 0;
  const inverse = f64x2.splat(noiseInverse);
  const limit = f64x2.splat(1e200);
  let np = numProduct;
  let dp = denProduct;
  for (let at = out; at < end; at += PAIR) {
    const mx = v128.load(at);
    const my = v128.load(at, 16);
    let vx = f64x2.pmax(f64x2.sub(v128.load(at, 32), f64x2.mul(mx, mx)), ZERO);
    const vy = f64x2.pmax(f64x2.sub(v128.load(at, 48), f64x2.mul(my, my)), ZERO);
    const cov = f64x2.sub(v128.load(at, 64), f64x2.mul(mx, my));
    let gain = f64x2.div(cov, f64x2.add(vx, e));
    let sv = f64x2.sub(vy, f64x2.mul(gain, cov));
    const flatX = f64x2.lt(vx, e);
    gain = v128.andnot(gain, flatX);
    sv = v128.bitselect(vy, sv, flatX);
    vx = v128.andnot(vx, flatX);
    const flatY = f64x2.lt(vy, e);
    gain = v128.andnot(gain, flatY);
    sv = v128.andnot(sv, flatY);
    const negative = f64x2.lt(gain, ZERO);
    sv = v128.bitselect(vy, sv, negative);
    gain = v128.andnot(gain, negative);
    sv = f64x2.pmax(sv, e); // sv <= eps ? eps : sv (equal values where sv == eps)
    let fn = f64x2.add(ONE, f64x2.div(f64x2.mul(f64x2.mul(gain, gain), vx), f64x2.add(sv, n)));
    let fd = f64x2.add(ONE, byInverse ? f64x2.mul(vx, inverse) : f64x2.div(vx, n));
    if (at >= full) {
      // Lane 1 of an odd row's last pair is past the row: factors of 1.
      fn = f64x2.replace_lane(fn, 1, 1);
      fd = f64x2.replace_lane(fd, 1, 1);
    }
    // Both factors are >= 1: the products only grow, and are flushed to a log
    // above 1e200. The reference also logs single factors above 1e100 apart;
    // here none can occur: with float32 samples (|x| < 3.5e38) variances stay
    // below 1.2e77 and so do both factors, and 1e200 · 1e77 cannot overflow.
    np = f64x2.mul(np, fn);
    dp = f64x2.mul(dp, fd);
    if (v128.any_true(f64x2.gt(f64x2.pmax(np, dp), limit))) {
      numLog += lanesLog(np);
      denLog += lanesLog(dp);
      np = ONE;
      dp = ONE;
    }
  }
  numProduct = np;
  denProduct = dp;
}

@inline function lanesLog(v: v128): f64 {
  return Math.log(f64x2.extract_lane(v, 0)) + Math.log(f64x2.extract_lane(v, 1));
}

@inline function totalLanes(): f64 {
  return f64x2.extract_lane(total, 0) + f64x2.extract_lane(total, 1);
}

// ---- window statistics ----------------------------------------------------------------

/**
 * weightedMoments (filters.ts) with the k-tap window g over x, y (float32
 * or, `wide`, float64 images), one row of windows at a time through a ring
 * of k horizontal-pass rows, each row handed to the formula.
 */
function gaussianWindows(formula: i32, x: usize, y: usize, wide: bool, stride: i32, w: i32, h: i32, g: usize, k: i32): void {
  const ow = w - k + 1;
  const oh = h - k + 1;
  const slot = MOMENTS * row;
  for (let r = 0; r < oh; r++) {
    for (let rr = r === 0 ? 0 : r + k - 1; rr < r + k; rr++) {
      loadRows(x, y, wide, stride, rr, w);
      gaussianRow(g, k, ow, ring + <usize>(rr % k) * slot);
    }
    pointTaps(r, k, slot);
    verticalMoments(g, k, ow);
    windowsRow(formula, ow, x, y, stride, r);
  }
}

/**
 * boxMoments (filters.ts): window sums over k×k, running sums along each
 * row then down each column, for the first `rows` rows of windows, each
 * handed to the formula. Rows are summed two at a time (one per lane) into
 * a ring of k + 2 slots: the k rows of the window, the one leaving, and
 * one computed ahead.
 */
function boxWindows(formula: i32, x: usize, y: usize, stride: i32, w: i32, h: i32, k: i32, rows: i32): void {
  const ow = w - k + 1;
  const slots = k + 2;
  const slot = MOMENTS * row;
  const span = <usize>((ow + 1) >> 1) * PAIR;
  let ready = 0;
  for (let r = 0; r < rows; r++) {
    for (; ready < r + k; ready += 2) {
      const next = ready + 1 < h ? ready + 1 : ready;
      boxRows(x, y, stride, ready, next, w, k, ring + <usize>(ready % slots) * slot, ring + <usize>(next % slots) * slot);
    }
    if (r === 0) {
      // The first row of windows: the k rows added in order, from 0 as the reference does.
      memory.fill(out, 0, span);
      for (let t = 0; t < k; t++) {
        const src = ring + <usize>t * slot;
        for (let i: usize = 0; i < span; i += V128) v128.store(out + i, f64x2.add(v128.load(out + i), v128.load(src + i)));
      }
    } else {
      const entering = ring + <usize>((r + k - 1) % slots) * slot;
      const leaving = ring + <usize>((r - 1) % slots) * slot;
      for (let i: usize = 0; i < span; i += V128) {
        v128.store(out + i, f64x2.sub(f64x2.add(v128.load(out + i), v128.load(entering + i)), v128.load(leaving + i)));
      }
    }
    if (formula === UQI) countChanges(x, y, stride, w, r);
    windowsRow(formula, formula === UQI ? w - 8 : ow, x, y, stride, r);
  }
}

/**
 * Running sums of x, y, x², y², xy over k samples along rows ra (lane 0)
 * and rb (lane 1), into the slots at dstA and dstB; the two rows' chains
 * are independent, so a vector carries both.
 */
function boxRows(x: usize, y: usize, stride: i32, ra: i32, rb: i32, w: i32, k: i32, dstA: usize, dstB: usize): void {
  const xa = sampleAt(x, false, stride, ra, 0);
  const xb = sampleAt(x, false, stride, rb, 0);
  const ya = sampleAt(y, false, stride, ra, 0);
  const yb = sampleAt(y, false, stride, rb, 0);
  let sx = ZERO;
  let sy = ZERO;
  let sxx = ZERO;
  let syy = ZERO;
  let sxy = ZERO;
  for (let c: usize = 0; c < <usize>k * F32; c += F32) {
    const a = rowPair(xa + c, xb + c);
    const b = rowPair(ya + c, yb + c);
    sx = f64x2.add(sx, a);
    sy = f64x2.add(sy, b);
    sxx = f64x2.add(sxx, f64x2.mul(a, a));
    syy = f64x2.add(syy, f64x2.mul(b, b));
    sxy = f64x2.add(sxy, f64x2.mul(a, b));
  }
  storeLanes(dstA, dstB, sx, sy, sxx, syy, sxy);
  const back = <usize>k * F32;
  for (let c = back, o: usize = 1; c < <usize>w * F32; c += F32, o++) {
    const a = rowPair(xa + c, xb + c);
    const b = rowPair(ya + c, yb + c);
    const a0 = rowPair(xa + c - back, xb + c - back);
    const b0 = rowPair(ya + c - back, yb + c - back);
    sx = f64x2.add(sx, f64x2.sub(a, a0));
    sy = f64x2.add(sy, f64x2.sub(b, b0));
    sxx = f64x2.add(sxx, f64x2.sub(f64x2.mul(a, a), f64x2.mul(a0, a0)));
    syy = f64x2.add(syy, f64x2.sub(f64x2.mul(b, b), f64x2.mul(b0, b0)));
    sxy = f64x2.add(sxy, f64x2.sub(f64x2.mul(a, b), f64x2.mul(a0, b0)));
    const at = (o >> 1) * PAIR + (o & 1) * F64;
    storeLanes(dstA + at, dstB + at, sx, sy, sxx, syy, sxy);
  }
}

/** The float32 samples at pa and pb as the two float64 lanes of a vector. */
@inline function rowPair(pa: usize, pb: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load32_lane(pb, v128.load32_zero(pa), 1));
}

/** Lane 0 of each statistic to a, lane 1 to b (one column of two rows of statistics). */
@inline function storeLanes(a: usize, b: usize, sx: v128, sy: v128, sxx: v128, syy: v128, sxy: v128): void {
  v128.store64_lane(a, sx, 0);
  v128.store64_lane(b, sx, 1);
  v128.store64_lane(a, sy, 0, 16);
  v128.store64_lane(b, sy, 1, 16);
  v128.store64_lane(a, sxx, 0, 32);
  v128.store64_lane(b, sxx, 1, 32);
  v128.store64_lane(a, syy, 0, 48);
  v128.store64_lane(b, syy, 1, 48);
  v128.store64_lane(a, sxy, 0, 64);
  v128.store64_lane(b, sxy, 1, 64);
}

/**
 * UQI's neighbourChanges for the row of 8×8 windows r: blockChanges[c] is
 * minus the number of pixels of the 7×7 block at (r, c) that differ from
 * their right or lower neighbour in x or y (exact, integer).
 * columnChanges holds the column sums over block rows r..r+6.
 */
function countChanges(x: usize, y: usize, stride: i32, w: i32, r: i32): void {
  const columns = <usize>(w - 1) * F32;
  if (r === 0) {
    memory.fill(columnChanges, 0, columns + 16 * F32);
    for (let t = 0; t < 7; t++) addFlags(x, y, stride, w, t, 1);
  } else {
    addFlags(x, y, stride, w, r + 6, 1);
    addFlags(x, y, stride, w, r - 1, -1);
  }
  for (let c: usize = 0, end = <usize>(w - 7) * F32; c < end; c += V128) {
    let s = v128.load(columnChanges + c);
    for (let j: usize = 1; j < 7; j++) s = i32x4.add(s, v128.load(columnChanges + c + j * F32));
    v128.store(blockChanges + c, s);
  }
}

/** Adds (sign 1) or subtracts (-1) the change flags (-1 where a pixel differs from a neighbour) of row fr. */
function addFlags(x: usize, y: usize, stride: i32, w: i32, fr: i32, sign: i32): void {
  const row = <usize>fr * <usize>stride * F32;
  const below = <usize>stride * F32;
  for (let c: usize = 0, end = <usize>(w - 1) * F32; c < end; c += V128) {
    const p = x + row + c;
    const q = y + row + c;
    const xv = v128.load(p);
    const yv = v128.load(q);
    const flags = v128.or(
      v128.or(f32x4.ne(xv, v128.load(p + F32)), f32x4.ne(xv, v128.load(p + below))),
      v128.or(f32x4.ne(yv, v128.load(q + F32)), f32x4.ne(yv, v128.load(q + below))),
    );
    const counts = v128.load(columnChanges + c);
    v128.store(columnChanges + c, sign > 0 ? i32x4.add(counts, flags) : i32x4.sub(counts, flags));
  }
}

/**
 * filterAndHalve (filters.ts): 'valid' k×k filtering of one image at every
 * second row and column from the first, into dst (float64, dstStride
 * samples per row). The horizontal pass reads the row's even and odd
 * samples as two contiguous arrays, so a vector holds two output columns.
 */
function halve(src: usize, wide: bool, stride: i32, w: i32, h: i32, g: usize, k: i32, dst: usize, dstStride: i32): void {
  const ow = ((w - k) >> 1) + 1;
  const oh = ((h - k) >> 1) + 1;
  const bytes = <usize>ow * F64;
  // Sample 2c + m is in the even (m even) or odd row, m >> 1 further on.
  for (let m: usize = 0; m < <usize>k; m++) store<usize>(TAP_COLUMNS + m * F32, inputs + (m & 1) * INPUT_ROW + (m >> 1) * F64);
  let next = 0;
  for (let r = 0; r < oh; r++) {
    for (; next < 2 * r + k; next++) {
      splitRow(src, wide, stride, next, w);
      symmetricPass(TAP_COLUMNS, g, k, bytes, ring + <usize>(next % k) * row);
    }
    pointTaps(2 * r, k, row);
    symmetricPass(TAP_ROWS, g, k, bytes, dst + <usize>r * <usize>dstStride * F64);
  }
}

/**
 * One pass of a symmetric k-tap filter, mirror pairs folded as the
 * reference does: dst = g_c·s_c + Σ_t g_t·(s_t + s_(k-1-t)), where s_m is
 * the row at taps[m]. Accumulated in dst tap pair by tap pair, so that each
 * loop streams through whole rows with fixed addresses.
 */
function symmetricPass(taps: usize, g: usize, k: i32, bytes: usize, dst: usize): void {
  const half = <usize>((k - 1) >> 1);
  const gc = v128.load64_splat(g + half * F64);
  const centre = load<usize>(taps + half * F32);
  for (let i: usize = 0; i < bytes; i += V128) v128.store(dst + i, f64x2.mul(gc, v128.load(centre + i)));
  for (let t: usize = 0; t < half; t++) {
    const wt = v128.load64_splat(g + t * F64);
    const p = load<usize>(taps + t * F32);
    const q = load<usize>(taps + (<usize>k - 1 - t) * F32);
    for (let i: usize = 0; i < bytes; i += V128) {
      v128.store(dst + i, f64x2.add(v128.load(dst + i), f64x2.mul(wt, f64x2.add(v128.load(p + i), v128.load(q + i)))));
    }
  }
}

/** The even samples of row r (float64) into the first input row, the odd ones into the second; zeros past them. */
function splitRow(src: usize, wide: bool, stride: i32, r: i32, w: i32): void {
  const from = sampleAt(src, wide, stride, r, 0);
  for (let c: usize = 0, j = inputs; c < <usize>w; c += 4, j += V128) {
    let even: v128, odd: v128;
    if (wide) {
      const v0 = v128.load(from + c * F64);
      const v1 = v128.load(from + c * F64, 16);
      even = f64x2.shuffle(v0, v1, 0, 2);
      odd = f64x2.shuffle(v0, v1, 1, 3);
    } else {
      const v = v128.load(from + c * F32);
      even = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 0, 2, 1, 3));
      odd = f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 1, 3, 0, 2));
    }
    v128.store(j, even);
    v128.store(j, odd, INPUT_ROW);
  }
  memory.fill(inputs + <usize>((w + 1) >> 1) * F64, 0, 32 * F64);
  memory.fill(inputs + INPUT_ROW + <usize>(w >> 1) * F64, 0, 32 * F64);
}

// ---- metrics ------------------------------------------------------------------------

/** kernels.ts ssim: mean over the windows; Gaussian (window set 0) or k×k box. */
export function ssim(x: usize, y: usize, w: i32, h: i32, stride: i32, gaussian: bool, k: i32, means: f64, covariances: f64, k1: f64, k2: f64): f64 {
  total = ZERO;
  meanScale = means;
  covScale = covariances;
  c1 = k1;
  c2 = k2;
  if (gaussian) gaussianWindows(SSIM, x, y, false, stride, w, h, tapsPointer(SSIM_WINDOW), k);
  else boxWindows(SSIM, x, y, stride, w, h, k, h - k + 1);
  return totalLanes() / (<f64>(w - k + 1) * <f64>(h - k + 1));
}

/** kernels.ts uqi: 8×8 windows at rows 0..h-9, columns 0..w-9. */
export function uqi(x: usize, y: usize, w: i32, h: i32, stride: i32): f64 {
  total = ZERO;
  boxWindows(UQI, x, y, stride, w, h, 8, h - 8);
  return totalLanes() / (<f64>(h - 8) * <f64>(w - 8));
}

/** kernels.ts vifp: four scales, ratio of the sums of logs; NaN when the denominator is 0. */
export function vifp(x: usize, y: usize, w: i32, h: i32, stride: i32, noiseVariance: f64, epsilon: f64): f64 {
  noise = noiseVariance;
  const inverse = 1 / noiseVariance;
  noiseInverse = (reinterpret<u64>(noiseVariance) & 0xf_ffff_ffff_ffff) === 0 && inverse * noiseVariance === 1 ? inverse : 0;
  eps = epsilon;
  numProduct = ONE;
  denProduct = ONE;
  numLog = 0;
  denLog = 0;
  let sx = x;
  let sy = y;
  let wide = false;
  for (let s = 0; s < VIF_SCALES; s++) {
    const g = tapsPointer(VIF_WINDOW + s);
    const k = tapCount(VIF_WINDOW + s);
    if (s > 0) {
      const ow = ((w - k) >> 1) + 1;
      const tx = s === 2 ? levelBX : levelAX;
      const ty = s === 2 ? levelBY : levelAY;
      const next = ow + (ow & 1);
      halve(sx, wide, stride, w, h, g, k, tx, next);
      halve(sy, wide, stride, w, h, g, k, ty, next);
      sx = tx;
      sy = ty;
      wide = true;
      w = ow;
      h = ((h - k) >> 1) + 1;
      stride = next;
    }
    gaussianWindows(VIF, sx, sy, wide, stride, w, h, g, k);
  }
  const num = numLog + lanesLog(numProduct);
  const den = denLog + lanesLog(denProduct);
  return den === 0 ? NaN : num / den;
}
