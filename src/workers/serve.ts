/**
 * The worker side of WorkerPool: set up once from the pool's `init`, say
 * ready, then answer one call at a time; errors go back by name, message and
 * numeric code.
 */
import { parentPort, workerData } from "node:worker_threads";
import { RETAINED_MEMORY_BYTES, wasmMemoryBytes } from "../imaging/wasm-module.js";
import type { CallMessage, Methods, WorkerMessage } from "./protocol.js";

/** What a handler returns: the reply and the buffers in it to transfer back. */
export interface Handled<Reply> {
  readonly value: Reply;
  readonly transfer?: ArrayBuffer[];
  /** The thread holds memory it cannot give back: the pool replaces it after this reply (asked for every handler when the thread's WebAssembly memory has grown past RETAINED_MEMORY_BYTES). */
  readonly retire?: boolean;
}

export type Handlers<M extends Methods> = {
  readonly [K in keyof M]: (request: M[K]["request"]) => Handled<M[K]["reply"]> | Promise<Handled<M[K]["reply"]>>;
};

/** What setup gives: the handlers, and what the pool's `ready` reports (nothing unless `Ready` says). */
export type Served<M extends Methods, Ready> = { readonly handlers: Handlers<M> } & (undefined extends Ready
  ? { readonly ready?: Ready }
  : { readonly ready: Ready });

export function serveWorker<M extends Methods, Init = undefined, Ready = undefined>(
  script: string,
  setup: (init: Init) => Served<M, Ready> | Promise<Served<M, Ready>>,
): void {
  const port = parentPort;
  if (port === null) throw new Error(`${script} runs as a worker thread of a WorkerPool`);
  const post = (message: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  Promise.resolve(workerData as Init)
    .then(setup)
    .then(
      ({ handlers, ready }) => {
        port.on("message", async ({ id, method, request }: CallMessage) => {
          const started = performance.now();
          try {
            const handled = await handlers[method](request);
            // WebAssembly memory that grew for a large image would stay that large: a fresh thread gives it back.
            const retire = handled.retire || wasmMemoryBytes() > RETAINED_MEMORY_BYTES;
            post({ kind: "reply", id, ok: true, value: handled.value, computeMs: performance.now() - started, retire }, handled.transfer);
          } catch (error) {
            const e = error instanceof Error ? error : new Error(String(error));
            const props = Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === "string" || typeof v === "number"));
            post({ kind: "reply", id, ok: false, name: e.name, message: e.message, props });
          }
        });
        post({ kind: "ready", ready });
      },
      (error: unknown) => post({ kind: "failed", message: error instanceof Error ? error.message : String(error) }),
    );
}
