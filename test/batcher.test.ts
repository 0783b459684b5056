import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { map, throwError, timer, type Subscription } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { MicroBatcher, QueueFullError, type Batched } from "../src/batcher/micro-batcher.js";
import { WorkerSlots } from "../src/batcher/worker-slots.js";

/** A batcher whose runner takes `runMs` of virtual time and doubles each item. */
function setup(options: { slots?: number; maxBatch?: number; maxDelayMs?: number; maxQueue?: number; runMs?: number }) {
  const scheduler = new TestScheduler(assert.deepEqual);
  const slots = new WorkerSlots(options.slots ?? 1);
  const batches: { at: number; items: number[] }[] = [];
  const batcher = new MicroBatcher<number, number>(
    (items) => {
      batches.push({ at: scheduler.now(), items: [...items] });
      return timer(options.runMs ?? 10, scheduler).pipe(map(() => items.map((x) => x * 2)));
    },
    slots,
    { maxBatch: options.maxBatch, maxDelayMs: options.maxDelayMs, maxQueue: options.maxQueue, scheduler },
  );
  const results = new Map<number, { at: number; out: Batched<number> } | { at: number; error: unknown }>();
  const subscriptions = new Map<number, Subscription>();
  /** Submits `item` at virtual time `at`. */
  const submitAt = (at: number, item: number) =>
    scheduler.schedule(() => {
      subscriptions.set(
        item,
        batcher.submit(item).subscribe({
          next: (out) => results.set(item, { at: scheduler.now(), out }),
          error: (error) => results.set(item, { at: scheduler.now(), error }),
        }),
      );
    }, at);
  return { scheduler, slots, batcher, batches, results, subscriptions, submitAt };
}

describe("MicroBatcher (virtual time)", () => {
  it("sends a full batch at once when maxBatch items wait and a worker is free", () => {
    const t = setup({ maxBatch: 3, maxDelayMs: 50 });
    for (const i of [1, 2, 3]) t.submitAt(0, i);
    t.scheduler.flush();
    assert.deepEqual(t.batches, [{ at: 0, items: [1, 2, 3] }]);
    assert.deepEqual(t.results.get(2), { at: 10, out: { value: 4, queuedMs: 0, batchSize: 3 } });
  });

  it("sends a partial batch when the oldest item has waited maxDelayMs", () => {
    const t = setup({ maxBatch: 8, maxDelayMs: 5 });
    t.submitAt(0, 1);
    t.submitAt(3, 2);
    t.scheduler.flush();
    assert.deepEqual(t.batches, [{ at: 5, items: [1, 2] }]);
    const second = t.results.get(2);
    assert.ok(second && "out" in second);
    assert.equal(second.out.queuedMs, 2);
    assert.equal(second.at, 15);
  });

  it("lets the queue grow while workers are busy and takes up to maxBatch next (adaptive)", () => {
    const t = setup({ maxBatch: 4, maxDelayMs: 0, runMs: 10 });
    for (let i = 1; i <= 7; i++) t.submitAt(i - 1, i); // one item per ms, worker busy 0..10
    t.scheduler.flush();
    assert.deepEqual(t.batches, [
      { at: 0, items: [1] },
      { at: 10, items: [2, 3, 4, 5] },
      { at: 20, items: [6, 7] },
    ]);
  });

  it("uses every worker slot in parallel", () => {
    const t = setup({ slots: 2, maxBatch: 2, maxDelayMs: 5, runMs: 10 });
    for (const i of [1, 2, 3, 4, 5]) t.submitAt(0, i);
    t.scheduler.flush();
    assert.deepEqual(t.batches, [
      { at: 0, items: [1, 2] },
      { at: 0, items: [3, 4] },
      { at: 10, items: [5] },
    ]);
  });

  it("rejects at once with QueueFullError past maxQueue, and accepts again once it drains", () => {
    const t = setup({ maxBatch: 2, maxDelayMs: 0, maxQueue: 2, runMs: 10 });
    for (const i of [1, 2, 3, 4]) t.submitAt(0, i); // 1 dispatched at once, 2 and 3 queue, 4 overflows
    t.submitAt(30, 5);
    t.scheduler.flush();
    const overflow = t.results.get(4);
    assert.ok(overflow && "error" in overflow);
    assert.ok(overflow.error instanceof QueueFullError);
    assert.equal(overflow.at, 0);
    assert.deepEqual(t.batches.map((b) => b.items), [[1], [2, 3], [5]]);
  });

  it("takes an unsubscribed (cancelled) item out of the queue before it reaches a batch", () => {
    const t = setup({ maxBatch: 4, maxDelayMs: 0, runMs: 10 });
    for (const i of [1, 2, 3, 4]) t.submitAt(0, i);
    t.scheduler.schedule(() => {
      assert.equal(t.batcher.depth, 3);
      t.subscriptions.get(3)!.unsubscribe();
      assert.equal(t.batcher.depth, 2);
    }, 5);
    t.scheduler.flush();
    assert.deepEqual(t.batches.map((b) => b.items), [[1], [2, 4]]);
    assert.equal(t.results.has(3), false);
  });

  it("withdraws its worker request when every queued item is cancelled", () => {
    const t = setup({ maxBatch: 1, maxDelayMs: 0, runMs: 10 });
    t.submitAt(0, 1);
    t.submitAt(1, 2);
    t.scheduler.schedule(() => t.subscriptions.get(2)!.unsubscribe(), 2);
    t.scheduler.flush();
    assert.deepEqual(t.batches.map((b) => b.items), [[1]]);
    assert.equal(t.slots.available, 1);
  });

  it("fails every item of a failed batch, frees the worker and goes on", () => {
    const scheduler = new TestScheduler(assert.deepEqual);
    const slots = new WorkerSlots(1);
    let calls = 0;
    const batcher = new MicroBatcher<number, number>(
      (items) => (calls++ === 0 ? throwError(() => new Error("boom")) : timer(1, scheduler).pipe(map(() => [...items]))),
      slots,
      { maxBatch: 2, maxDelayMs: 1, scheduler },
    );
    const seen: string[] = [];
    scheduler.schedule(() => {
      for (const i of [1, 2]) batcher.submit(i).subscribe({ error: (e: Error) => seen.push(`${i}:${e.message}`) });
    }, 0);
    scheduler.schedule(() => batcher.submit(3).subscribe((r) => seen.push(`3:${r.value}`)), 5);
    scheduler.flush();
    assert.deepEqual(seen, ["1:boom", "2:boom", "3:3"]);
    assert.equal(slots.available, 1);
  });

  it("shares workers fairly between two models' batchers (first come, first served)", () => {
    const scheduler = new TestScheduler(assert.deepEqual);
    const slots = new WorkerSlots(1);
    const order: string[] = [];
    const make = (name: string) =>
      new MicroBatcher<number, number>(
        (items) => {
          order.push(`${name}${items.join("")}`);
          return timer(10, scheduler).pipe(map(() => [...items]));
        },
        slots,
        { maxBatch: 1, maxDelayMs: 0, scheduler },
      );
    const a = make("a");
    const b = make("b");
    scheduler.schedule(() => {
      for (const i of [1, 2, 3]) a.submit(i).subscribe();
    }, 0);
    scheduler.schedule(() => b.submit(1).subscribe(), 1);
    scheduler.flush();
    // b asked at t=1, before a's third item was ready to ask again: b goes second.
    assert.deepEqual(order, ["a1", "a2", "b1", "a3"]);
  });
});
