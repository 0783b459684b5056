/**
 * Runs one load level in a child process, so that the load generator and
 * the server (when it runs in the bench's process, as `bench --embedded`
 * and `--ceiling` do) share no event loop, heap or garbage collector: the
 * server's event-loop delay, utilisation and GC are then its own, and the
 * generator's clock is not held up by the server. The job arrives as the
 * first IPC message; the reply is the only one sent back.
 */
import { createClient, type ClientOptions, type TranslateOptions } from "../client/client.js";
import { echoStreams } from "./echo.js";
import { runLoad, runStreams, type LoadOptions, type LoadResult } from "./loadgen.js";
import type { ImageInit } from "./slice-files.js";

export type LoadJob =
  | {
      kind: "translate";
      target: string;
      /** Structured-clone safe: TLS file paths and token, no credentials objects. */
      client: Omit<ClientOptions, "credentials">;
      load: LoadOptions & { translate: TranslateOptions };
      /** Sent in turn, cycling. */
      images: ImageInit[];
    }
  | {
      kind: "echo";
      target: string;
      load: LoadOptions;
      /** Sent on every stream, every time. */
      message: Uint8Array;
    };

export type LoadReply = { ok: true; result: LoadResult } | { ok: false; message: string };

async function run(job: LoadJob): Promise<LoadResult> {
  if (job.kind === "echo") {
    const echo = echoStreams(job.target, job.message);
    try {
      return await runStreams(echo.open, job.load);
    } finally {
      echo.close();
    }
  }
  const { images } = job;
  const client = createClient(job.target, job.client);
  try {
    return await runLoad(client, { ...job.load, slice: (index) => ({ index, image: images[Number(index % BigInt(images.length))] }) });
  } finally {
    client.close();
  }
}

process.once("message", (job: LoadJob) => {
  void run(job).then(
    (result): LoadReply => ({ ok: true, result }),
    (error: Error): LoadReply => ({ ok: false, message: error.message }),
  ).then((reply) => process.send!(reply, () => process.disconnect()));
});
