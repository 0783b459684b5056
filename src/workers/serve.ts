/** The worker side of ThreadPool: one reply per request, errors sent back by name and message. */
import { parentPort } from "node:worker_threads";
import type { WorkerReply, WorkerRequest } from "./thread-pool.js";

/** What a handler returns: the reply and the buffers in it to transfer back. */
export interface Handled<Reply> {
  readonly value: Reply;
  readonly transfer?: ArrayBuffer[];
}

export function serveRequests<Request, Reply>(script: string, handle: (request: Request) => Handled<Reply>): void {
  const port = parentPort;
  if (port === null) throw new Error(`${script} runs as a worker thread of a ThreadPool`);
  port.on("message", ({ id, request }: WorkerRequest<Request>) => {
    const started = performance.now();
    let reply: WorkerReply<Reply>;
    let transfer: ArrayBuffer[] = [];
    try {
      const handled = handle(request);
      transfer = handled.transfer ?? [];
      reply = { id, ok: true, value: handled.value, computeMs: performance.now() - started };
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      reply = { id, ok: false, name: e.name, message: e.message };
    }
    port.postMessage(reply, transfer);
  });
}
