/**
 * `npm run bench:edges -- memory [server flags] | kill [seconds faultAt
 * workers...]`: the failure-proof edges measured on the default models
 * (whatever `loadModelSpecs("models")` marks default), on loopback.
 *
 * memory: the server in a child process at its defaults (plus the flags
 * given): its RSS after a warm-up of 256² slices with references, then
 * while 8 4096² float32 slices with 4096² references are in flight on 4
 * streams (peak, sampled every 50 ms; in-flight bytes from /metrics), and
 * after; twice. Every slice must be answered; none may fail.
 *
 * kill: the server in this process with 2, then 1 inference workers (or the
 * counts given) under a closed-loop load of 8 streams; at `faultAt` s
 * (default 20) the worker that runs the next batch exits mid-batch (the real
 * worker wrapped to inject the fault, test/helpers/faulty-ort-worker.ts);
 * each run lasts `seconds` (default 60) and then lets its streams finish:
 * slices sent and answered, how each failed one failed, health over time,
 * recovery time, throughput before and after.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, type ClientReadableStream } from "@grpc/grpc-js";
import { syntheticHead } from "../src/cli/synthetic-head.js";
import { createClient, type SliceInit } from "../src/client/client.js";
import { serviceDefinition } from "../src/contract/service.js";
import { isSliceError } from "../src/contract/slice-errors.js";
import { Health, HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from "../src/gen/grpc/health/v1/health_pb.js";
import { Encoding, PixelType, type Image } from "../src/gen/medsynth/v1/translator_pb.js";
import { startServer } from "../src/server/server.js";
import { createLogger } from "../src/server/log.js";
import { armFault, FAULTY_ORT_WORKER } from "../test/helpers/faulty-ort-worker.js";
import { freePort } from "../test/helpers/net.js";

const MiB = 1024 * 1024;
const print = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A float32 RAW slice: an MR-like head (scanner units) or a CT-like one (HU). */
function slice(side: number, modality: "mr" | "ct"): Image {
  const values = modality === "mr" ? { outside: 0, inside: 600, core: 900 } : { outside: -1000, inside: 35, core: 900 };
  const data = syntheticHead(side, side, values);
  return { encoding: Encoding.RAW, data: new Uint8Array(data.buffer), width: side, height: side, pixelType: PixelType.FLOAT32, rescaleSlope: 1, rescaleIntercept: 0 } as Image;
}

/** Sends `count` copies of `input` (with `reference`) on each of `streams` streams; failures by message. */
async function load(address: string, streams: number, count: number, input: SliceInit): Promise<Map<string, number>> {
  const client = createClient(address);
  const failures = new Map<string, number>();
  try {
    await Promise.all(
      Array.from({ length: streams }, async () => {
        const slices = Array.from({ length: count }, (_, i) => ({ ...input, index: BigInt(i) }));
        for await (const answer of client.translate({ direction: "mr2ct", outputEncoding: Encoding.RAW }, slices)) {
          if (isSliceError(answer)) failures.set(answer.message, (failures.get(answer.message) ?? 0) + 1);
        }
      }),
    );
  } finally {
    client.close();
  }
  return failures;
}

const rssOf = (pid: number): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) * 1024;

async function inflightBytes(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  return Number(/^medsynth_inflight_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
}

async function memory(flags: string[]): Promise<void> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["dist/src/server/main.js", "--host", "127.0.0.1", "--port", `${port}`, "--metrics-port", `${metricsPort}`, ...flags], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let log = "";
  child.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  // Whatever ends this process ends the server too (a signal skips "exit").
  process.on("exit", () => child.kill("SIGKILL"));
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(1));
  try {
    while (!log.includes('"listening"')) await sleep(100);
    const address = `127.0.0.1:${port}`;
    const pid = child.pid!;
    print(`server ${flags.join(" ") || "(defaults)"}: RSS after start ${(rssOf(pid) / MiB).toFixed(0)} MiB`);
    const small = { image: slice(256, "mr"), reference: slice(256, "ct") };
    const warm = await load(address, 4, 50, small);
    await sleep(3000);
    const baseline = rssOf(pid);
    print(`warmed up (200 slices 256² with references, ${[...warm.values()].reduce((a, b) => a + b, 0)} failed): RSS ${(baseline / MiB).toFixed(0)} MiB`);

    const big = { image: slice(4096, "mr"), reference: slice(4096, "ct") };
    // Twice: what stays after the first burst must not grow with the second.
    for (const burst of [1, 2]) {
      let peak = 0;
      let peakInflight = 0;
      let unread = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, rssOf(pid))), 50);
      const gauge = setInterval(
        () => void inflightBytes(metricsPort).then((bytes) => (peakInflight = Math.max(peakInflight, bytes)), () => unread++),
        100,
      );
      const started = performance.now();
      const failed = await load(address, 4, 2, big);
      const seconds = (performance.now() - started) / 1000;
      clearInterval(sampler);
      clearInterval(gauge);
      print(
        `burst ${burst}: 8 slices 4096² float32 with 4096² references on 4 streams, answered in ${seconds.toFixed(1)} s, ` +
          `failed ${[...failed.values()].reduce((a, b) => a + b, 0)}: peak RSS ${(peak / MiB).toFixed(0)} MiB = baseline + ${((peak - baseline) / MiB).toFixed(0)} MiB; ` +
          `peak in-flight ${(peakInflight / MiB).toFixed(0)} MiB declared` +
          (unread > 0 ? ` (${unread} reads of /metrics failed)` : ""),
      );
      for (const [message, count] of failed) print(`  ${count} × ${message}`);
      await sleep(5000);
      print(`  5 s after: RSS ${(rssOf(pid) / MiB).toFixed(0)} MiB`);
    }
    await load(address, 4, 50, small);
    await sleep(3000);
    print(`after 200 more 256² slices: RSS ${(rssOf(pid) / MiB).toFixed(0)} MiB`);
  } finally {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
}

