/** Messages between a WorkerPool and serveWorker() in its threads (structured-clone safe). */

/** The methods a worker serves: each one's request and reply types, e.g. `{ compute: { request: R; reply: Q } }`. */
export type Methods = Record<string, { request: unknown; reply: unknown }>;

export interface CallMessage {
  readonly id: number;
  readonly method: string;
  readonly request: unknown;
}

export type WorkerMessage =
  /** Set up (sessions loaded, warmed up): the worker takes calls from now on. */
  | { readonly kind: "ready"; readonly ready: unknown }
  /** Setup failed; the worker takes no calls. */
  | { readonly kind: "failed"; readonly message: string }
  /** `computeMs` is the worker's own time, without the queue wait; `retire`: replace the worker now (see Handled). */
  | { readonly kind: "reply"; readonly id: number; readonly ok: true; readonly value: unknown; readonly computeMs: number; readonly retire?: boolean }
  /** A failed call: the error's name, message and its own string and number properties (e.g. a gRPC `code`, a `field`). */
  | { readonly kind: "reply"; readonly id: number; readonly ok: false; readonly name: string; readonly message: string; readonly props: Readonly<Record<string, string | number>> };
