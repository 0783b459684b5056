import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { ThreadPool } from "../src/workers/thread-pool.js";
import type { CrashRequest } from "./helpers/crash-worker.js";

const script = new URL("./helpers/crash-worker.js", import.meta.url);
const threads = (): number => readdirSync("/proc/self/task").length;

test("a worker that dies fails only its own request; a fresh worker serves the rest of the queue", async () => {
  const before = threads();
  const pool = new ThreadPool<CrashRequest, number>(script, { workers: 1, name: "CrashPool" });
  try {
    const first = pool.run({ kind: "echo", value: 1 });
    const failing = pool.run({ kind: "fail" });
    const dying = pool.run({ kind: "die" });
    const queued = [2, 3, 4].map((value) => pool.run({ kind: "echo", value }));
    assert.equal(pool.queued, 5);
    assert.equal((await first).value, 2);
    await assert.rejects(failing, { name: "RangeError", message: "asked to fail" });
    await assert.rejects(dying, { message: "CrashPool worker died: exit code 3" });
    assert.deepEqual(
      (await Promise.all(queued)).map((r) => r.value),
      [4, 6, 8],
    );
    assert.equal(pool.size, 1, "the dead worker was replaced");
    assert.equal((await pool.run({ kind: "echo", value: 5 })).value, 10);
  } finally {
    await pool.close();
  }
  assert.equal(threads(), before, "close() ended the replacement too");
});
