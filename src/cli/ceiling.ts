/**
 * `bench --ceiling`: how many slices per second the service itself can move
 * when inference costs nothing, against what its transport alone moves. The
 * service runs in this process on a null model (an ONNX Identity with the
 * manifest of the real one, null-model.ts); a bare grpc-js echo server
 * (echo.ts) runs here too; each level loads one, then the other, from a
 * child process with messages of the same size. For the service it also
 * reports this process's event-loop utilisation, its main thread's share of
 * garbage collection, and the CPU time per slice of each stage.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { create, toBinary } from "@bufbuild/protobuf";
import { directionName, type DirectionName } from "../contract/direction.js";
import { SliceSchema, TranslateRequestSchema } from "../gen/medsynth/v1/translator_pb.js";
import type { RunningServer } from "../server/server.js";
import type { ServerConfig } from "../server/config.js";
import { STAGES, type Stage, type StageTotals } from "../server/stage-times.js";
import { benchImages, runLoadInProcess } from "./bench.js";
import { startEchoServer } from "./echo.js";
import type { LoadOptions, LoadResult } from "./loadgen.js";
import { writeNullModel } from "./null-model.js";
import { textTable } from "./report.js";
import { openService } from "./service.js";

export interface CeilingOptions {
  /** The service's configuration; its models folder holds the real model the null model copies. */
  server: ServerConfig;
  direction: DirectionName;
  /** The real model (default: the direction's default). */
  model?: string;
  concurrency: number[];
  count?: number;
  durationMs?: number;
  warmup: number;
  inFlight: number;
  input?: string;
  syntheticSize?: number;
  log?: (line: string) => void;
}

/** What this process's main thread did while a level ran. */
export interface MainThreadLoad {
  /** Event-loop utilisation, 0–1 (busy ÷ wall). */
  utilisation: number;
  busyMs: number;
  /** Garbage collection pauses of the main thread (perf_hooks "gc" entries). */
  gcMs: number;
  gcCount: number;
  /** gcMs ÷ busyMs. */
  gcShare: number;
}

export interface StageCost {
  stage: Stage;
  /** CPU ms per answered slice, on the main thread and on worker threads. */
  mainMs: number;
  workerMs: number;
}

export interface CeilingLevel {
  concurrency: number;
  echo: LoadResult & { server: MainThreadLoad };
  service: LoadResult & {
    server: MainThreadLoad;
    stages: StageCost[];
    /** Main-thread busy ms per slice outside the stages: gRPC, HTTP/2, handing work to threads, GC. */
    otherMainMs: number;
  };
  /** Service slices/s ÷ echo messages/s. */
  ratio: number;
}

export interface CeilingReport {
  tool: "medsynth bench --ceiling";
  startedAt: string;
  host: { cpus: number; cpuModel: string; node: string; platform: string };
  model: { real: string; null: string; direction: DirectionName; width: number; height: number };
  server: Pick<ServerConfig, "workers" | "maxBatch" | "maxDelayMs" | "window" | "transformWorkers">;
  load: { count: number | null; durationMs: number | null; warmup: number; inFlight: number; slices: string; messageBytes: number };
  levels: CeilingLevel[];
  best: { concurrency: number; throughput: number; echo: number; ratio: number };
}

/** Main-thread utilisation and GC over a stretch of time: start(), then stop(). */
function watchMainThread(): { stop(): MainThreadLoad } {
  let gcMs = 0;
  let gcCount = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      gcCount++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  const start = performance.eventLoopUtilization();
  return {
    stop() {
      const elu = performance.eventLoopUtilization(start);
      observer.disconnect();
      return { utilisation: elu.utilization, busyMs: elu.active, gcMs, gcCount, gcShare: elu.active > 0 ? gcMs / elu.active : 0 };
    },
  };
}

function stageCosts(before: StageTotals, after: StageTotals, slices: number): StageCost[] {
  return STAGES.map((stage) => ({
    stage,
    mainMs: slices > 0 ? (after[stage].main - before[stage].main) / slices : 0,
    workerMs: slices > 0 ? (after[stage].workers - before[stage].workers) / slices : 0,
  }));
}

const answered = (result: LoadResult) => Object.values(result.statuses).reduce((a, b) => a + b, 0);

