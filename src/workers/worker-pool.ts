/**
 * CPU-bound or blocking work on worker threads, so the event loop never
 * waits on it. Each worker sets itself up from `init` and says it is ready
 * before it takes calls (serveWorker(), serve.ts); then it takes one call at
 * a time, and calls beyond the ready workers wait in a FIFO queue. A worker
 * that dies (an uncaught error, an exit, or a call past its deadline) fails
 * its call alone with a WorkerCrash and is replaced by a fresh one, which
 * takes calls once it is ready in turn; a worker that cannot set itself up is
 * not replaced.
 *
 * A worker is never terminated while it may be inside a native call (setting
 * itself up, or running a call): terminating a thread there can abort the
 * whole process (an N-API addon such as onnxruntime-node throws into a
 * dying environment). Such a worker is retired instead: terminated as soon
 * as it next reports back, and until then left to finish (unreferenced if
 * it hung, so that a thread that never returns cannot keep the process
 * alive; close() waits for the others).
 */
import { once } from "node:events";
import { Worker } from "node:worker_threads";
import { asyncScheduler, BehaviorSubject, Subject, type Observable, type SchedulerLike, type Subscription } from "rxjs";
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
  /** Clock of the call deadlines (default asyncScheduler). */
  readonly scheduler?: SchedulerLike;
}

/** How a worker died: an uncaught error, an exit, a call past its deadline, or (a successor) failing to set itself up. */
export type CrashKind = "error" | "exit" | "deadline" | "setup";

const CRASHED: Record<CrashKind, string> = { error: "died", exit: "died", deadline: "hung", setup: "could not start" };

/** A worker died, and with it the call it was running (or, once none can start, every call). */
export class WorkerCrash extends Error {
  override name = "WorkerCrash";
  constructor(
    /** The pool's name. */
    readonly pool: string,
    readonly kind: CrashKind,
    /** What happened, e.g. "exit code 1". */
    readonly detail: string,
    /** Whether a successor takes the worker's place: false once the pool has no workers left. */
    readonly replaced = true,
  ) {
    super(replaced ? `${pool} worker ${CRASHED[kind]}: ${detail}` : `${pool} has no workers left: ${detail}`);
  }
}

export interface CallOptions {
  /**
   * Longest the call may run on its worker (not counting its wait in the
   * queue); past it the worker is taken for hung, the call fails with a
   * WorkerCrash of kind "deadline" and the worker is replaced.
   */
  readonly deadlineMs?: number;
}

/** A worker's answer; `computeMs` is its own time, without the queue wait. */
export interface Pooled<Reply> {
  readonly value: Reply;
  readonly computeMs: number;
}

interface Job {
  readonly message: CallMessage;
  readonly transfer: ArrayBuffer[];
  readonly deadlineMs: number | undefined;
  readonly resolve: (reply: Pooled<never>) => void;
  readonly reject: (error: Error) => void;
}

interface Lane {
  readonly worker: Worker;
  ready: boolean;
  job: Job | undefined;
  /** The running job's deadline. */
  deadline: Subscription | undefined;
  /** Why the worker died, from its 'error' event (its 'exit' follows). */
  crash: Error | undefined;
  /** To be terminated the moment it reports back (see the class comment). */
  retiring: boolean;
}

export class WorkerPool<M extends Methods, Init = undefined, Ready = undefined> {
  private readonly lanes: Lane[] = [];
  private readonly queue: Job[] = [];
  private readonly scheduler: SchedulerLike;
  private readonly crashed = new Subject<WorkerCrash>();
  private readonly readyCount = new BehaviorSubject(0);
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
    this.scheduler = options.scheduler ?? asyncScheduler;
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

  /** Whether the pool takes no more calls (closed, or no worker could be started). */
  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  /** Every worker that died, as it is found out. */
  get crashes(): Observable<WorkerCrash> {
    return this.crashed.asObservable();
  }

  /** Workers ready to take calls: now, and on every change (a death, a successor ready). */
  get readyWorkers(): Observable<number> {
    return this.readyCount.asObservable();
  }

