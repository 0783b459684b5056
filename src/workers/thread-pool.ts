/**
 * CPU-bound work on worker threads, so the event loop never waits on it.
 * One request per worker at a time; requests beyond the number of workers
 * wait in a FIFO queue. A crashed worker fails its request alone and is
 * replaced. The worker script answers with serveRequests() (serve.ts).
 */
import { Worker } from "node:worker_threads";
import type { Raster } from "../imaging/raster.js";

export interface ThreadPoolOptions {
  /** Worker threads (default 1). */
  readonly workers?: number;
  /** Names the pool in errors, e.g. "QualityPool". */
  readonly name: string;
}

/** What a worker answers; `computeMs` is its own time, without the queue wait. */
export interface PooledReply<Reply> {
  readonly value: Reply;
  readonly computeMs: number;
}

/** Messages between ThreadPool and serveRequests() (structured-clone safe). */
export interface WorkerRequest<Request> {
  readonly id: number;
  readonly request: Request;
}

export type WorkerReply<Reply> =
  | { readonly id: number; readonly ok: true; readonly value: Reply; readonly computeMs: number }
  | { readonly id: number; readonly ok: false; readonly name: string; readonly message: string };

interface Job<Request, Reply> {
  readonly message: WorkerRequest<Request>;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (reply: PooledReply<Reply>) => void;
  readonly reject: (error: Error) => void;
}

interface Lane<Request, Reply> {
  readonly worker: Worker;
  job: Job<Request, Reply> | undefined;
  /** Why the worker died, from its 'error' event (its 'exit' follows). */
  crash: Error | undefined;
}

export class ThreadPool<Request, Reply> {
  private readonly lanes: Lane<Request, Reply>[] = [];
  private readonly queue: Job<Request, Reply>[] = [];
  private nextId = 0;
  private closed = false;
  private readonly name: string;

  constructor(
    private readonly script: URL,
    options: ThreadPoolOptions,
  ) {
    this.name = options.name;
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`${this.name} workers must be a positive integer, got ${workers}`);
    }
    for (let i = 0; i < workers; i++) this.lanes.push(this.spawn());
  }

  get size(): number {
    return this.lanes.length;
  }

  /** Requests waiting for a free worker. */
  get queued(): number {
    return this.queue.length;
  }

  /** Runs `request` on a worker; the buffers in `transfer` move there (detached here). */
  run(request: Request, transfer: ArrayBuffer[] = []): Promise<PooledReply<Reply>> {
    if (this.closed) return Promise.reject(new Error(`${this.name} is closed`));
    return new Promise((resolve, reject) => {
      const job: Job<Request, Reply> = { message: { id: this.nextId++, request }, transfer, resolve, reject };
      const idle = this.lanes.find((lane) => lane.job === undefined);
      if (idle) this.start(idle, job);
      else this.queue.push(job);
    });
  }

  /** Rejects queued and running requests and ends the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new Error(`${this.name} closed`);
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const lane of this.lanes) {
      lane.job?.reject(error);
      lane.job = undefined;
    }
    await Promise.all(this.lanes.map((lane) => lane.worker.terminate()));
  }

  private spawn(): Lane<Request, Reply> {
    const worker = new Worker(this.script);
    worker.unref();
    const lane: Lane<Request, Reply> = { worker, job: undefined, crash: undefined };
    worker.on("message", (reply: WorkerReply<Reply>) => this.settle(lane, reply));
    worker.on("error", (error) => {
      lane.crash = error;
    });
    worker.on("exit", (code) => this.replace(lane, code));
    return lane;
  }

  private start(lane: Lane<Request, Reply>, job: Job<Request, Reply>): void {
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

  private settle(lane: Lane<Request, Reply>, reply: WorkerReply<Reply>): void {
    const job = lane.job;
    if (job === undefined || job.message.id !== reply.id) return;
    lane.job = undefined;
    if (reply.ok) job.resolve({ value: reply.value, computeMs: reply.computeMs });
    else job.reject(Object.assign(new Error(reply.message), { name: reply.name }));
    this.next(lane);
  }

  private next(lane: Lane<Request, Reply>): void {
    const job = this.queue.shift();
    if (job) this.start(lane, job);
    else lane.worker.unref();
  }

  private replace(lane: Lane<Request, Reply>, code: number): void {
    if (this.closed) return;
    const job = lane.job;
    lane.job = undefined;
    job?.reject(new Error(`${this.name} worker died: ${lane.crash?.message ?? `exit code ${code}`}`));
    const fresh = this.spawn();
    this.lanes[this.lanes.indexOf(lane)] = fresh;
    this.next(fresh);
  }
}

/**
 * A pixel array ready to post: the array itself when it spans its whole
 * ArrayBuffer (listed in `transfer`, so it moves and is detached here),
 * otherwise a copy, so that a view into a larger buffer (a batch tensor, a
 * Buffer pool) is never detached.
 */
export function movable(data: Float32Array, transfer: ArrayBuffer[]): Float32Array {
  const { buffer } = data;
  const whole =
    buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength && !transfer.includes(buffer);
  const pixels = whole ? data : data.slice();
  transfer.push(pixels.buffer as ArrayBuffer);
  return pixels;
}

/** `raster` with its pixels made movable(). */
export function movableRaster(raster: Raster, transfer: ArrayBuffer[]): Raster {
  return { width: raster.width, height: raster.height, data: movable(raster.data, transfer) };
}