export async function runCeiling(options: CeilingOptions): Promise<CeilingReport> {
  const log = options.log ?? (() => {});
  const startedAt = new Date().toISOString();
  const { loadModelSpecs } = await import("../inference/registry.js");
  const specs = await loadModelSpecs(options.server.modelsDir);
  const real = options.model
    ? specs.find((s) => s.name === options.model)
    : specs.find((s) => directionName(s.direction) === options.direction && s.isDefault);
  if (!real) {
    throw new Error(`${options.model ? `model "${options.model}"` : `a default ${options.direction} model`} is not in ${options.server.modelsDir}`);
  }
  const nullDir = await mkdtemp(join(tmpdir(), "medsynth-ceiling-"));
  try {
    const nullName = await writeNullModel(real, nullDir);
    const direction = directionName(real.direction);
    const { images, label } = await benchImages(options.input, options.syntheticSize, real.input, direction);
    // The echo sends what the service is sent: one serialized slice request.
    const message = toBinary(TranslateRequestSchema, create(TranslateRequestSchema, { kind: { case: "slice", value: create(SliceSchema, { index: 0n, image: images[0] }) } }));
    const load = (concurrency: number): LoadOptions => ({
      concurrency,
      count: options.count,
      durationMs: options.durationMs,
      warmup: options.warmup,
      inFlight: options.inFlight,
    });

    const echoServer = await startEchoServer();
    const service = await openService(undefined, { ...options.server, modelsDir: nullDir });
    const running: RunningServer = service.running!;
    const levels: CeilingLevel[] = [];
    try {
      for (const concurrency of options.concurrency) {
        log(`ceiling: ${concurrency} stream(s), bare grpc-js echo of ${message.byteLength} B`);
        let watch = watchMainThread();
        const echo = await runLoadInProcess({ kind: "echo", target: echoServer.address, load: load(concurrency), message });
        const echoLoad = watch.stop();

        log(`ceiling: ${concurrency} stream(s), the service on the null model ${nullName}`);
        const before = running.stageTotals();
        watch = watchMainThread();
        const result = await runLoadInProcess({
          kind: "translate",
          target: service.address,
          client: {},
          load: { ...load(concurrency), translate: { direction, model: nullName } },
          images,
        });
        const serviceLoad = watch.stop();
        const stages = stageCosts(before, running.stageTotals(), answered(result));
        const staged = stages.reduce((sum, s) => sum + s.mainMs, 0);
        levels.push({
          concurrency,
          echo: { ...echo, server: echoLoad },
          service: { ...result, server: serviceLoad, stages, otherMainMs: serviceLoad.busyMs / Math.max(1, answered(result)) - staged },
          ratio: echo.throughput > 0 ? result.throughput / echo.throughput : 0,
        });
      }
    } finally {
      await service.close();
      await echoServer.close();
    }
    const best = levels.reduce((a, b) => (b.service.throughput > a.service.throughput ? b : a), levels[0]);
    const s = options.server;
    return {
      tool: "medsynth bench --ceiling",
      startedAt,
      host: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, platform: `${process.platform}-${process.arch}` },
      model: { real: real.name, null: nullName, direction, width: real.input.width, height: real.input.height },
      server: { workers: s.workers, maxBatch: s.maxBatch, maxDelayMs: s.maxDelayMs, window: s.window, transformWorkers: s.transformWorkers },
      load: {
        count: options.count ?? null,
        durationMs: options.durationMs ?? null,
        warmup: options.warmup,
        inFlight: options.inFlight,
        slices: label,
        messageBytes: message.byteLength,
      },
      levels,
      best: { concurrency: best.concurrency, throughput: best.service.throughput, echo: best.echo.throughput, ratio: best.ratio },
    };
  } finally {
    await rm(nullDir, { recursive: true, force: true });
  }
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const pct = (share: number) => `${(100 * share).toFixed(0)}%`;

/** The human-readable summary of a ceiling run: throughput side by side, then where the service's CPU went. */
export function formatCeiling(report: CeilingReport): string {
  const { model, server, load } = report;
  const levels = textTable({
    columns: ["streams", "echo msg/s", "service slices/s", "ratio", "loop util", "GC share", "echo loop util", "echo GC", "mean batch", "statuses"],
    rows: report.levels.map((l) => [
      String(l.concurrency),
      f1(l.echo.throughput),
      f1(l.service.throughput),
      f2(l.ratio),
      pct(l.service.server.utilisation),
      pct(l.service.server.gcShare),
      pct(l.echo.server.utilisation),
      pct(l.echo.server.gcShare),
      f2(l.service.meanBatchSize),
      Object.entries(l.service.statuses).map(([name, n]) => `${name} ${n}`).join(", "),
    ]),
  });
  const best = report.levels.find((l) => l.concurrency === report.best.concurrency)!;
  const stages = textTable({
    columns: ["stage", "main ms", "workers ms"],
    rows: [
      ...best.service.stages.map((s) => [s.stage, f2(s.mainMs), f2(s.workerMs)]),
      ["other main thread", f2(best.service.otherMainMs), "-"],
      ["main thread busy", f2(best.service.server.busyMs / Math.max(1, answered(best.service))), "-"],
    ],
  });
  return [
    `null model ${model.null} (identity, ${model.width}×${model.height}, the manifest of ${model.real}) on ${report.host.cpus} CPUs (${report.host.cpuModel})`,
    `service: this process (${server.workers} inference workers, ${server.transformWorkers} transform workers, max batch ${server.maxBatch}, max delay ${server.maxDelayMs} ms); load from a child process`,
    `load: closed loop, ${load.count !== null ? `${load.count} slices` : `${(load.durationMs ?? 0) / 1000} s`} per level, ${load.inFlight} in flight per stream, ${load.warmup} warm-up; ${load.slices}; echo messages of ${load.messageBytes} B`,
    "",
    levels.trimEnd(),
    "",
    `CPU per slice by stage at ${best.concurrency} stream(s) (ms; main = this process's event loop):`,
    stages.trimEnd(),
    "",
    `ceiling: ${f1(report.best.throughput)} slices/s at ${report.best.concurrency} stream(s) = ${f2(report.best.ratio)}× the bare grpc-js echo (${f1(report.best.echo)} msg/s); main-thread GC ${pct(best.service.server.gcShare)} of busy time`,
  ].join("\n") + "\n";
}
