import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import sharp from "sharp";
import type { BenchLevel, BenchReport } from "../src/cli/bench.js";
import type { CeilingReport } from "../src/cli/ceiling.js";
import { STAGES } from "../src/server/stage-times.js";
import { runCli } from "./helpers/cli.js";
import { TINY_MODELS, useTestServer } from "./helpers/service.js";
import { useTempDir } from "./helpers/temp-dir.js";

function assertWellFormedLevel(level: BenchLevel, count: number, maxBatch: number): void {
  const total = Object.values(level.statuses).reduce((a, b) => a + b, 0);
  assert.equal(level.measured, count);
  assert.equal(total, count, JSON.stringify(level.statuses));
  assert.equal(level.statuses.OK, count);
  assert.ok(level.elapsedS > 0 && level.throughput > 0);
  assert.ok(Math.abs(level.throughput - count / level.elapsedS) < 1e-9);
  const { p50, p90, p99, max, mean } = level.latencyMs;
  assert.ok(0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, JSON.stringify(level.latencyMs));
  assert.ok(mean > 0 && mean <= max);
  level.latencyCurve.forEach(([p, ms], n) => {
    if (n > 0) assert.ok(p > level.latencyCurve[n - 1][0] && ms >= level.latencyCurve[n - 1][1]);
  });
  assert.equal(level.latencyCurve.at(-1)![1], max);
  const batched = Object.entries(level.batchSizes);
  assert.equal(batched.reduce((sum, [, n]) => sum + n, 0), count, "every OK answer carried its batch size");
  assert.ok(batched.every(([size]) => Number(size) >= 1 && Number(size) <= maxBatch));
  assert.ok(level.meanBatchSize >= 1 && level.meanBatchSize <= maxBatch);
  assert.ok(level.serverMs.inference > 0 && level.serverMs.total >= level.serverMs.inference);
}

async function assertChart(path: string, levels: number): Promise<void> {
  const svg = readFileSync(path, "utf8");
  assert.equal(svg.match(/<polyline /g)?.length, levels);
  const { info } = await sharp(Buffer.from(svg)).png().toBuffer({ resolveWithObject: true });
  assert.ok(info.width > 0 && info.height > 0);
}

