import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualTimeScheduler } from "rxjs";
import { WorkerCrash, WorkerPool } from "../src/workers/worker-pool.js";
import type { CrashInit, CrashMethods } from "./helpers/crash-worker.js";
import { until } from "./helpers/until.js";
import { allEnded } from "./helpers/workers.js";
import { advanceTo } from "./helpers/virtual-time.js";

const script = new URL("./helpers/crash-worker.js", import.meta.url);

/** A pool of `workers` crash workers, with its crashes and ready-worker counts as they are reported. */
function observedPool(workers: number) {
  const pool = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers, name: "CrashPool" });
  const crashes: WorkerCrash[] = [];
  const ready: number[] = [];
  pool.crashes.subscribe((crash) => crashes.push(crash));
  pool.readyWorkers.subscribe((count) => ready.push(count));
  return { pool, crashes, ready };
}

test("a worker that dies fails only its own request; a fresh worker serves the rest of the queue", async () => {
  const pool = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 1, name: "CrashPool" });
  const spawned = [...pool.threads];
  try {
    const first = pool.call("echo", 1);
    const failing = pool.call("fail", undefined);
    const dying = pool.call("die", undefined);
    const queued = [2, 3, 4].map((value) => pool.call("echo", value));
    assert.equal(pool.queued, 6, "nothing runs before the worker is ready");
    assert.equal((await first).value, 2);
    await assert.rejects(failing, { name: "RangeError", message: "asked to fail" });
    await assert.rejects(dying, { message: "CrashPool worker died: exit code 3" });
    assert.deepEqual(
      (await Promise.all(queued)).map((r) => r.value),
      [4, 6, 8],
    );
    assert.equal(pool.size, 1, "the dead worker was replaced");
    assert.equal((await pool.call("echo", 5)).value, 10);
    spawned.push(...pool.threads);
  } finally {
    await pool.close();
  }
  await until(() => allEnded(spawned), "close() to end the replacement too");
});

test("ready reports each worker's setup; a worker killed from outside is replaced and the pool serves on", async () => {
  const pool = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 2, name: "CrashPool" });
  try {
    const ids = await pool.ready;
    assert.deepEqual(ids, pool.threads.map((worker) => worker.threadId));
    const [victim, survivor] = pool.threads;
    await victim.terminate();
    await until(() => pool.threads[0] !== victim, "the replacement");
    assert.equal(pool.threads[1], survivor);
    const answers = await Promise.all([1, 2, 3, 4].map((value) => pool.call("echo", value)));
    assert.deepEqual(answers.map((a) => a.value), [2, 4, 6, 8]);
  } finally {
    await pool.close();
  }
});

test("a worker that cannot set itself up is not replaced; with none left, calls fail with the reason", async () => {
  const starts = new Int32Array(new SharedArrayBuffer(4));
  starts[0] = 1;
  const single = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 1, name: "CrashPool", init: { starts } });
  try {
    await single.ready;
    const queued = single.call("die", undefined).catch((error: Error) => error.message);
    const stranded = single.call("echo", 1);
    assert.equal(await queued, "CrashPool worker died: exit code 3");
    await assert.rejects(stranded, { message: "CrashPool has no workers left: no starts left" });
    assert.equal(single.size, 0);
    await assert.rejects(single.call("echo", 2), /CrashPool has no workers left/);
  } finally {
    await single.close();
  }

  starts[0] = 1;
  const pair = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 2, name: "CrashPool", init: { starts } });
  await assert.rejects(pair.ready, { message: "no starts left" });
  await assert.rejects(pair.call("echo", 1), { message: "no starts left" });
  assert.throws(() => new WorkerPool(script, { workers: 0, name: "CrashPool" }), /CrashPool workers must be a positive integer, got 0/);
});

test("a worker that throws outside a call or exits is replaced; crashes and ready workers are reported as they happen", async () => {
  const { pool, crashes, ready } = observedPool(2);
  try {
    await pool.ready;
    await assert.rejects(pool.call("throwUncaught", undefined), (error: WorkerCrash) => {
      assert.ok(error instanceof WorkerCrash);
      assert.deepEqual([error.kind, error.message], ["error", "CrashPool worker died: uncaught in the worker"]);
      return true;
    });
    await until(() => ready.at(-1) === 2, "the successor to be ready");
    await assert.rejects(pool.call("die", undefined), { name: "WorkerCrash", kind: "exit", message: "CrashPool worker died: exit code 3" });
    await until(() => ready.at(-1) === 2, "the second successor to be ready");
    assert.deepEqual(crashes.map((c) => c.kind), ["error", "exit"]);
    assert.deepEqual(ready, [0, 1, 2, 1, 2, 1, 2], "one worker short while each successor set itself up");
    assert.equal((await pool.call("echo", 21)).value, 42);
  } finally {
    await pool.close();
  }
});

test("a call past its deadline marks its worker hung: the call fails, a successor takes over, the thread ends once it returns (virtual time)", async () => {
  const scheduler = new VirtualTimeScheduler();
  const pool = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 1, name: "CrashPool", scheduler });
  const crashes: WorkerCrash[] = [];
  pool.crashes.subscribe((crash) => crashes.push(crash));
  try {
    await pool.ready;
    const [hung] = pool.threads;
    const start = scheduler.now();
    // Blocked for 300 ms of real time: the deadline passes (in virtual time) long before it returns.
    const call = pool.call("hang", 300, [], { deadlineMs: 1000 });
    let failure: unknown;
    call.catch((error: unknown) => (failure = error));
    advanceTo(scheduler, start + 999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(failure, undefined, "not before the deadline");
    advanceTo(scheduler, start + 1000);
    await assert.rejects(call, { name: "WorkerCrash", kind: "deadline", message: "CrashPool worker hung: no answer within 1000 ms" });
    assert.deepEqual(crashes.map((c) => c.kind), ["deadline"]);
    assert.notEqual(pool.threads[0], hung, "a successor took the lane at once");
    // A call that answers in time is not affected by its deadline.
    assert.equal((await pool.call("echo", 4, [], { deadlineMs: 1000 })).value, 8);
    await until(() => allEnded([hung]), "the hung thread to end once it returned");
    assert.ok(!allEnded(pool.threads), "its successor runs on");
  } finally {
    await pool.close();
  }
  assert.equal(pool.threads.length, 1, "close() keeps the lanes' last workers");
  await until(() => allEnded(pool.threads), "every worker thread to end after close()");
});

test("a worker that asks to be retired answers, then a fresh one takes its lane: no crash, queued calls wait for it", async () => {
  const { pool, crashes, ready } = observedPool(1);
  try {
    await pool.ready;
    const [old] = pool.threads;
    const retiring = pool.call("retire", 7);
    const queued = pool.call("echo", 3);
    assert.equal((await retiring).value, 7);
    assert.equal((await queued).value, 6, "the queued call ran on the successor");
    assert.notEqual(pool.threads[0], old);
    assert.deepEqual(ready, [0, 1, 0, 1], "one worker short while the successor set itself up");
    assert.deepEqual(crashes, [], "a retirement is not a crash");
    await until(() => allEnded([old]), "the retired thread to end");
  } finally {
    await pool.close();
  }
  assert.equal(pool.threads.length, 1, "close() keeps the lanes' last workers");
  await until(() => allEnded(pool.threads), "every worker thread to end after close()");
});
