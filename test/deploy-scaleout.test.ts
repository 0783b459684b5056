// Scale-out on one machine: two server processes (the compiled entry point the
// image runs) on loopback and one client with round-robin. Streams land on
// both (each server's own /metrics says so); when one server dies mid-run,
// every slice is either answered or its stream fails with a status the caller
// sees, and the next streams go to the survivor.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, isSliceError, type SliceInit, type TranslatorClient } from "../src/client/client.js";
import { TranslatorError } from "../src/client/errors.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import { freePort } from "./helpers/net.js";
import { mrImage, TINY_MODELS } from "./helpers/service.js";
import { until } from "./helpers/until.js";

interface ServerProcess {
  address: string;
  metricsPort: number;
  child: ChildProcess;
  stderr: string[];
}

async function startServerProcess(): Promise<ServerProcess> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const args = ["--host", "127.0.0.1", "--port", `${port}`, "--metrics-port", `${metricsPort}`];
  const child = spawn(process.execPath, ["dist/src/server/main.js", ...args, "--models-dir", TINY_MODELS, "--workers", "1", "--log-level", "warn"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const stderr: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const address = `127.0.0.1:${port}`;
  await until(
    async () => {
      assert.equal(child.exitCode, null, `server ${address} exited: ${stderr.join("")}`);
      return (await checkHealth(address, { timeoutMs: 1000 }).catch(() => undefined)) === ServingStatus.SERVING;
    },
    () => `server ${address} to be SERVING: ${stderr.join("")}`,
    60_000,
  );
  return { address, metricsPort, child, stderr };
}

/** Translate streams the server has opened, from its Prometheus endpoint. */
async function streamsOpened(server: ServerProcess): Promise<number> {
  const exposition = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  return exposition
    .split("\n")
    .filter((line) => line.startsWith("medsynth_streams_total"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

/** `count` slices, one every `gapMs`, so a stream stays open a while. */
async function* slices(count: number, gapMs: number): AsyncGenerator<SliceInit> {
  for (let index = 0; index < count; index++) {
    yield { index: BigInt(index), image: mrImage() };
    if (gapMs > 0) await sleep(gapMs);
  }
}

/**
 * Runs one stream; its answered indices (also visible in `answered` while it
 * runs), and the status it failed with, if it failed.
 */
async function runStream(
  client: TranslatorClient,
  count: number,
  gapMs = 0,
  answered: number[] = [],
): Promise<{ answered: number[]; failed?: TranslatorError }> {
  try {
    for await (const answer of client.translate({ direction: "mr2ct" }, slices(count, gapMs))) {
      assert.ok(!isSliceError(answer), `slice ${answer.index} failed: ${isSliceError(answer) ? answer.message : ""}`);
      answered.push(Number(answer.index));
    }
    return { answered };
  } catch (error) {
    assert.ok(error instanceof TranslatorError, `a failed stream carries a gRPC status (got ${String(error)})`);
    return { answered, failed: error };
  }
}

describe("two servers behind one round-robin client", { timeout: 180_000 }, () => {
  let servers: ServerProcess[] = [];
  let client: TranslatorClient;

  before(async () => {
    servers = await Promise.all([startServerProcess(), startServerProcess()]);
    client = createClient(servers.map((s) => s.address));
    await client.waitForReady(10_000);
  });
  after(async () => {
    client?.close();
    for (const { child } of servers) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await once(child, "exit");
      }
    }
  });

  it("spreads streams over both servers", async () => {
    // Round robin picks among connected servers; the second may connect a moment later.
    for (let stream = 0; stream < 30; stream++) {
      const { answered, failed } = await runStream(client, 2);
      assert.equal(failed, undefined);
      assert.deepEqual(answered, [0, 1]);
      const opened = await Promise.all(servers.map(streamsOpened));
      if (stream >= 3 && opened.every((n) => n > 0)) return;
    }
    assert.fail(`streams did not reach both servers: ${(await Promise.all(servers.map(streamsOpened))).join(" / ")}`);
  });

  it("loses no slice silently when a server dies mid-run, and sends the next streams to the survivor", async () => {
    const [survivor, victim] = servers;
    const count = 20;
    const progress = Array.from({ length: 6 }, (): number[] => []);
    const running = progress.map((answered) => runStream(client, count, 25, answered));
    // Kill when every stream is under way (answers have come back) and none is done.
    await until(
      () => progress.every((answered) => answered.length >= 2),
      () => `streams under way (${progress.map((a) => a.length).join(", ")} answers)`,
      30_000,
    );
    victim.child.kill("SIGKILL");
    await once(victim.child, "exit");

    const outcomes = await Promise.all(running);
    for (const { answered, failed } of outcomes) {
      // Answers come in order; a stream that ends without a status answered every slice.
      assert.deepEqual(answered, [...Array(answered.length).keys()]);
      if (!failed) assert.equal(answered.length, count, "a stream ended OK with slices unanswered");
    }
    const failed = outcomes.filter((o) => o.failed);
    assert.ok(failed.length > 0, "streams on the killed server fail with a status the caller sees");
    assert.ok(failed.every((o) => o.answered.length >= 2 && o.answered.length < count), "they failed mid-run");

    const before = await streamsOpened(survivor);
    for (let stream = 0; stream < 4; stream++) {
      const { answered, failed } = await runStream(client, 3);
      assert.equal(failed, undefined, `after the kill: ${failed?.message}`);
      assert.deepEqual(answered, [0, 1, 2]);
    }
    assert.equal(await streamsOpened(survivor), before + 4, "the next streams went to the survivor");
  });
});
