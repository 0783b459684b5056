import { availableParallelism } from "node:os";
import type { SchedulerLike } from "rxjs";
import { movable, WorkerCrash, WorkerPool } from "../workers/worker-pool.js";
import type { ModelSpec } from "./registry.js";
import type { ExecutionDevice, ModelPlacement, OrtMethods, WorkerInit, WorkerReady } from "./ort-protocol.js";

export interface OrtWorkerPoolOptions {
  /** Number of worker threads, each with a session per model. */
  workers?: number;
  /** "cpu", "cuda" (fail if unavailable) or "auto" (CUDA, else CPU). */
  device?: ExecutionDevice;
  /** CUDA device id. */
  deviceId?: number;
  /** ORT intra-op threads per CPU worker (default: cores ÷ workers, at least 1; CUDA workers use 1). */
  intraOpThreads?: number;
  /** Largest batch callers will run; on CUDA, batches are padded to sizes up to it, each warmed up at start (default 1: none padded). */
  maxBatch?: number;
  /**
   * A batch that has not finished after this many times the model's expected
   * time (its measured time per slice × the batch's slices) marks its worker
   * hung: the batch fails and the worker is replaced.
   */
  batchDeadlineFactor?: number;
  /** The shortest batch deadline, ms, whatever the model's speed (a busy machine slows every batch). */
  batchDeadlineMinMs?: number;
  /** Clock of the batch deadlines (default asyncScheduler). */
  scheduler?: SchedulerLike;
  /** The worker script (default ./ort-worker.js; tests wrap it to inject faults). */
  script?: URL;
}

export const DEFAULT_ORT_POOL_OPTIONS: Required<Omit<OrtWorkerPoolOptions, "intraOpThreads" | "maxBatch" | "scheduler" | "script">> = {
  workers: 2,
  device: "cpu",
  deviceId: 0,
  // Generous: a batch 10× slower than the model's running average is not load, it is stuck.
  batchDeadlineFactor: 10,
  // A busy machine slows batches far more than that: with 4096² slices on two shared cores a batch of 2
  // (0.3 s per slice warmed up) took over 6 s. A stuck worker is still replaced within half a minute.
  batchDeadlineMinMs: 30_000,
};

export interface InferenceOutput {
  /** One [channels, height, width] row per input, in the model's output range. */
  outputs: Float32Array[];
  channels: number;
  inferenceMs: number;
}

/** Inference threads yield to the event loop (Linux nice value; 0 is normal). */
const WORKER_NICENESS = 10;

/** Raised when the pool cannot start; the message says what to change. */
export class InferenceStartError extends Error {
  override name = "InferenceStartError";
}

/** Weight of the newest batch in a model's running time per slice. */
const SLICE_TIME_WEIGHT = 0.2;

/**
 * Worker threads running ONNX Runtime. Knows models by name and tensors, and
 * nothing of gRPC or batching policy: callers should not run more batches at
 * once than the workers ready (`readyWorkers`; the batcher's WorkerSlots see
 * to it); more wait for a worker. A worker that dies (an error, an exit, or a
 * batch past its deadline) fails its batch with a WorkerCrash and is replaced
 * by one that has loaded and warmed up every model before it takes a batch.
 */
export class OrtWorkerPool {
  /** Per model, a running average of ms per slice, from the warm-up on. */
  private readonly sliceMs: Map<string, number>;

  private constructor(
    readonly workers: WorkerPool<OrtMethods, WorkerInit, WorkerReady>,
    /** "cpu" or "cuda:<id>": what every worker actually runs on. */
    readonly executionProvider: string,
    /** Why "auto" fell back to CPU, if it did. */
    readonly fallbackReason: string | undefined,
    /** On CUDA, where each model's nodes ran in a warm-up (every worker places alike); empty on CPU. */
    readonly placement: ModelPlacement[],
    ready: readonly WorkerReady[],
    private readonly deadline: { factor: number; minMs: number },
  ) {
    // The slowest worker's warm-up: a deadline errs long.
    this.sliceMs = new Map(Object.keys(ready[0].sliceMs).map((model) => [model, Math.max(...ready.map((r) => r.sliceMs[model]))]));
  }

