import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { ModelSpec } from "./registry.js";
import type { ExecutionDevice, ModelPlacement, RunReply, RunRequest, WorkerInit, WorkerReady } from "./ort-protocol.js";

export interface OrtWorkerPoolOptions {
  /** Number of worker threads, each with a session per model (default 2). */
  workers?: number;
  /** "cpu" (default), "cuda" (fail if unavailable) or "auto" (CUDA, else CPU). */
  device?: ExecutionDevice;
  /** CUDA device id (default 0). */
  deviceId?: number;
  /** ORT intra-op threads per CPU worker (default: cores ÷ workers, at least 1; CUDA workers use 1). */
  intraOpThreads?: number;
  /** Largest batch callers will run (default 8); on CUDA, batches are padded to sizes up to it, each warmed up at start. */
  maxBatch?: number;
}

export interface InferenceOutput {
  /** [batch, channels, height, width] in the model's output range. */
  output: Float32Array;
  channels: number;
  inferenceMs: number;
}

/** Inference threads yield to the event loop (Linux nice value; 0 is normal). */
const WORKER_NICENESS = 10;

/** Raised when the pool cannot start; the message says what to change. */
export class InferenceStartError extends Error {
  override name = "InferenceStartError";
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

/**
 * Worker threads running ONNX Runtime. Knows models by name and tensors, and
 * nothing of gRPC or batching policy: callers must not run more batches at
 * once than `size` (the batcher's WorkerSlots guarantee it).
 */
export class OrtWorkerPool {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: InferenceOutput) => void; reject: (e: Error) => void; slot: Slot }>();

  private constructor(
    private readonly slots: Slot[],
    /** "cpu" or "cuda:<id>": what every worker actually runs on. */
    readonly executionProvider: string,
    /** Why "auto" fell back to CPU, if it did. */
    readonly fallbackReason: string | undefined,
    /** On CUDA, where each model's nodes ran in a warm-up (from one worker); empty on CPU. */
    readonly placement: ModelPlacement[],
  ) {
    for (const slot of slots) {
      slot.worker.on("message", (reply: RunReply) => this.settle(reply));
      slot.worker.on("error", (error) => this.failWorker(slot, error));
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts the workers, loads and warms up every model; resolves when all are ready. */
  static async start(models: readonly ModelSpec[], options: OrtWorkerPoolOptions = {}): Promise<OrtWorkerPool> {
    const workers = options.workers ?? 2;
    if (!Number.isInteger(workers) || workers < 1) throw new InferenceStartError(`workers must be a positive integer, got ${workers}`);
    const init: WorkerInit = {
      models: models.map((m) => ({
        name: m.name,
        onnxPath: m.onnxPath,
        inputName: m.input.name,
        outputName: m.output.name,
        channels: m.input.channels,
        width: m.input.width,
        height: m.input.height,
      })),
      device: options.device ?? "cpu",
      deviceId: options.deviceId ?? 0,
      intraOpThreads: options.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / workers)),
      niceness: WORKER_NICENESS,
      maxBatch: options.maxBatch ?? 8,
      reportPlacement: false,
    };
    // Placement is the same in every worker: one reports it.
    const started = Array.from({ length: workers }, (_, i) => startWorker({ ...init, reportPlacement: i === 0 }));
    const results = await Promise.allSettled(started);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed) {
      await Promise.all(results.map((r) => (r.status === "fulfilled" ? r.value.worker.terminate() : undefined)));
      const reason = (failed.reason as Error).message;
      const hint = init.device === "cuda" ? " (start with --device auto to fall back to CPU, or --device cpu)" : "";
      throw new InferenceStartError(`inference workers failed to start on ${init.device}: ${reason}${hint}`);
    }
    const ready = results.map((r) => (r as PromiseFulfilledResult<{ worker: Worker; ready: WorkerReady & { type: "ready" } }>).value);
    return new OrtWorkerPool(
      ready.map(({ worker }) => ({ worker, busy: false })),
      ready[0].ready.executionProvider,
      ready[0].ready.fallbackReason,
      ready[0].ready.placement,
    );
  }

  /**
   * Runs one batch on an idle worker. `input` ([batchSize, C, H, W]) is
   * transferred to the worker: the caller must not use it afterwards.
   */
  run(model: string, input: Float32Array, batchSize: number): Promise<InferenceOutput> {
    const slot = this.slots.find((s) => !s.busy);
    if (!slot) return Promise.reject(new Error("no idle inference worker; batches must be gated by WorkerSlots"));
    slot.busy = true;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, slot });
      const request: RunRequest = { id, model, batchSize, input };
      slot.worker.postMessage(request, [input.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    for (const [id, p] of this.pending) {
      p.reject(new Error("inference pool closed"));
      this.pending.delete(id);
    }
  }

  private settle(reply: RunReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    p.slot.busy = false;
    if (reply.ok) p.resolve({ output: reply.output, channels: reply.outputChannels, inferenceMs: reply.inferenceMs });
    else p.reject(new Error(`inference failed: ${reply.message}`));
  }

  /** A crashed worker fails its batch; the slot stays busy so it is never used again. */
  private failWorker(slot: Slot, error: Error): void {
    slot.busy = true;
    for (const [id, p] of this.pending) {
      if (p.slot === slot) {
        this.pending.delete(id);
        p.reject(new Error(`inference worker crashed: ${error.message}`));
      }
    }
  }
}

function startWorker(init: WorkerInit): Promise<{ worker: Worker; ready: WorkerReady & { type: "ready" } }> {
  const worker = new Worker(new URL("./ort-worker.js", import.meta.url), { workerData: init });
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`worker exited with code ${code} before it was ready`));
    worker.once("error", reject);
    worker.once("exit", onExit);
    worker.once("message", (ready: WorkerReady) => {
      worker.off("error", reject);
      worker.off("exit", onExit);
      if (ready.type === "ready") resolve({ worker, ready });
      else {
        void worker.terminate();
        reject(new Error(ready.message));
      }
    });
  });
}
