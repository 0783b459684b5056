/**
 * The quality metrics on WebAssembly SIMD kernels (assembly/metrics.ts, built
 * by `npm run build` into dist/wasm/metrics.wasm). Per window they do the
 * float64 arithmetic of the TypeScript kernels (kernels.ts, the reference
 * the tests compare against) in the same order, two windows per vector;
 * only the sums over windows round differently. computeQuality (quality.ts)
 * uses them wherever the module loads and its memory holds the image.
 *
 * One instance per thread (every worker imports its own copy of this
 * module), made on first use: a synchronous read and compile of ~12 KB,
 * once, like the metrics themselves meant for worker threads. Its memory
 * grows to the largest image seen, about 30 bytes per pixel (2 MB at 256²),
 * and never beyond MAX_MEMORY_BYTES (asc --maximumMemory in package.json),
 * enough for a DEFAULT_MAX_DIMENSION² (4096²) slice; a larger image is left
 * to the TypeScript kernels.
 */
import type { Raster } from "../imaging/raster.js";
import { lazyInstance } from "../imaging/wasm-module.js";
import { resolveTargetWindow } from "../imaging/window.js";
import { checkPair, SSIM_GAUSSIAN_TAPS, SSIM_SIDE, UQI_SIZE, VIF_EPS, VIF_MIN_SIDE, VIF_NOISE, VIF_TAPS, type SsimOptions } from "./kernels.js";
import { foregroundMask } from "./mask.js";
import type { QualityOptions, QualityReport, QualityValues, TargetWindow } from "./quality.js";

/** The module's memory limit: 8192 pages of 64 KiB (asc --maximumMemory). */
export const MAX_MEMORY_BYTES = 8192 * 65536;

/** The module's exports (assembly/metrics.ts); pointers are byte offsets into `memory`. */
interface Exports {
  readonly memory: { readonly buffer: ArrayBuffer };
  reserve(width: number, height: number): number;
  imageXPointer(): number;
  imageYPointer(): number;
  unitXPointer(): number;
  unitYPointer(): number;
  byteXPointer(): number;
  byteYPointer(): number;
  maskPointer(): number;
  resultsPointer(): number;
  tapsPointer(set: number): number;
  tapCount(set: number): number;
  mapWindow(n: number, low: number, unitScale: number, byteScale: number): void;
  sums(x: number, y: number, n: number, mask: number): void;
  ssim(x: number, y: number, w: number, h: number, stride: number, gaussian: number, k: number, means: number, covariances: number, c1: number, c2: number): number;
  uqi(x: number, y: number, w: number, h: number, stride: number): number;
  vifp(x: number, y: number, w: number, h: number, stride: number, noise: number, eps: number): number;
}

/** An image in the module's memory: float32 samples at `at`, rows `stride` samples apart. */
interface Region {
  readonly at: number;
  readonly width: number;
  readonly height: number;
  readonly stride: number;
}

/** The kernels of kernels.ts on float32 images, and computeQuality, in WebAssembly. */
export class WasmMetrics {
  constructor(private readonly wasm: Exports) {
    // The window taps are the reference's own numbers, not recomputed in the module.
    [SSIM_GAUSSIAN_TAPS, ...VIF_TAPS].forEach((taps, set) => {
      if (wasm.tapCount(set) !== taps.length) throw new Error(`metrics.wasm window ${set} has ${wasm.tapCount(set)} taps, the reference ${taps.length}`);
      this.f64(wasm.tapsPointer(set), taps.length).set(taps);
    });
  }

  /** Lays the memory out for width × height images; false when that needs more than MAX_MEMORY_BYTES. */
  fits(width: number, height: number): boolean {
    return this.wasm.reserve(width, height) !== 0;
  }

  psnr(reference: Raster, distorted: Raster, dataRange: number, mask?: Uint8Array): number {
    const [x, y] = this.load(reference, distorted);
    return this.psnrOf(x, y, dataRange, mask === undefined ? 0 : this.loadMask(mask));
  }

  mae(reference: Raster, distorted: Raster, mask?: Uint8Array): number {
    const [x, y] = this.load(reference, distorted);
    return this.maeOf(x, y, mask === undefined ? 0 : this.loadMask(mask));
  }

  ssim(reference: Raster, distorted: Raster, dataRange: number, options: SsimOptions = {}): number {
    const [x, y] = this.load(reference, distorted);
    return this.ssimOf(x, y, dataRange, options.gaussian === true);
  }

  uqi(reference: Raster, distorted: Raster): number {
    return this.uqiOf(...this.load(reference, distorted));
  }

  vifp(reference: Raster, distorted: Raster): number {
    return this.vifOf(...this.load(reference, distorted));
  }

