/**
 * An inference worker for fault tests (ServerHooks.inferenceWorker): the
 * real one, every model loaded and warmed up, real inference, that can be
 * told (armFault(), over a BroadcastChannel) to fail its next batches: by an
 * uncaught error (its 'error' event, then its exit), by exiting, or by
 * hanging, blocked as a stuck native call would be, for a while before it
 * answers.
 */
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";
import { setUpOrtWorker } from "../../src/inference/ort-setup.js";
import type { OrtMethods, WorkerInit, WorkerReady } from "../../src/inference/ort-protocol.js";
import { serveWorker } from "../../src/workers/serve.js";

export const FAULTY_ORT_WORKER = new URL("./faulty-ort-worker.js", import.meta.url);

const CHANNEL = "medsynth-test-faults";

export type Fault = { readonly kind: "error" } | { readonly kind: "exit" } | { readonly kind: "hang"; readonly ms: number };

type ChannelMessage =
  /** To the workers: fail the next batches; `left` (shared) counts the batches still to fail, over all workers. */
  | { readonly arm: Fault; readonly left: Int32Array }
  /** From a worker: it has the fault. */
  | { readonly ack: number }
  /** From a worker: it is failing a batch now. */
  | { readonly failing: number };

if (!isMainThread) {
  let armed: Extract<ChannelMessage, { arm: Fault }> | undefined;
  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  channel.onmessage = (event) => {
    const message = (event as { data: ChannelMessage }).data;
    if (!("arm" in message)) return;
    armed = message;
    channel.postMessage({ ack: threadId } satisfies ChannelMessage);
  };

  serveWorker<OrtMethods, WorkerInit, WorkerReady>("faulty-ort-worker.js", async (init) => {
    const real = await setUpOrtWorker(init);
    return {
      ready: real.ready,
      handlers: {
        run: async (request) => {
          const fault = armed !== undefined && Atomics.sub(armed.left, 0, 1) > 0 ? armed.arm : undefined;
          if (fault) channel.postMessage({ failing: threadId } satisfies ChannelMessage);
          switch (fault?.kind) {
            case "exit":
              // In a worker this ends the thread alone, with no reply.
              return process.exit(1);
            case "error":
              setImmediate(() => {
                throw new Error("injected fault: an uncaught error in the inference worker");
              });
              return new Promise<never>(() => undefined);
            case "hang":
              Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, fault.ms);
              break;
          }
          return real.handlers.run(request);
        },
      },
    };
  });
}

/**
 * Arms `fault` in the `workers` inference workers running now (successors
 * start clean): the next `count` batches fail. Resolves once every worker
 * has it; `failing` resolves when the first batch starts to fail (not
 * for "exit": the thread ends before its message gets out).
 */
export async function armFault(fault: Fault, workers: number, count = 1): Promise<{ failing: Promise<void> }> {
  const channel = new BroadcastChannel(CHANNEL);
  channel.unref();
  const left = new Int32Array(new SharedArrayBuffer(4));
  left[0] = count;
  const acks = new Set<number>();
  let failed: () => void = () => undefined;
  const failing = new Promise<void>((resolve) => (failed = resolve));
  await new Promise<void>((resolve) => {
    channel.onmessage = (event) => {
      const message = (event as { data: ChannelMessage }).data;
      if ("ack" in message && acks.add(message.ack).size === workers) resolve();
      if ("failing" in message) {
        // A worker can take the fault and fail before another one's ack arrives (the channel closes here):
        // the fault is armed all the same.
        failed();
        resolve();
        channel.close();
      }
    };
    channel.postMessage({ arm: fault, left } satisfies ChannelMessage);
  });
  return { failing };
}
