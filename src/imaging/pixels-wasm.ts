/**
 * A slice's per-pixel passes on WebAssembly SIMD kernels (assembly/pixels.ts,
 * built by `npm run build` into dist/wasm/pixels.wasm): rescale (raster.ts),
 * mapRange and the counting pass of the percentiles (window.ts). They do the
 * TypeScript reference's float64 arithmetic on float32 samples, four per
 * vector, with the same results to the bit: mapRange of a 256² slice takes
 * 55 µs against the loop's 160-230 µs (3-4x, copies included); each call
 * copies its samples into the module's memory and the results out. Those functions use them
 * wherever the module loads and its memory holds the image; the TypeScript
 * loops stay as the reference the tests compare against and the fallback.
 *
 * The memory grows to twice the largest image seen (float32), and never
 * beyond MAX_MEMORY_BYTES (asc --maximumMemory in package.json), enough for
 * a DEFAULT_MAX_DIMENSION² (4096²) slice.
 */
import { lazyInstance } from "./wasm-module.js";

/** The module's memory limit: 2112 pages of 64 KiB (asc --maximumMemory). */
export const MAX_MEMORY_BYTES = 2112 * 65536;

/** The module's exports (assembly/pixels.ts); pointers are byte offsets into `memory`. */
interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer };
  reserve(n: number): number;
  imagePointer(): number;
  collectedPointer(): number;
  countsPointer(): number;
  rescale(n: number, slope: number, intercept: number): number;
  mapRange(n: number, low: number, scale: number, outLow: number, lo: number, hi: number): void;
  count(n: number, low: number, high: number, capacity: number): void;
}

/** How the samples of an image fall about a bracket [low, high] (see orderStatistics in window.ts). */
export interface BracketCounts {
  below: number;
  atLow: number;
  atHigh: number;
  between: number;
  /** The samples strictly between, in the order met, up to the capacity asked for. */
  inside: Float32Array | Float64Array;
}

export class WasmPixels {
  constructor(private readonly wasm: Exports) {}

  /** rescale()'s loop: `out` = stored·slope + intercept as float32; false when a result is not finite. Undefined: too large. */
  rescale(stored: ArrayLike<number>, slope: number, intercept: number, out: Float32Array): boolean | undefined {
    if (!this.load(stored)) return undefined;
    const finite = this.wasm.rescale(stored.length, slope, intercept) !== 0;
    out.set(this.image(stored.length));
    return finite;
  }

  /** mapRange()'s loop into out[offset…]. False: too large. */
  mapRange(data: ArrayLike<number>, low: number, scale: number, outLow: number, lo: number, hi: number, out: Float32Array, offset: number): boolean {
    if (!this.load(data)) return false;
    this.wasm.mapRange(data.length, low, scale, outLow, lo, hi);
    out.set(this.image(data.length), offset);
    return true;
  }

  /**
   * Loads `data` once and counts it about each bracket; the `inside` of
   * each is a view that the next call (or the next bracket) overwrites.
   * Undefined: too large.
   */
  count(data: ArrayLike<number>, brackets: readonly { low: number; high: number }[], capacity: number, use: (bracket: number, counts: BracketCounts) => void): boolean {
    if (!this.load(data)) return false;
    for (let b = 0; b < brackets.length; b++) {
      this.wasm.count(data.length, brackets[b].low, brackets[b].high, capacity);
      const [below, atLow, atHigh, between] = new Int32Array(this.wasm.memory.buffer, this.wasm.countsPointer(), 4);
      const inside = new Float32Array(this.wasm.memory.buffer, this.wasm.collectedPointer(), Math.min(between, capacity));
      use(b, { below, atLow, atHigh, between, inside });
    }
    return true;
  }

  /** Copies `data` into the module as float32 (a native conversion for any typed array); false when it does not fit. */
  private load(data: ArrayLike<number>): boolean {
    if (data.length * 8 > MAX_MEMORY_BYTES || this.wasm.reserve(data.length) === 0) return false;
    this.image(data.length).set(data);
    return true;
  }

  // Views are made per use: growing the memory replaces its ArrayBuffer.
  private image(n: number): Float32Array {
    return new Float32Array(this.wasm.memory.buffer, this.wasm.imagePointer(), n);
  }
}

const pixels = lazyInstance("pixels.wasm", "pixel passes fall back to the TypeScript loops", (exports) => new WasmPixels(exports as Exports));

/**
 * This thread's WasmPixels, or undefined where the module does not load
 * (not built, or a runtime without WebAssembly SIMD); the reason is
 * wasmPixelsFailure() and a process warning, once.
 */
export const wasmPixels = (): WasmPixels | undefined => pixels.get();

/** Why wasmPixels() is undefined, if it is. */
export const wasmPixelsFailure = (): unknown => pixels.failure();
