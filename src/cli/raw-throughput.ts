import { performance } from "node:perf_hooks";
import { OrtWorkerPool, type OrtWorkerPoolOptions } from "../inference/ort-pool.js";
import type { ModelSpec } from "../inference/registry.js";

export interface RawThroughputOptions extends OrtWorkerPoolOptions {
  /** Slices per session.run (the service's max batch). */
  batchSize: number;
  /** Measure for this long, ms (after `warmupBatches`). */
  durationMs: number;
  /** Batches per worker run before measuring (default 1). */
  warmupBatches?: number;
}

export interface RawThroughput {
  model: string;
  executionProvider: string;
  workers: number;
  batchSize: number;
  batches: number;
  slices: number;
  elapsedS: number;
  slicesPerSecond: number;
  /** Median session.run time of one batch, ms, and per slice. */
  medianBatchMs: number;
  msPerSlice: number;
}

/**
 * ONNX Runtime alone, in this process: the same worker threads, execution
 * provider and threads as the service runs, each worker kept busy with
 * batches of `batchSize` inputs. No gRPC, codecs, batcher or metrics: the
 * ceiling the service's throughput is measured against.
 */
export async function measureRawThroughput(spec: ModelSpec, options: RawThroughputOptions): Promise<RawThroughput> {
  const pool = await OrtWorkerPool.start([spec], { maxBatch: options.batchSize, ...options });
  try {
    const size = spec.input.channels * spec.input.width * spec.input.height;
    // Values spread over [-1, 1] like a normalised slice; the same rows each time (the pool takes ownership of copies).
    const template = Array.from({ length: options.batchSize }, (_, row) => Float32Array.from({ length: size }, (_, i) => Math.sin((row * size + i) * 0.37)));
    const run = () => pool.run(spec.name, template.map((row) => row.slice()));
    const warmup = options.warmupBatches ?? 1;
    await Promise.all(Array.from({ length: pool.size }, async () => {
      for (let i = 0; i < warmup; i++) await run();
    }));
    const times: number[] = [];
    const started = performance.now();
    const deadline = started + options.durationMs;
    await Promise.all(Array.from({ length: pool.size }, async () => {
      while (performance.now() < deadline) times.push((await run()).inferenceMs);
    }));
    const elapsedS = (performance.now() - started) / 1000;
    const sorted = [...times].sort((a, b) => a - b);
    const medianBatchMs = sorted[Math.floor(sorted.length / 2)] ?? NaN;
    return {
      model: spec.name,
      executionProvider: pool.executionProvider,
      workers: pool.size,
      batchSize: options.batchSize,
      batches: times.length,
      slices: times.length * options.batchSize,
      elapsedS,
      slicesPerSecond: (times.length * options.batchSize) / elapsedS,
      medianBatchMs,
      msPerSlice: medianBatchMs / options.batchSize,
    };
  } finally {
    await pool.close();
  }
}
