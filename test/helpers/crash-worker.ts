/** A ThreadPool worker for tests: echoes, fails, or dies before answering, as asked. */
import { isMainThread } from "node:worker_threads";
import { serveRequests } from "../../src/workers/serve.js";

export type CrashRequest = { kind: "echo"; value: number } | { kind: "fail" } | { kind: "die" };

// `node --test dist/test/` also loads the helpers; only a ThreadPool worker serves.
if (!isMainThread) serveRequests<CrashRequest, number>("crash-worker.js", (request) => {
  if (request.kind === "fail") throw new RangeError("asked to fail");
  // In a worker, process.exit ends only this thread, as a crash would, and no reply is sent.
  if (request.kind === "die") process.exit(3);
  return { value: request.value * 2 };
});