describe("medsynth bench", () => {
  const served = useTestServer({ maxBatch: 8 });
  const tmp = useTempDir("bench");

  it("--count writes a well-formed report and chart, with raw ONNX Runtime throughput and the ratio", async () => {
    const dir = join(tmp.path, "closed");
    const run = await runCli([
      "bench", "--target", served.server.address, "--count", "40", "--concurrency", "1,4", "--warmup", "4",
      "--models-dir", TINY_MODELS, "--workers", "1", "--max-batch", "8", "--raw-duration", "1s", "--out", dir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /streams\s+slices\/s\s+vs raw\s+p50 ms\s+p90 ms\s+p99 ms\s+max ms\s+mean batch\s+loop p99 ms\s+statuses/);
    assert.match(run.stdout, /raw ONNX Runtime in-process: [\d.]+ slices\/s \(batch 8, 1 workers, cpu/);
    assert.match(run.stdout, /service\/raw ratio \d\.\d{3}/);

    const report: BenchReport = JSON.parse(readFileSync(join(dir, "bench.json"), "utf8"));
    assert.equal(report.tool, "medsynth bench");
    assert.equal(report.target, served.server.address);
    assert.deepEqual(report.model, { name: "tiny-mr2ct", direction: "mr2ct", width: 64, height: 64, executionProvider: "cpu" });
    assert.equal(report.server, null);
    assert.equal(report.load.mode, "closed loop");
    assert.equal(report.raw!.model, "tiny-mr2ct");
    assert.equal(report.raw!.batchSize, 8);
    assert.ok(report.raw!.slicesPerSecond > 0 && report.raw!.batches > 0);
    assert.deepEqual(report.levels.map((l) => l.concurrency), [1, 4]);
    for (const level of report.levels) {
      assertWellFormedLevel(level, 40, 8);
      assert.equal(level.eventLoopDelayMs, null, "the server is in another process's hands");
      assert.equal(level.ratioToRaw, level.throughput / report.raw!.slicesPerSecond);
    }
    // One stream with one slice in flight: the server can only ever batch one slice.
    assert.deepEqual(report.levels[0].batchSizes, { "1": 40 });
    const best = report.levels.reduce((a, b) => (b.throughput > a.throughput ? b : a));
    assert.deepEqual(report.best, { concurrency: best.concurrency, throughput: best.throughput, ratioToRaw: best.ratioToRaw });
    await assertChart(join(dir, "bench.svg"), 2);
  });

  it("--rate runs an open loop on the schedule, latency counted from it", async () => {
    const dir = join(tmp.path, "open");
    const run = await runCli([
      "bench", "--target", served.server.address, "--count", "30", "--rate", "40", "--concurrency", "2", "--warmup", "0", "--raw-duration", "0", "--out", dir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report: BenchReport = JSON.parse(readFileSync(join(dir, "bench.json"), "utf8"));
    assert.equal(report.load.mode, "open loop");
    assert.equal(report.load.rate, 40);
    assert.equal(report.raw, null);
    assert.equal(report.rawSkipped, "turned off");
    const [level] = report.levels;
    assertWellFormedLevel(level, 30, 8);
    assert.equal(level.ratioToRaw, null);
    // 30 slices at 40/s leave over 29/40 s: the run cannot be shorter, nor (answers keeping up) much faster than the rate.
    assert.ok(level.elapsedS >= 29 / 40, `elapsed ${level.elapsedS}`);
    assert.ok(level.throughput <= 40 * 1.05, `throughput ${level.throughput}`);
  });

  it("--ceiling runs the null model and a bare grpc-js echo side by side, with utilisation, GC, CPU, RSS and per-stage times", async () => {
    const dir = join(tmp.path, "ceiling");
    const run = await runCli([
      "bench", "--ceiling", "--models-dir", TINY_MODELS, "--workers", "1", "--count", "40", "--concurrency", "1,3", "--in-flight", "2", "--warmup", "6", "--rounds", "3", "--out", dir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /null model tiny-mr2ct-null \(identity, 64×64, the manifest of tiny-mr2ct\)/);
    assert.match(run.stdout, /streams\s+echo msg\/s\s+slices\/s\s+ratio\s+loop util\s+GC share/);
    assert.match(run.stdout, /^ceiling: [\d.]+ slices\/s at \d stream\(s\) = \d\.\d\d× the bare grpc-js echo/m);
    assert.match(run.stdout, /^  3 stream\(s\): \d\.\d\d, \d\.\d\d, \d\.\d\d \(echo /m);
    for (const stage of [...STAGES, "other main thread"]) assert.match(run.stdout, new RegExp(`^${stage}\\s+-?\\d+\\.\\d\\d`, "m"));

    const report: CeilingReport = JSON.parse(readFileSync(join(dir, "ceiling.json"), "utf8"));
    assert.equal(report.tool, "medsynth bench --ceiling");
    assert.deepEqual([report.model.real, report.model.null, report.model.width], ["tiny-mr2ct", "tiny-mr2ct-null", 64]);
    // The echo sends what the service is sent: one serialized 64×64 float32 slice request.
    assert.ok(report.load.messageBytes > 64 * 64 * 4 && report.load.messageBytes < 64 * 64 * 4 + 64);
    assert.deepEqual(report.levels.map((l) => l.concurrency), [1, 3]);
    for (const level of report.levels) {
      for (const side of [level.echo, level.service]) {
        assert.equal(side.measured, 40);
        assert.deepEqual(side.statuses, { OK: 40 });
        assert.ok(side.throughput > 0 && side.clientCpuMsPerMessage > 0 && side.server.cpuMsPerMessage > 0);
        assert.ok(side.server.utilisation > 0 && side.server.utilisation <= 1 && side.server.gcShare >= 0 && side.server.gcShare <= 1);
      }
      assert.equal(level.ratio, level.service.throughput / level.echo.throughput);
      // Three rounds each: the level is its median round.
      assert.equal(level.rounds.length, 3);
      const ratios = level.rounds.map((r) => r.ratio).sort((a, b) => a - b);
      assert.equal(level.ratio, ratios[1]);
      assert.ok(level.rounds.some((r) => r.echo === level.echo.throughput && r.service === level.service.throughput));
      assert.deepEqual(level.service.stages.map((s) => s.stage), [...STAGES]);
      const cost = Object.fromEntries(level.service.stages.map((s) => [s.stage, s]));
      // Decoding through encoding run on the transform workers, inference on the ORT workers, the codec of the messages here.
      for (const stage of ["decode", "normalise", "inference", "denormalise", "encode"]) assert.ok(cost[stage].workerMs > 0 && cost[stage].mainMs === 0, stage);
      assert.ok(cost.protobuf.mainMs > 0 && cost.queue.mainMs > 0);
      assert.deepEqual([cost.metrics.mainMs, cost.metrics.workerMs], [0, 0], "no reference, no metrics");
      assert.ok(level.service.rss.samples.length > 0 && level.service.rss.minMb > 0 && level.service.rss.maxMb >= level.service.rss.minMb);
      assert.ok(level.service.meanBatchSize >= 1);
    }
    assert.equal(report.best.throughput, Math.max(...report.levels.map((l) => l.service.throughput)));
  });

  it("--embedded runs the service in-process and reports its event-loop delay; --size sets the synthetic slice", async () => {
    const dir = join(tmp.path, "embedded");
    const run = await runCli([
      "bench", "--embedded", "--models-dir", TINY_MODELS, "--workers", "1", "--count", "12", "--concurrency", "3",
      "--direction", "ct2mr", "--raw-duration", "0", "--size", "160", "--out", dir,
    ]);
    assert.equal(run.code, 0, run.stderr);
    const report: BenchReport = JSON.parse(readFileSync(join(dir, "bench.json"), "utf8"));
    assert.equal(report.target, "embedded");
    assert.equal(report.model.name, "tiny-ct2mr");
    assert.match(report.load.slices, /synthetic 160×160 /, "sent at 160², resized to the model's 64² by the service");
    assert.equal(report.server!.workers, 1);
    const [level] = report.levels;
    assertWellFormedLevel(level, 12, report.server!.maxBatch);
    assert.ok(level.eventLoopDelayMs && level.eventLoopDelayMs.p99 > 0 && level.eventLoopDelayMs.p99 <= level.eventLoopDelayMs.max);
  });
});
