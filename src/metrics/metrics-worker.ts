/** Worker thread of MetricsPool: computes one QualityReport per message. */
import { parentPort } from "node:worker_threads";
import type { MetricsReply, MetricsRequest } from "./pool.js";
import { computeQuality } from "./quality.js";

const port = parentPort;
if (port === null) throw new Error("metrics-worker.js runs as a worker thread of MetricsPool");

port.on("message", (request: MetricsRequest) => {
  const started = performance.now();
  let reply: MetricsReply;
  try {
    const report = computeQuality(request.synthetic, request.reference, request.target, request.options);
    reply = { id: request.id, ok: true, report, computeMs: performance.now() - started };
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    reply = { id: request.id, ok: false, name: e.name, message: e.message };
  }
  port.postMessage(reply);
});