const HealthClient = makeGenericClientConstructor(serviceDefinition(Health), "Health");

async function kill(workers: number, seconds: number, faultAt: number): Promise<void> {
  const server = await startServer(
    { host: "127.0.0.1", port: 0, metricsPort: 0, workers, logLevel: "error" },
    { inferenceWorker: FAULTY_ORT_WORKER, log: createLogger("error") },
  );
  const health = new HealthClient(server.address, credentials.createInsecure()) as unknown as { watch(r: unknown): ClientReadableStream<HealthCheckResponse>; close(): void };
  const statuses: { at: number; status: string }[] = [];
  const start = performance.now();
  const at = () => (performance.now() - start) / 1000;
  const watch = health.watch(create(HealthCheckRequestSchema, { service: "medsynth.v1.Translator" }));
  watch.on("data", (r: HealthCheckResponse) => statuses.push({ at: at(), status: ServingStatus[r.status] }));
  watch.on("error", () => undefined);
  const client = createClient(server.address);
  const answers: { at: number; ok: boolean; message?: string }[] = [];
  let sent = 0;
  let running = true;
  const input = { image: slice(256, "mr") };
  async function* slices(): AsyncGenerator<SliceInit> {
    while (running) yield { ...input, index: BigInt(sent++) };
  }
  const streams = Array.from({ length: 8 }, async () => {
    for await (const answer of client.translate({ direction: "mr2ct" }, slices())) {
      answers.push({ at: at(), ok: !isSliceError(answer), message: isSliceError(answer) ? answer.message : undefined });
    }
  });
  await sleep(faultAt * 1000);
  // The next batch's worker exits (no reply): "killed at" is when the fault was armed, at most one batch before the exit.
  await armFault({ kind: "exit" }, workers);
  const killedAt = at();
  await sleep((seconds - faultAt) * 1000);
  running = false;
  await Promise.all(streams);
  const failed = answers.filter((a) => !a.ok);
  // Recovery counts from the crash (its batch's first failed answer), not from the arming: answers of the
  // batch that was running when the fault was armed still arrive after killedAt.
  const crashedAt = failed[0]?.at ?? NaN;
  const firstOkAfter = answers.find((a) => a.at > crashedAt && a.ok)?.at ?? NaN;
  const rate = (from: number, to: number) => answers.filter((a) => a.ok && a.at >= from && a.at < to).length / (to - from);
  print(`workers ${workers}: ${sent} slices sent, ${answers.length} answered (${answers.length === sent ? "none lost" : `${sent - answers.length} LOST`}), ${failed.length} failed`);
  for (const message of new Set(failed.map((f) => f.message))) print(`  ${failed.filter((f) => f.message === message).length} × ${message}`);
  print(`  worker killed at ${killedAt.toFixed(2)} s; health: ${statuses.map((s) => `${s.status} at ${s.at.toFixed(2)} s`).join(", ")}`);
  const notServing = statuses.find((s) => s.status === "NOT_SERVING");
  const serving = notServing && statuses.find((s) => s.status === "SERVING" && s.at > notServing.at);
  if (notServing) print(`  NOT_SERVING for ${((serving?.at ?? NaN) - notServing.at).toFixed(2)} s`);
  print(`  crash (first failed answer) at ${crashedAt.toFixed(2)} s; first slice answered after it: ${(firstOkAfter - crashedAt).toFixed(2)} s later`);
  print(
    `  throughput: ${rate(5, killedAt).toFixed(2)} slices/s before (5 s to the kill), ${rate(killedAt, killedAt + 5).toFixed(2)} in the 5 s after, ` +
      `${rate(killedAt + 10, seconds).toFixed(2)} from 10 s after to the end`,
  );
  watch.cancel();
  health.close();
  client.close();
  await server.close();
}

const [what, ...rest] = process.argv.slice(2);
if (what === "memory") await memory(rest);
else if (what === "kill") {
  const [seconds = 60, faultAt = 20, ...workers] = rest.map(Number);
  for (const count of workers.length > 0 ? workers : [2, 1]) await kill(count, seconds, faultAt);
} else {
  process.stderr.write("usage: npm run bench:edges -- memory [server flags] | kill\n");
  process.exitCode = 2;
}