  /**
   * computeQuality (quality.ts) with one pass from physical units to both
   * windowed images, then the kernels. undefined where it leaves the call
   * to the TypeScript path: sizes that differ (that path throws) or an
   * image beyond the memory bound.
   */
  computeQuality(synthetic: Raster, reference: Raster, target: TargetWindow, options: QualityOptions = {}): QualityReport | undefined {
    const { width, height } = reference;
    const n = width * height;
    if (synthetic.width !== width || synthetic.height !== height || reference.data.length !== n || synthetic.data.length !== n) return undefined;
    if (!this.fits(width, height)) return undefined;
    const range = resolveTargetWindow(target, reference.data);
    const wasm = this.wasm;
    this.f32(wasm.imageXPointer(), n).set(reference.data);
    this.f32(wasm.imageYPointer(), n).set(synthetic.data);
    // mapRange's scale, (outHigh - outLow) / span, for [0, 1] and [0, 255].
    const span = range.high - range.low;
    wasm.mapWindow(n, range.low, span > 0 ? 1 / span : 0, span > 0 ? 255 / span : 0);
    const whole = (at: number): Region => ({ at, width, height, stride: width });
    const [unitX, unitY, byteX, byteY] = [wasm.unitXPointer(), wasm.unitYPointer(), wasm.byteXPointer(), wasm.byteYPointer()];
    const [imageX, imageY] = [whole(wasm.imageXPointer()), whole(wasm.imageYPointer())];
    const quality: QualityValues = {
      psnr: this.psnrOf(whole(unitX), whole(unitY), 1, 0),
      ssim: this.ssimOf(whole(unitX), whole(unitY), 1, false),
      uqi: this.uqiOf(whole(unitX), whole(unitY)),
      vif: this.vifOf(whole(byteX), whole(byteY)),
      mae: this.maeOf(imageX, imageY, 0),
    };
    if (options.foreground !== true) return { quality };

    const { mask, box } = foregroundMask(this.f32(unitX, n), width, height);
    if (box === undefined) return { quality, foreground: { psnr: NaN, ssim: NaN, uqi: NaN, vif: NaN, mae: NaN } };
    const masked = this.loadMask(mask);
    // The bounding box in place: a pointer to its corner, rows `width` apart.
    const boxed = (at: number): Region => ({ at: at + 4 * (box.top * width + box.left), width: box.width, height: box.height, stride: width });
    const foreground: QualityValues = {
      psnr: this.psnrOf(whole(unitX), whole(unitY), 1, masked),
      ssim: this.ssimOf(boxed(unitX), boxed(unitY), 1, false),
      uqi: this.uqiOf(boxed(unitX), boxed(unitY)),
      vif: this.vifOf(boxed(byteX), boxed(byteY)),
      mae: this.maeOf(imageX, imageY, masked),
    };
    return { quality, foreground, foregroundBox: { width: box.width, height: box.height } };
  }

  /** Copies a pair into the module's image buffers, with kernels.ts's checks. */
  private load(reference: Raster, distorted: Raster): [Region, Region] {
    checkPair(reference, distorted);
    const { width, height } = reference;
    if (!this.fits(width, height)) throw new RangeError(`${width}x${height} needs more than the ${MAX_MEMORY_BYTES} bytes of WebAssembly memory`);
    const n = width * height;
    const wasm = this.wasm;
    this.f32(wasm.imageXPointer(), n).set(reference.data);
    this.f32(wasm.imageYPointer(), n).set(distorted.data);
    return [
      { at: wasm.imageXPointer(), width, height, stride: width },
      { at: wasm.imageYPointer(), width, height, stride: width },
    ];
  }

  private loadMask(mask: Uint8Array): number {
    const at = this.wasm.maskPointer();
    new Uint8Array(this.wasm.memory.buffer, at, mask.length).set(mask);
    return at;
  }

  /** Σ(x-y)², Σ|x-y| and their count over whole images (mask: its pointer, or 0 for every pixel). */
  private sums(x: Region, y: Region, mask: number): Float64Array {
    this.wasm.sums(x.at, y.at, x.width * x.height, mask);
    return this.f64(this.wasm.resultsPointer(), 3);
  }

  private psnrOf(x: Region, y: Region, dataRange: number, mask: number): number {
    const [squares, , count] = this.sums(x, y, mask);
    return count === 0 ? NaN : 10 * Math.log10((dataRange * dataRange) / (squares / count));
  }

  private maeOf(x: Region, y: Region, mask: number): number {
    const [, absolute, count] = this.sums(x, y, mask);
    return count === 0 ? NaN : absolute / count;
  }

  /** kernels.ts ssim's parameters: 7×7 box with sample covariance, or the 11×11 Gaussian. */
  private ssimOf(x: Region, y: Region, dataRange: number, gaussian: boolean): number {
    const k = gaussian ? SSIM_GAUSSIAN_TAPS.length : SSIM_SIDE;
    if (x.width < k || x.height < k) return NaN;
    const means = gaussian ? 1 : 1 / (k * k);
    const covariances = gaussian ? 1 : (k * k) / (k * k - 1);
    return this.wasm.ssim(x.at, y.at, x.width, x.height, x.stride, gaussian ? 1 : 0, k, means, covariances, (0.01 * dataRange) ** 2, (0.03 * dataRange) ** 2);
  }

  private uqiOf(x: Region, y: Region): number {
    if (x.width <= UQI_SIZE || x.height <= UQI_SIZE) return NaN;
    return this.wasm.uqi(x.at, y.at, x.width, x.height, x.stride);
  }

  private vifOf(x: Region, y: Region): number {
    if (x.width < VIF_MIN_SIDE || x.height < VIF_MIN_SIDE) return NaN;
    return this.wasm.vifp(x.at, y.at, x.width, x.height, x.stride, VIF_NOISE, VIF_EPS);
  }

  // Views are made per use: growing the memory replaces its ArrayBuffer.
  private f32(at: number, length: number): Float32Array {
    return new Float32Array(this.wasm.memory.buffer, at, length);
  }

  private f64(at: number, length: number): Float64Array {
    return new Float64Array(this.wasm.memory.buffer, at, length);
  }
}

const metrics = lazyInstance("metrics.wasm", "quality metrics fall back to the TypeScript kernels", (exports) => new WasmMetrics(exports as Exports));

/**
 * This thread's WasmMetrics, or undefined where the module does not load
 * (not built, or a runtime without WebAssembly SIMD); the reason is
 * wasmFailure() and a process warning, once.
 */
export const wasmMetrics = (): WasmMetrics | undefined => metrics.get();

/** Why wasmMetrics() is undefined, if it is. */
export const wasmFailure = (): unknown => metrics.failure();
