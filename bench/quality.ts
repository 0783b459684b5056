/**
 * Cost of the quality metrics of one 256×256 slice on the current thread
 * (one core), median of repeated runs. Part of `npm run bench`; also runs on
 * its own from the repository root: `node dist/bench/quality.js`.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { isEntryPoint } from "../src/entry-point.js";
import type { Raster } from "../src/imaging/raster.js";
import { mapRange } from "../src/imaging/window.js";
import { computeQuality, mae, psnr, ssim, uqi, vifp, type TargetWindow } from "../src/quality/index.js";

export interface QualityBenchOptions {
  /** Timed runs per measurement (default 40). */
  readonly iterations?: number;
  /** Untimed runs first, so the JIT has optimised the kernels (default 10). */
  readonly warmup?: number;
}

export interface QualityBenchResult {
  readonly width: number;
  readonly height: number;
  readonly iterations: number;
  /** Median milliseconds per slice. */
  readonly medianMs: {
    /** computeQuality, all five metrics, CT window (fixed [-1024, 3071] HU). */
    readonly all: number;
    /** The same plus the foreground variant (mask, hole filling, bounding-box metrics). */
    readonly allWithForeground: number;
    /** All five with the MR window (the reference's 0.5/99.5 percentiles). */
    readonly allPercentileWindow: number;
    /** Each kernel alone, on the [0, 1] images (×255 for VIF). */
    readonly psnr: number;
    readonly ssim: number;
    readonly uqi: number;
    readonly vif: number;
    readonly mae: number;
  };
}

const CT: TargetWindow = { window: "fixed", low: -1024, high: 3071 };
const MR: TargetWindow = { window: "percentile", low: 0.5, high: 99.5 };

/** The ct_hu fixture: a CT-like slice in HU and a blurred, noisy copy. */
async function slicePair(): Promise<{ reference: Raster; synthetic: Raster }> {
  const read = async (file: string): Promise<Raster> => {
    const bytes = await readFile(join(process.cwd(), "test/fixtures/metrics/ct_hu", file));
    const data = new Float32Array(256 * 256);
    new Uint8Array(data.buffer).set(bytes);
    return { width: 256, height: 256, data };
  };
  return { reference: await read("ref.f32"), synthetic: await read("img.f32") };
}

function median(run: () => unknown, iterations: number, warmup: number): number {
  for (let i = 0; i < warmup; i++) run();
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const started = performance.now();
    run();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  return times.length % 2 === 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2;
}

export async function benchQuality(options: QualityBenchOptions = {}): Promise<QualityBenchResult> {
  const iterations = options.iterations ?? 40;
  const warmup = options.warmup ?? 10;
  const { reference, synthetic } = await slicePair();
  const unit = (r: Raster, scale: number): Raster => ({ ...r, data: mapRange(r.data, CT, 0, scale) });
  const [ref1, syn1, ref255, syn255] = [unit(reference, 1), unit(synthetic, 1), unit(reference, 255), unit(synthetic, 255)];
  const time = (run: () => unknown): number => median(run, iterations, warmup);
  return {
    width: reference.width,
    height: reference.height,
    iterations,
    medianMs: {
      all: time(() => computeQuality(synthetic, reference, CT)),
      allWithForeground: time(() => computeQuality(synthetic, reference, CT, { foreground: true })),
      allPercentileWindow: time(() => computeQuality(synthetic, reference, MR)),
      psnr: time(() => psnr(ref1, syn1, 1)),
      ssim: time(() => ssim(ref1, syn1, 1)),
      uqi: time(() => uqi(ref1, syn1)),
      vif: time(() => vifp(ref255, syn255)),
      mae: time(() => mae(reference, synthetic)),
    },
  };
}

if (isEntryPoint(import.meta.url)) {
  const result = await benchQuality();
  console.log(`quality metrics, ${result.width}x${result.height}, one thread, median of ${result.iterations} runs:`);
  for (const [name, ms] of Object.entries(result.medianMs)) console.log(`  ${name.padEnd(20)} ${ms.toFixed(2)} ms`);
}