  /** Runs `method` on a worker; the buffers in `transfer` move there (detached here). */
  call<K extends keyof M & string>(
    method: K,
    request: M[K]["request"],
    transfer: ArrayBuffer[] = [],
    options: CallOptions = {},
  ): Promise<Pooled<M[K]["reply"]>> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const job: Job = { message: { id: this.nextId++, method, request }, transfer, deadlineMs: options.deadlineMs, resolve, reject };
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
    const ending = this.lanes.map((lane) => this.retire(lane));
    for (const lane of this.lanes) this.takeJob(lane)?.reject(error);
    this.countReady();
    this.readyCount.complete();
    this.crashed.complete();
    await Promise.all(ending);
  }

  /** Terminates the lane's worker now if it is idle, otherwise once it reports back; resolves when its thread has ended. */
  private async retire(lane: Lane): Promise<void> {
    if (lane.ready && lane.job === undefined) {
      await lane.worker.terminate();
      return;
    }
    lane.retiring = true;
    await once(lane.worker, "exit");
  }

  /** Starts a worker in lane `at`; resolves with its ready report, rejects if it cannot set itself up. */
  private spawn(at: number, successor = false): Promise<Ready> {
    const worker = new Worker(this.script, { workerData: this.options.init });
    const lane: Lane = { worker, ready: false, job: undefined, deadline: undefined, crash: undefined, retiring: false };
    this.lanes[at] = lane;
    return new Promise<Ready>((resolve, reject) => {
      const failed = (reason: string) => {
        this.lanes.splice(this.lanes.indexOf(lane), 1);
        void worker.terminate();
        const error = new Error(reason);
        if (successor) this.crashed.next(new WorkerCrash(this.options.name, "setup", reason));
        if (this.lanes.length === 0) void this.end(new WorkerCrash(this.options.name, "setup", reason, false));
        reject(error);
      };
      worker.on("message", (message: WorkerMessage) => {
        if (lane.retiring) return void worker.terminate();
        if (message.kind === "reply") return this.settle(lane, message);
        if (message.kind === "failed") return failed(message.message);
        lane.ready = true;
        this.countReady();
        resolve(message.ready as Ready);
        this.next(lane);
      });
      worker.on("error", (error) => {
        lane.crash = error;
      });
      worker.on("exit", (code) => {
        if (this.ended || !this.lanes.includes(lane)) return;
        if (!lane.ready) return failed(`${lane.crash?.message ?? `exit code ${code}`} before it was ready`);
        this.replace(lane, lane.crash ? "error" : "exit", lane.crash?.message ?? `exit code ${code}`);
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
      this.takeJob(lane);
      job.reject(error as Error);
      this.next(lane);
      return;
    }
    const { deadlineMs } = job;
    if (deadlineMs !== undefined) {
      lane.deadline = this.scheduler.schedule(() => {
        if (lane.job !== job) return;
        // Stuck, most likely inside a native call: its successor starts now, and it is terminated once it returns
        // (unreferenced until then, so a thread that never returns does not keep the process alive).
        lane.worker.unref();
        void this.retire(lane);
        this.replace(lane, "deadline", `no answer within ${Math.round(deadlineMs)} ms`);
      }, deadlineMs);
    }
  }

  /** The lane's job, now taken off it (with its deadline). */
  private takeJob(lane: Lane): Job | undefined {
    const job = lane.job;
    lane.job = undefined;
    lane.deadline?.unsubscribe();
    lane.deadline = undefined;
    return job;
  }

  private settle(lane: Lane, reply: Extract<WorkerMessage, { kind: "reply" }>): void {
    if (lane.job === undefined || lane.job.message.id !== reply.id) return;
    const job = this.takeJob(lane)!;
    if (reply.ok) job.resolve({ value: reply.value as never, computeMs: reply.computeMs });
    else job.reject(Object.assign(new Error(reply.message), reply.props, { name: reply.name }));
    if (reply.ok && reply.retire) return this.renew(lane);
    this.next(lane);
  }

  /** A worker that asked to be retired, idle now: it ends, and a fresh one takes its lane (no crash). */
  private renew(lane: Lane): void {
    void this.retire(lane);
    this.spawn(this.lanes.indexOf(lane), true).catch(() => undefined);
    this.countReady();
  }

  private next(lane: Lane): void {
    const job = this.queue.shift();
    if (job) this.start(lane, job);
    else lane.worker.unref();
  }

  private replace(lane: Lane, kind: CrashKind, detail: string): void {
    const crash = new WorkerCrash(this.options.name, kind, detail);
    this.takeJob(lane)?.reject(crash);
    // A successor that cannot set itself up leaves the lane empty (see spawn); nobody awaits it.
    this.spawn(this.lanes.indexOf(lane), true).catch(() => undefined);
    this.countReady();
    this.crashed.next(crash);
  }

  private countReady(): void {
    const ready = this.ended ? 0 : this.lanes.filter((lane) => lane.ready).length;
    if (ready !== this.readyCount.value) this.readyCount.next(ready);
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
