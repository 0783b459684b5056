import { availableParallelism } from "node:os";
import { movable, WorkerPool } from "../workers/worker-pool.js";
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
}

export const DEFAULT_ORT_POOL_OPTIONS: Required<Omit<OrtWorkerPoolOptions, "intraOpThreads" | "maxBatch">> = {
  workers: 2,
  device: "cpu",
  deviceId: 0,
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

/**
 * Worker threads running ONNX Runtime. Knows models by name and tensors, and
 * nothing of gRPC or batching policy: callers should not run more batches at
 * once than `size` (the batcher's WorkerSlots see to it); more wait for a
 * worker. A worker that dies fails its batch and is replaced by one that has
 * loaded and warmed up every model before it takes a batch.
 */
export class OrtWorkerPool {
  private constructor(
    readonly workers: WorkerPool<OrtMethods, WorkerInit, WorkerReady>,
    /** "cpu" or "cuda:<id>": what every worker actually runs on. */
    readonly executionProvider: string,
    /** Why "auto" fell back to CPU, if it did. */
    readonly fallbackReason: string | undefined,
    /** On CUDA, where each model's nodes ran in a warm-up (every worker places alike); empty on CPU. */
    readonly placement: ModelPlacement[],
  ) {}

  get size(): number {
    return this.workers.size;
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
    const pool = new WorkerPool<OrtMethods, WorkerInit, WorkerReady>(new URL("./ort-worker.js", import.meta.url), {
      name: "OrtWorkerPool",
      workers,
      init,
    });
    let ready: WorkerReady[];
    try {
      ready = await pool.ready;
    } catch (error) {
      const hint = device === "cuda" ? " (start with --device auto to fall back to CPU, or --device cpu)" : "";
      throw new InferenceStartError(`inference workers failed to start on ${device}: ${(error as Error).message}${hint}`);
    }
    return new OrtWorkerPool(pool, ready[0].executionProvider, ready[0].fallbackReason, ready[0].placement);
  }

  /**
   * Runs one batch on a worker: one C×H×W row per slice, stacked there.
   * Each row that spans its own buffer moves there (detached here) and
   * comes back holding its output (see movable()); the caller must not use
   * the inputs afterwards.
   */
  async run(model: string, inputs: readonly Float32Array[]): Promise<InferenceOutput> {
    try {
      const transfer: ArrayBuffer[] = [];
      const rows = inputs.map((row) => movable(row, transfer));
      const { value } = await this.workers.call("run", { model, inputs: rows }, transfer);
      return { outputs: value.outputs, channels: value.outputChannels, inferenceMs: value.inferenceMs };
    } catch (error) {
      throw new Error(`inference failed: ${(error as Error).message}`, { cause: error });
    }
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}
