import { asyncScheduler, from, Observable, type SchedulerLike, type Subscriber, type Subscription } from "rxjs";
import type { Release, WorkerSlots } from "./worker-slots.js";

export interface MicroBatcherOptions {
  /** Most items in one batch. */
  maxBatch?: number;
  /** Longest the oldest waiting item waits for a batch to fill, in ms. */
  maxDelayMs?: number;
  /** Most items waiting; one more fails at once with QueueFullError. */
  maxQueue?: number;
  /** Clock and timers; a TestScheduler in tests (default asyncScheduler). */
  scheduler?: SchedulerLike;
}

export const DEFAULT_BATCHER_OPTIONS: Required<Omit<MicroBatcherOptions, "scheduler">> = {
  maxBatch: 8,
  maxDelayMs: 5,
  maxQueue: 256,
};

/** Runs one batch; must return one result per item, in order. */
export type BatchRunner<T, R> = (items: readonly T[]) => Observable<readonly R[]> | PromiseLike<readonly R[]>;

export interface Batched<R> {
  value: R;
  /** From submission to the start of the item's batch. */
  queuedMs: number;
  /** Items in that batch. */
  batchSize: number;
}

/** The queue is full: the caller should back off (gRPC RESOURCE_EXHAUSTED). */
export class QueueFullError extends Error {
  override name = "QueueFullError";
  constructor(readonly maxQueue: number) {
    super(`inference queue is full (${maxQueue} waiting); retry later or lower the send rate`);
  }
}

interface Waiting<T, R> {
  readonly item: T;
  readonly arrivedAt: number;
  readonly subscriber: Subscriber<Batched<R>>;
  dispatched: boolean;
}

/**
 * Dynamic batching for one model. Items wait in a bounded FIFO; a batch
 * leaves when a worker slot is free and either `maxBatch` items wait or the
 * oldest has waited `maxDelayMs`. While every worker is busy the queue grows
 * and the next batch takes up to `maxBatch` of it, so batches grow with load.
 *
 * Knows nothing of models or protocols: `run` does the work, `slots` says
 * when a worker can take it. `submit()` is cold: subscribing enqueues,
 * unsubscribing before dispatch takes the item out of the queue.
 */
export class MicroBatcher<T, R> {
  private readonly queue: Waiting<T, R>[] = [];
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxQueue: number;
  private readonly scheduler: SchedulerLike;
  private deadline: { at: number; timer: Subscription } | undefined;
  private slotRequest: Subscription | undefined;

  constructor(
    private readonly run: BatchRunner<T, R>,
    private readonly slots: WorkerSlots,
    options: MicroBatcherOptions = {},
  ) {
    this.maxBatch = positive(options.maxBatch ?? DEFAULT_BATCHER_OPTIONS.maxBatch, "maxBatch");
    this.maxDelayMs = nonNegative(options.maxDelayMs ?? DEFAULT_BATCHER_OPTIONS.maxDelayMs, "maxDelayMs");
    this.maxQueue = positive(options.maxQueue ?? DEFAULT_BATCHER_OPTIONS.maxQueue, "maxQueue");
    this.scheduler = options.scheduler ?? asyncScheduler;
  }

  /** Items waiting for a batch. */
  get depth(): number {
    return this.queue.length;
  }

  submit(item: T): Observable<Batched<R>> {
    return new Observable<Batched<R>>((subscriber) => {
      if (this.queue.length >= this.maxQueue) {
        subscriber.error(new QueueFullError(this.maxQueue));
        return undefined;
      }
      const waiting: Waiting<T, R> = { item, arrivedAt: this.scheduler.now(), subscriber, dispatched: false };
      this.queue.push(waiting);
      this.evaluate();
      return () => {
        if (waiting.dispatched) return;
        this.queue.splice(this.queue.indexOf(waiting), 1);
        this.evaluate();
      };
    });
  }

  /** Decides, after any change, whether to ask for a slot or to wait for the deadline. */
  private evaluate(): void {
    const oldest = this.queue[0];
    const ready =
      oldest !== undefined &&
      (this.queue.length >= this.maxBatch || this.scheduler.now() - oldest.arrivedAt >= this.maxDelayMs);
    if (!ready) {
      this.slotRequest?.unsubscribe();
      this.slotRequest = undefined;
    }
    if (ready || oldest === undefined) {
      this.deadline?.timer.unsubscribe();
      this.deadline = undefined;
    }
    if (oldest === undefined) return;
    if (ready) {
      if (this.slotRequest) return;
      let granted = false;
      const request = this.slots.acquire().subscribe((release) => {
        granted = true;
        this.slotRequest = undefined;
        this.dispatch(release);
      });
      if (!granted) this.slotRequest = request;
      return;
    }
    const at = oldest.arrivedAt + this.maxDelayMs;
    if (this.deadline?.at === at) return;
    this.deadline?.timer.unsubscribe();
    this.deadline = {
      at,
      timer: this.scheduler.schedule(() => {
        this.deadline = undefined;
        this.evaluate();
      }, at - this.scheduler.now()),
    };
  }

  private dispatch(release: Release): void {
    const batch = this.queue.splice(0, this.maxBatch);
    for (const waiting of batch) waiting.dispatched = true;
    const startedAt = this.scheduler.now();
    const done = (): void => {
      release();
      this.evaluate();
    };
    from(this.run(batch.map((w) => w.item))).subscribe({
      next: (results) => {
        if (results.length !== batch.length) {
          const error = new Error(`batch runner returned ${results.length} results for ${batch.length} items`);
          for (const w of batch) w.subscriber.error(error);
          return;
        }
        batch.forEach((w, i) => {
          w.subscriber.next({ value: results[i], queuedMs: startedAt - w.arrivedAt, batchSize: batch.length });
          w.subscriber.complete();
        });
      },
      error: (error: unknown) => {
        for (const w of batch) w.subscriber.error(error);
        done();
      },
      complete: done,
    });
    this.evaluate();
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegative(value: number, name: string): number {
  if (!(value >= 0)) throw new RangeError(`${name} must be >= 0, got ${value}`);
  return value;
}
