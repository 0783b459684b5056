/**
 * A WorkerPool worker for tests: echoes, fails, dies before answering (an
 * exit, an uncaught error, or a hang that never returns), or answers and asks
 * to be retired, as asked. Its setup reports the thread's id, and fails once `starts` (shared
 * by every worker of the pool) has run out: the pool's handshake and what it
 * does with a successor that cannot start.
 */
import { isMainThread, threadId } from "node:worker_threads";
import { serveWorker } from "../../src/workers/serve.js";

export type CrashMethods = {
  echo: { request: number; reply: number };
  fail: { request: undefined; reply: never };
  die: { request: undefined; reply: never };
  throwUncaught: { request: undefined; reply: never };
  hang: { request: number; reply: number };
  retire: { request: number; reply: number };
};

export interface CrashInit {
  /** Worker starts left, one Int32 over a SharedArrayBuffer; unlimited when absent. */
  readonly starts?: Int32Array;
}

// `node --test` may load the helpers too; only a pool's worker serves.
if (!isMainThread) {
  serveWorker<CrashMethods, CrashInit | undefined, number>("crash-worker.js", (init) => {
    if (init?.starts && Atomics.sub(init.starts, 0, 1) <= 0) throw new Error("no starts left");
    return {
      ready: threadId,
      handlers: {
        echo: (value) => ({ value: value * 2 }),
        fail: () => {
          throw new RangeError("asked to fail");
        },
        // In a worker, process.exit ends only this thread, as a crash would, and no reply is sent.
        die: () => process.exit(3),
        // Thrown outside the call, as a bug in a callback would be: the thread's 'error' event, then its exit.
        throwUncaught: () =>
          new Promise<never>(() =>
            setImmediate(() => {
              throw new Error("uncaught in the worker");
            }),
          ),
        // Answers, then asks to be replaced, as a thread holding memory it cannot give back does.
        retire: (value) => ({ value, retire: true }),
        // Blocks the thread for `ms`, as a stuck native call would (nothing interrupts it), then answers.
        hang: (ms) => {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
          return { value: ms };
        },
      },
    };
  });
}
