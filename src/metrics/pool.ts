/**
 * Quality metrics on worker threads, so that neither the event loop nor the
 * inference workers wait on them. Requests beyond the number of workers wait
 * in a FIFO queue.
 */
import { Worker } from "node:worker_threads";
import type { Raster } from "../imaging/raster.js";
import type { QualityOptions, QualityReport, TargetWindow } from "./quality.js";

export interface MetricsPoolOptions {
  /**
   * Worker threads (default 1). One 256² slice's metrics cost about 15 ms on
   * one core of the development machine (`node dist/bench/metrics.js`), about
   * 5% of its CPU inference, so one worker keeps up with a few inference
   * cores; add workers when metrics_ms grows with queueing.
   */
  readonly workers?: number;
}

export interface PooledQuality extends QualityReport {
  /** Time the worker spent computing, without the queue wait. */
  readonly computeMs: number;
}

/** Messages between MetricsPool and metrics-worker.js (structured-clone safe). */
export interface MetricsRequest {
  readonly id: number;
  readonly synthetic: Raster;
  readonly reference: Raster;
  readonly target: TargetWindow;
  readonly options: QualityOptions;
}

export type MetricsReply =
  | { readonly id: number; readonly ok: true; readonly report: QualityReport; readonly computeMs: number }
  | { readonly id: number; readonly ok: false; readonly name: string; readonly message: string };

interface Job {
  readonly request: MetricsRequest;
  readonly transfer: ArrayBuffer[];
  readonly resolve: (result: PooledQuality) => void;
  readonly reject: (error: Error) => void;
}

interface Lane {
  readonly worker: Worker;
  job: Job | undefined;
  /** Why the worker died, from its 'error' event (its 'exit' follows). */
  crash: Error | undefined;
}

export class MetricsPool {
  private readonly lanes: Lane[] = [];
  private readonly queue: Job[] = [];
  private nextId = 0;
  private closed = false;

  constructor(options: MetricsPoolOptions = {}) {
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new RangeError(`MetricsPool workers must be a positive integer, got ${workers}`);
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

  /**
   * computeQuality on a worker. Takes ownership of the rasters: a pixel
   * array that spans its whole ArrayBuffer is transferred (the caller's
   * array is detached), any other view is copied first, so a view into a
   * larger buffer (a batch tensor, a Buffer pool) is never detached. A
   * failing request (e.g. sizes differ) rejects alone; a crashed worker is
   * replaced.
   */
  compute(synthetic: Raster, reference: Raster, target: TargetWindow, options: QualityOptions = {}): Promise<PooledQuality> {
    if (this.closed) return Promise.reject(new Error("MetricsPool is closed"));
    return new Promise((resolve, reject) => {
      const transfer: ArrayBuffer[] = [];
      const request: MetricsRequest = {
        id: this.nextId++,
        synthetic: movable(synthetic, transfer),
        reference: movable(reference, transfer),
        target,
        options,
      };
      const job: Job = { request, transfer, resolve, reject };
      const idle = this.lanes.find((lane) => lane.job === undefined);
      if (idle) this.start(idle, job);
      else this.queue.push(job);
    });
  }

  /** Rejects queued and running requests and ends the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const error = new Error("MetricsPool closed");
    for (const job of this.queue.splice(0)) job.reject(error);
    for (const lane of this.lanes) {
      lane.job?.reject(error);
      lane.job = undefined;
    }
    await Promise.all(this.lanes.map((lane) => lane.worker.terminate()));
  }

  private spawn(): Lane {
    const worker = new Worker(new URL("./metrics-worker.js", import.meta.url));
    worker.unref();
    const lane: Lane = { worker, job: undefined, crash: undefined };
    worker.on("message", (reply: MetricsReply) => this.settle(lane, reply));
    worker.on("error", (error) => {
      lane.crash = error;
    });
    worker.on("exit", (code) => this.replace(lane, code));
    return lane;
  }

  private start(lane: Lane, job: Job): void {
    lane.job = job;
    // Referenced only while busy: an idle pool does not keep the process alive.
    lane.worker.ref();
    try {
      lane.worker.postMessage(job.request, job.transfer);
    } catch (error) {
      lane.job = undefined;
      job.reject(error as Error);
      this.next(lane);
    }
  }

  private settle(lane: Lane, reply: MetricsReply): void {
    const job = lane.job;
    if (job === undefined || job.request.id !== reply.id) return;
    lane.job = undefined;
    if (reply.ok) job.resolve({ ...reply.report, computeMs: reply.computeMs });
    else job.reject(Object.assign(new Error(reply.message), { name: reply.name }));
    this.next(lane);
  }

  private next(lane: Lane): void {
    const job = this.queue.shift();
    if (job) this.start(lane, job);
    else lane.worker.unref();
  }

  private replace(lane: Lane, code: number): void {
    if (this.closed) return;
    const job = lane.job;
    lane.job = undefined;
    job?.reject(new Error(`metrics worker died: ${lane.crash?.message ?? `exit code ${code}`}`));
    const fresh = this.spawn();
    this.lanes[this.lanes.indexOf(lane)] = fresh;
    this.next(fresh);
  }
}

/** A structured-clone-ready copy of `raster` whose pixel buffer is listed in `transfer`. */
function movable(raster: Raster, transfer: ArrayBuffer[]): Raster {
  const { data } = raster;
  const { buffer } = data;
  const whole =
    buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buffer.byteLength && !transfer.includes(buffer);
  const pixels = whole ? data : data.slice();
  transfer.push(pixels.buffer as ArrayBuffer);
  return { width: raster.width, height: raster.height, data: pixels };
}
