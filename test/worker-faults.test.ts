// Inference workers that die under a real server (tiny models, loopback):
// by exiting, by an uncaught error, or by hanging past their batch
// deadline. The worker is the real one (test/helpers/faulty-ort-worker.ts
// wraps it), told to fail its next batch.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { VirtualTimeScheduler } from "rxjs";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus as ServingStatus, type HealthCheckResponse } from "../src/gen/grpc/health/v1/health_pb.js";
import { Direction, type TranslateResponse } from "../src/gen/medsynth/v1/translator_pb.js";
import { armFault, FAULTY_ORT_WORKER } from "./helpers/faulty-ort-worker.js";
import { freePort } from "./helpers/net.js";
import { collect, healthClient, mrImage, options, recordingLogger, scrape, sliceRequest, startTestServer, translatorClient } from "./helpers/service.js";
import { until } from "./helpers/until.js";
import { advanceTo } from "./helpers/virtual-time.js";

/** Every status a Watch of the Translator service reports, as it comes. */
function watchHealth(address: string): { statuses: ServingStatus[]; close(): void } {
  const client = healthClient(address);
  const statuses: ServingStatus[] = [];
  const call = client.watch(create(HealthCheckRequestSchema, { service: "medsynth.v1.Translator" }));
  call.on("data", (response: HealthCheckResponse) => statuses.push(response.status));
  call.on("error", () => undefined);
  return {
    statuses,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** Sends `count` MR slices on a new stream and collects every answer. */
function stream(client: ReturnType<typeof translatorClient>, count: number) {
  const call = client.translate();
  const done = collect(call);
  call.write(options(Direction.MR_TO_CT));
  for (let i = 0; i < count; i++) call.write(sliceRequest(i, mrImage(64, 64)));
  call.end();
  return done;
}

const indices = (responses: TranslateResponse[]) => responses.map((r) => Number(r.kind.value!.index));
const failures = (responses: TranslateResponse[]) =>
  responses.flatMap((r) => (r.kind.case === "error" ? [{ code: r.kind.value.code, message: r.kind.value.message }] : []));

describe("inference workers that die", () => {
  it("exits mid-batch under load: its slices are UNAVAILABLE, every slice is answered, health stays SERVING with one of two alive, the crash is counted and logged", async () => {
    const metricsPort = await freePort();
    const { log, lines } = recordingLogger();
    const server = await startTestServer({ workers: 2, maxBatch: 4, maxDelayMs: 2, metricsPort }, { log, inferenceWorker: FAULTY_ORT_WORKER });
    const client = translatorClient(server.address);
    const health = watchHealth(server.address);
    try {
      await until(() => health.statuses.includes(ServingStatus.SERVING), "the first health status");
      await armFault({ kind: "exit" }, 2);
      const outcomes = await Promise.all(Array.from({ length: 4 }, () => stream(client, 12)));
      for (const { responses, error } of outcomes) {
        assert.equal(error, undefined);
        assert.deepEqual(indices(responses), [...Array(12).keys()], "one answer per slice, in order");
      }
      const failed = outcomes.flatMap(({ responses }) => failures(responses));
      assert.ok(failed.length >= 1 && failed.length <= 4, `one batch (1 to 4 slices) failed, not ${failed.length}`);
      for (const failure of failed) {
        assert.equal(failure.code, status.UNAVAILABLE);
        assert.equal(failure.message, "OrtWorkerPool worker died: exit code 1; a new worker is starting: send the slice again");
      }
      assert.deepEqual(health.statuses, [ServingStatus.SERVING], "one worker stayed alive throughout");
      assert.equal(await scrape(metricsPort, "medsynth_worker_crashes_total", { pool: "OrtWorkerPool", kind: "exit" }), 1);
      assert.equal(await scrape(metricsPort, "medsynth_slices_total", { status: "UNAVAILABLE" }), failed.length);
      const logged = lines.filter((l) => l.msg === "worker crashed, replacing it");
      assert.deepEqual(logged.map((l) => [l.level, l.pool, l.kind, l.detail]), [["error", "OrtWorkerPool", "exit", "exit code 1"]]);
      await until(() => lines.some((l) => l.msg === "inference worker ready" && l.ready === 2), "the successor to be ready");
      assert.equal(await scrape(metricsPort, "medsynth_inference_workers_ready"), 2);
      const after = await stream(client, 6);
      assert.deepEqual(failures(after.responses), [], "the successor serves");
    } finally {
      health.close();
      client.close();
      await server.close();
    }
  });

  it("dies by an uncaught error with no other worker: health is NOT_SERVING until its warmed-up successor is ready", async () => {
    const server = await startTestServer({ workers: 1, maxDelayMs: 0 }, { inferenceWorker: FAULTY_ORT_WORKER });
    const client = translatorClient(server.address);
    const health = watchHealth(server.address);
    try {
      await until(() => health.statuses.length === 1, "the first health status");
      await armFault({ kind: "error" }, 1);
      const { responses } = await stream(client, 1);
      assert.deepEqual(failures(responses), [
        { code: status.UNAVAILABLE, message: "OrtWorkerPool worker died: injected fault: an uncaught error in the inference worker; a new worker is starting: send the slice again" },
      ]);
      await until(() => health.statuses.length === 3, () => `health to recover (${health.statuses.join(", ")})`);
      assert.deepEqual(health.statuses, [ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
      assert.deepEqual(failures((await stream(client, 3)).responses), []);
    } finally {
      health.close();
      client.close();
      await server.close();
    }
  });

  it("hangs past its batch deadline: the batch fails at the deadline, not before, and a successor takes over (virtual time)", async () => {
    const scheduler = new VirtualTimeScheduler();
    const deadlineMs = 1000;
    const server = await startTestServer(
      { workers: 1, maxDelayMs: 0, batchDeadlineFactor: 1, batchDeadlineMinMs: deadlineMs },
      { scheduler, inferenceWorker: FAULTY_ORT_WORKER },
    );
    const client = translatorClient(server.address);
    const health = watchHealth(server.address);
    try {
      await until(() => health.statuses.length === 1, "the first health status");
      // Blocked for 3 s of real time, as a stuck native call would be: the deadline passes first, in virtual time.
      const { failing } = await armFault({ kind: "hang", ms: 3000 }, 1);
      const start = scheduler.now();
      const answered = stream(client, 1);
      await failing;
      advanceTo(scheduler, start + deadlineMs - 1);
      assert.deepEqual(health.statuses, [ServingStatus.SERVING], "not before the deadline");
      advanceTo(scheduler, start + deadlineMs);
      const { responses } = await answered;
      assert.deepEqual(failures(responses), [
        { code: status.UNAVAILABLE, message: `OrtWorkerPool worker hung: no answer within ${deadlineMs} ms; a new worker is starting: send the slice again` },
      ]);
      await until(() => health.statuses.length === 3, () => `health to recover (${health.statuses.join(", ")})`);
      assert.deepEqual(health.statuses, [ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
      assert.deepEqual(failures((await stream(client, 2)).responses), [], "the successor serves");
    } finally {
      health.close();
      client.close();
      await server.close();
    }
  });
});