  get size(): number {
    return this.workers.size;
  }

  /** How long a batch of `batchSize` slices of `model` may run before its worker counts as hung, ms. */
  deadlineMs(model: string, batchSize: number): number {
    return Math.max(this.deadline.minMs, this.deadline.factor * (this.sliceMs.get(model) ?? 0) * batchSize);
  }

  /** Starts the workers, loads and warms up every model; resolves when all are ready. */
  static async start(models: readonly ModelSpec[], options: OrtWorkerPoolOptions = {}): Promise<OrtWorkerPool> {
    const workers = options.workers ?? DEFAULT_ORT_POOL_OPTIONS.workers;
    const device = options.device ?? DEFAULT_ORT_POOL_OPTIONS.device;
    const deviceId = options.deviceId ?? DEFAULT_ORT_POOL_OPTIONS.deviceId;
    if (!Number.isInteger(workers) || workers < 1) throw new InferenceStartError(`workers must be a positive integer, got ${workers}`);
    const init: WorkerInit = {
      models: models.map((m) => ({
        name: m.name,
        onnxPath: m.onnxPath,
        inputName: m.input.name,
        outputName: m.output.name,
        channels: m.input.channels,
        outputChannels: m.output.channels,
        width: m.input.width,
        height: m.input.height,
      })),
      device,
      deviceId,
      intraOpThreads: options.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers)),
      niceness: WORKER_NICENESS,
      maxBatch: options.maxBatch ?? 1,
    };
    const pool = new WorkerPool<OrtMethods, WorkerInit, WorkerReady>(options.script ?? new URL("./ort-worker.js", import.meta.url), {
      name: "OrtWorkerPool",
      workers,
      init,
      scheduler: options.scheduler,
    });
    let ready: WorkerReady[];
    try {
      ready = await pool.ready;
    } catch (error) {
      const hint = device === "cuda" ? " (start with --device auto to fall back to CPU, or --device cpu)" : "";
      throw new InferenceStartError(`inference workers failed to start on ${device}: ${(error as Error).message}${hint}`);
    }
    const deadline = {
      factor: options.batchDeadlineFactor ?? DEFAULT_ORT_POOL_OPTIONS.batchDeadlineFactor,
      minMs: options.batchDeadlineMinMs ?? DEFAULT_ORT_POOL_OPTIONS.batchDeadlineMinMs,
    };
    return new OrtWorkerPool(pool, ready[0].executionProvider, ready[0].fallbackReason, ready[0].placement, ready, deadline);
  }

  /**
   * Runs one batch on a worker: one C×H×W row per slice, stacked there.
   * Each row that spans its own buffer moves there (detached here) and
   * comes back holding its output (see movable()); the caller must not use
   * the inputs afterwards. A dead or hung worker fails it with its
   * WorkerCrash.
   */
  async run(model: string, inputs: readonly Float32Array[]): Promise<InferenceOutput> {
    const batchSize = inputs.length;
    try {
      const transfer: ArrayBuffer[] = [];
      const rows = inputs.map((row) => movable(row, transfer));
      const { value } = await this.workers.call("run", { model, inputs: rows }, transfer, { deadlineMs: this.deadlineMs(model, batchSize) });
      const perSlice = value.inferenceMs / batchSize;
      const average = this.sliceMs.get(model);
      this.sliceMs.set(model, average === undefined ? perSlice : average + SLICE_TIME_WEIGHT * (perSlice - average));
      return { outputs: value.outputs, channels: value.outputChannels, inferenceMs: value.inferenceMs };
    } catch (error) {
      if (error instanceof WorkerCrash) throw error;
      throw new Error(`inference failed: ${(error as Error).message}`, { cause: error });
    }
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}
