import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { WorkerPool } from "../src/workers/worker-pool.js";
import type { CrashInit, CrashMethods } from "./helpers/crash-worker.js";
import { until } from "./helpers/until.js";

const script = new URL("./helpers/crash-worker.js", import.meta.url);
const threads = (): number => readdirSync("/proc/self/task").length;

test("a worker that dies fails only its own request; a fresh worker serves the rest of the queue", async () => {
  const before = threads();
  const pool = new WorkerPool<CrashMethods, CrashInit, number>(script, { workers: 1, name: "CrashPool" });
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
  } finally {
    await pool.close();
  }
  assert.equal(threads(), before, "close() ended the replacement too");
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
