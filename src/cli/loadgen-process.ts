/**
 * Runs one load level in a child process, so that the load generator and
 * the server (when it runs in the bench's process, as `bench --embedded`
 * and `--ceiling` do) share no event loop, heap or garbage collector: the
 * server's event-loop delay, utilisation and GC are then its own, and the
 * generator's clock is not held up by the server. The job arrives as the
 * first IPC message; see LoadMessage for what goes back.
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

/**
 * What the child sends back: "measuring" once the warm-up is over, then one
 * reply (`cpuMs`: this process's CPU time, user + system, during the level).
 */
export type LoadMessage =
  | { kind: "measuring" }
  | { kind: "reply"; ok: true; result: LoadResult; cpuMs: number }
  | { kind: "reply"; ok: false; message: string };

/** CPU time from the warm-up's end: the result counts only the messages answered after it. */
let cpu = process.cpuUsage();
const onMeasuring = () => {
  cpu = process.cpuUsage();
  process.send!({ kind: "measuring" } satisfies LoadMessage);
};

async function run(job: LoadJob): Promise<LoadResult> {
  if (job.kind === "echo") {
    const echo = echoStreams(job.target, job.message);
    try {
      return await runStreams(echo.open, { ...job.load, onMeasuring });
    } finally {
      echo.close();
    }
  }
  const { images } = job;
  const client = createClient(job.target, job.client);
  try {
    return await runLoad(client, { ...job.load, onMeasuring, slice: (index) => ({ index, image: images[Number(index % BigInt(images.length))] }) });
  } finally {
    client.close();
  }
}

process.once("message", (job: LoadJob) => {
  cpu = process.cpuUsage();
  void run(job).then(
    (result): LoadMessage => {
      const { user, system } = process.cpuUsage(cpu);
      return { kind: "reply", ok: true, result, cpuMs: (user + system) / 1000 };
    },
    (error: Error): LoadMessage => ({ kind: "reply", ok: false, message: error.message }),
  ).then((reply) => process.send!(reply, () => process.disconnect()));
});
