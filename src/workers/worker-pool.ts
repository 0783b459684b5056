/**
 * CPU-bound or blocking work on worker threads, so the event loop never
 * waits on it. Each worker sets itself up from `init` and says it is ready
 * before it takes calls (serveWorker(), serve.ts); then it takes one call at
 * a time, and calls beyond the ready workers wait in a FIFO queue. A worker
 * that dies fails its call alone and is replaced by a fresh one, which takes
 * calls once it is ready in turn; a worker that cannot set itself up is not
 * replaced.
 */
import { Worker } from "node:worker_threads";
import type { Raster } from "../imaging/raster.js";
import type { CallMessage, Methods, WorkerMessage } from "./protocol.js";

export type { Methods } from "./protocol.js";

export interface WorkerPoolOptions<Init> {
  /** Names the pool in errors, e.g. "QualityPool". */
  readonly name: string;
  /** Worker threads (default 1). */
  readonly workers?: number;
  /** Every worker's setup input (its workerData; structured-clone safe). */
  readonly init?: Init;
}

/** A worker's answer; `computeMs` is its own time, without the queue wait. */
export interface Pooled<Reply> {
  readonly value: Reply;
  readonly computeMs: number;
}

interface Job {
  readonly message: CallMessage;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (reply: Pooled<never>) => void;
  readonly reject: (error: Error) => void;
}

interface Lane {
  readonly worker: Worker;
  ready: boolean;
  job: Job | undefined;
  /** Why the worker died, from its 'error' event (its 'exit' follows). */
  crash: Error | undefined;
}

export class WorkerPool<M extends Methods, Init = undefined, Ready = undefined> {
  private readonly lanes: Lane[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  /** Set once the pool takes no more calls: closed, or no worker could start. */
  private ended: Error | undefined;
  /**
   * Every first worker's ready report, once all are set up. Rejects when one
   * cannot set itself up; the pool is closed then.
   */
  readonly ready: Promise<Ready[]>;

  constructor(
    private readonly script: URL,
    private readonly options: WorkerPoolOptions<Init>,
  ) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`${options.name} workers must be a positive integer, got ${workers}`);
    }
    this.ready = Promise.all(Array.from({ length: workers }, () => this.spawn(this.lanes.length))).catch(async (error: Error) => {
      await this.end(error);
      throw error;
    });
    // Pools whose owner never awaits `ready` learn of a failed start from their calls.
    this.ready.catch(() => undefined);
  }

  /** Workers, ready or setting up. */
  get size(): number {
    return this.lanes.length;
  }

  /** Calls waiting for a free worker. */
  get queued(): number {
    return this.queue.length;
  }

  /** The worker threads now in the pool (a replaced one gives way to its successor). */
  get threads(): readonly Worker[] {
    return this.lanes.map((lane) => lane.worker);
  }

  /** Runs `method` on a worker; the buffers in `transfer` move there (detached here). */
  call<K extends keyof M & string>(method: K, request: M[K]["request"], transfer: ArrayBuffer[] = []): Promise<Pooled<M[K]["reply"]>> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const job: Job = { message: { id: this.nextId++, method, request }, transfer, resolve, reject };
      const idle = this.lanes.find((lane) => lane.ready && lane.job === undefined);
      if (idle) this.start(idle, job);
      else this.queue.push(job);
    });
  }

  /** Rejects queued and running calls and ends the workers. */
  close(): Promise<void> {
    return this.end(new Error(`${this.options.name} is closed`));
  }

  private async end(error: Error): Promise<void> {
    if (this.ended) return;
    this.ended = error;
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const lane of this.lanes) {
      lane.job?.reject(error);
      lane.job = undefined;
    }
    await Promise.all(this.lanes.map((lane) => lane.worker.terminate()));
  }

  /** Starts a worker in lane `at`; resolves with its ready report, rejects if it cannot set itself up. */
  private spawn(at: number): Promise<Ready> {
    const worker = new Worker(this.script, { workerData: this.options.init });
    const lane: Lane = { worker, ready: false, job: undefined, crash: undefined };
    this.lanes[at] = lane;
    return new Promise<Ready>((resolve, reject) => {
      const failed = (reason: string) => {
        this.lanes.splice(this.lanes.indexOf(lane), 1);
        void worker.terminate();
        const error = new Error(reason);
        if (this.lanes.length === 0) void this.end(new Error(`${this.options.name} has no workers left: ${reason}`));
        reject(error);
      };
      worker.on("message", (message: WorkerMessage) => {
        if (message.kind === "reply") return this.settle(lane, message);
        if (message.kind === "failed") return failed(message.message);
        lane.ready = true;
        resolve(message.ready as Ready);
        this.next(lane);
      });
      worker.on("error", (error) => {
        lane.crash = error;
      });
      worker.on("exit", (code) => {
        if (this.ended || !this.lanes.includes(lane)) return;
        if (!lane.ready) return failed(`${lane.crash?.message ?? `exit code ${code}`} before it was ready`);
        this.replace(lane, code);
      });
    });
  }

  private start(lane: Lane, job: Job): void {
    lane.job = job;
    // Referenced only while busy: an idle pool does not keep the process alive.
    lane.worker.ref();
    try {
      lane.worker.postMessage(job.message, job.transfer);
    } catch (error) {
      lane.job = undefined;
      job.reject(error as Error);
      this.next(lane);
    }
  }

  private settle(lane: Lane, reply: Extract<WorkerMessage, { kind: "reply" }>): void {
    const job = lane.job;
    if (job === undefined || job.message.id !== reply.id) return;
    lane.job = undefined;
    if (reply.ok) job.resolve({ value: reply.value as never, computeMs: reply.computeMs });
    else job.reject(Object.assign(new Error(reply.message), reply.fields, { name: reply.name }));
    this.next(lane);
  }

  private next(lane: Lane): void {
    const job = this.queue.shift();
    if (job) this.start(lane, job);
    else lane.worker.unref();
  }

  private replace(lane: Lane, code: number): void {
    lane.job?.reject(new Error(`${this.options.name} worker died: ${lane.crash?.message ?? `exit code ${code}`}`));
    lane.job = undefined;
    // A successor that cannot set itself up leaves the lane empty (see spawn); nobody awaits it.
    this.spawn(this.lanes.indexOf(lane)).catch(() => undefined);
  }
}

/**
 * An array ready to post: the array itself when it spans its whole
 * ArrayBuffer, or lies in one that `ownsBuffer` says is the caller's alone
 * (either way listed in `transfer`, so it moves and is detached here),
 * otherwise a copy, so that a view into a larger buffer (a batch tensor, a
 * Buffer pool) is never detached.
 */
export function movable<T extends Float32Array | Uint8Array>(data: T, transfer: ArrayBuffer[], ownsBuffer = false): T {
  const { buffer } = data;
  if (buffer instanceof ArrayBuffer && ownsBuffer) {
    if (!transfer.includes(buffer)) transfer.push(buffer);
    return data;
  }
  // An empty buffer may be a detached one, which a transfer list must not name: it is copied (for nothing).
  const whole =
    buffer instanceof ArrayBuffer &&
    buffer.byteLength > 0 &&
    data.byteOffset === 0 &&
    data.byteLength === buffer.byteLength &&
    !transfer.includes(buffer);
  const moved = whole ? data : (data.slice() as T);
  transfer.push(moved.buffer as ArrayBuffer);
  return moved;
}

/** `raster` with its pixels made movable(). */
export function movableRaster(raster: Raster, transfer: ArrayBuffer[]): Raster {
  return { width: raster.width, height: raster.height, data: movable(raster.data, transfer) };
}
