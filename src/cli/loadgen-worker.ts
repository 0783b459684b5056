/**
 * Runs one load level in a worker thread, so that the load generator and the
 * server (when it runs in the main thread, as `bench --embedded` does) do not
 * share an event loop: the main thread's event-loop delay is then the
 * server's own, and the generator's clock is not held up by the server.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createClient, type ClientOptions } from "../client/client.js";
import { runLoad, type LoadOptions, type LoadResult } from "./loadgen.js";
import type { ImageInit } from "./slice-files.js";

export interface LoadWorkerData {
  target: string;
  /** Structured-clone safe: TLS file paths and token, no credentials objects. */
  client: Omit<ClientOptions, "credentials">;
  load: Omit<LoadOptions, "slice">;
  /** Sent in turn, cycling. */
  images: ImageInit[];
}

export type LoadWorkerReply = { ok: true; result: LoadResult } | { ok: false; message: string };

const { target, client: clientOptions, load, images } = workerData as LoadWorkerData;
const client = createClient(target, clientOptions);
let reply: LoadWorkerReply;
try {
  const result = await runLoad(client, { ...load, slice: (index) => ({ index, image: images[Number(index % BigInt(images.length))] }) });
  reply = { ok: true, result };
} catch (error) {
  reply = { ok: false, message: (error as Error).message };
} finally {
  client.close();
}
parentPort!.postMessage(reply);
