/**
 * Cost of the quality metrics of one 256×256 slice on the current thread
 * (one core), median of repeated runs: the WebAssembly kernels that
 * computeQuality uses and the TypeScript reference kernels side by side,
 * runs interleaved so that both see the same machine. Part of `npm run
 * bench`; also runs on its own from the repository root, best pinned to one
 * core: `taskset -c 1 node dist/bench/quality.js`.
 */
import { readFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { isEntryPoint } from "../src/entry-point.js";
import type { Raster } from "../src/imaging/raster.js";
import { mapRange } from "../src/imaging/window.js";
import { computeQuality, mae, psnr, ssim, uqi, vifp, type TargetWindow } from "../src/quality/index.js";
import { computeQualityTs } from "../src/quality/quality.js";
import { wasmMetrics } from "../src/quality/wasm.js";

export interface QualityBenchOptions {
  /** Timed runs per measurement and kernel set (default 40). */
  readonly iterations?: number;
  /** Untimed runs first, so that the JIT and WebAssembly tier-up are done (default 10). */
  readonly warmup?: number;
}

/** Milliseconds per slice. */
export interface QualityTimes {
  /** computeQuality, all five metrics, CT window (fixed [-1024, 3071] HU). */
  readonly all: number;
  /** The same plus the foreground variant (mask, hole filling, bounding-box metrics). */
  readonly allWithForeground: number;
  /** All five with the MR window (the reference's 0.5/99.5 percentiles). */
  readonly allPercentileWindow: number;
  /** Each kernel alone, on the [0, 1] images (×255 for VIF); MAE on the HU images. */
  readonly psnr: number;
  readonly ssim: number;
  readonly uqi: number;
  readonly vif: number;
  readonly mae: number;
  /** The five kernels' medians added up. */
  readonly fiveKernels: number;
}

export interface QualityBenchResult {
  readonly width: number;
  readonly height: number;
  readonly iterations: number;
  /** The kernels computeQuality runs here: "wasm", or "typescript" where the module does not load. */
  readonly kernels: "wasm" | "typescript";
  /** Medians: computeQuality and the kernels it uses. */
  readonly medianMs: QualityTimes;
  /** Medians: the TypeScript reference kernels, measured in the same runs. */
  readonly typescriptMs: QualityTimes;
  /** The fastest runs of the same: on a busy machine, the nearest to an idle core's time. */
  readonly minimumMs: QualityTimes;
  readonly typescriptMinimumMs: QualityTimes;
  /** One-minute load average per CPU, before and after: above ~0.5 the figures are inflated by other work. */
  readonly loadPerCpu: readonly [number, number];
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

interface Summary {
  readonly median: number;
  readonly minimum: number;
}

function summary(times: number[]): Summary {
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  return { median: times.length % 2 === 1 ? times[mid] : (times[mid - 1] + times[mid]) / 2, minimum: times[0] };
}

/** Each run function timed in turns (a, b, a, b, ...) so that load changes hit both alike. */
function interleaved(runs: readonly (() => unknown)[], iterations: number, warmup: number): Summary[] {
  for (let i = 0; i < warmup; i++) for (const run of runs) run();
  const times = runs.map((): number[] => []);
  for (let i = 0; i < iterations; i++) {
    runs.forEach((run, j) => {
      const started = performance.now();
      run();
      times[j].push(performance.now() - started);
    });
  }
  return times.map(summary);
}

/** Per CPU of the machine (not of this process's affinity, which taskset narrows). */
const loadPerCpu = (): number => loadavg()[0] / cpus().length;

export async function benchQuality(options: QualityBenchOptions = {}): Promise<QualityBenchResult> {
  const iterations = options.iterations ?? 40;
  const warmup = options.warmup ?? 10;
  const loadBefore = loadPerCpu();
  const { reference, synthetic } = await slicePair();
  const unit = (r: Raster, scale: number): Raster => ({ ...r, data: mapRange(r.data, CT, 0, scale) });
  const [ref1, syn1, ref255, syn255] = [unit(reference, 1), unit(synthetic, 1), unit(reference, 255), unit(synthetic, 255)];
  const wasm = wasmMetrics();
  // Where the module does not load, computeQuality runs the TypeScript kernels, and so does this column.
  const fast = wasm ?? { psnr, ssim, uqi, vifp, mae };
  const pairs: [() => unknown, () => unknown][] = [
    [() => computeQuality(synthetic, reference, CT), () => computeQualityTs(synthetic, reference, CT)],
    [() => computeQuality(synthetic, reference, CT, { foreground: true }), () => computeQualityTs(synthetic, reference, CT, { foreground: true })],
    [() => computeQuality(synthetic, reference, MR), () => computeQualityTs(synthetic, reference, MR)],
    [() => fast.psnr(ref1, syn1, 1), () => psnr(ref1, syn1, 1)],
    [() => fast.ssim(ref1, syn1, 1), () => ssim(ref1, syn1, 1)],
    [() => fast.uqi(ref1, syn1), () => uqi(ref1, syn1)],
    [() => fast.vifp(ref255, syn255), () => vifp(ref255, syn255)],
    [() => fast.mae(reference, synthetic), () => mae(reference, synthetic)],
  ];
  const measured = pairs.map((runs) => interleaved(runs, iterations, warmup));
  const times = (column: number, which: keyof Summary): QualityTimes => {
    const [all, allWithForeground, allPercentileWindow, p, s, u, v, m] = measured.map((summaries) => summaries[column][which]);
    return { all, allWithForeground, allPercentileWindow, psnr: p, ssim: s, uqi: u, vif: v, mae: m, fiveKernels: p + s + u + v + m };
  };
  return {
    width: reference.width,
    height: reference.height,
    iterations,
    kernels: wasm === undefined ? "typescript" : "wasm",
    medianMs: times(0, "median"),
    typescriptMs: times(1, "median"),
    minimumMs: times(0, "minimum"),
    typescriptMinimumMs: times(1, "minimum"),
    loadPerCpu: [loadBefore, loadPerCpu()],
  };
}

/** The table `node dist/bench/quality.js` prints. */
export function formatMetricsBench(result: QualityBenchResult): string {
  const lines = [
    `quality metrics, ${result.width}x${result.height}, one thread, ${result.iterations} interleaved runs each: median (fastest) ms`,
    `load average per CPU ${result.loadPerCpu.map((l) => l.toFixed(2)).join(" -> ")} (medians are inflated above ~0.5)`,
    `${"".padEnd(22)}${"typescript".padStart(16)}${result.kernels.padStart(16)}${"speed-up".padStart(10)}`,
  ];
  const cell = (median: number, minimum: number): string => `${median.toFixed(2)} (${minimum.toFixed(2)})`.padStart(16);
  for (const key of Object.keys(result.medianMs) as (keyof QualityTimes)[]) {
    const ts = result.typescriptMs[key];
    const fast = result.medianMs[key];
    lines.push(`  ${key.padEnd(20)}${cell(ts, result.typescriptMinimumMs[key])}${cell(fast, result.minimumMs[key])}${`${(ts / fast).toFixed(1)}x`.padStart(10)}`);
  }
  return `${lines.join("\n")}\n`;
}

if (isEntryPoint(import.meta.url)) {
  process.stdout.write(formatMetricsBench(await benchQuality()));
}
