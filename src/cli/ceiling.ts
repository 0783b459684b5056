/**
 * `bench --ceiling`: how many slices per second the service itself can move
 * when inference costs nothing, against what its transport alone moves. The
 * service runs in this process on a null model (an ONNX Identity with the
 * manifest of the real one, null-model.ts); a bare grpc-js echo server
 * (echo.ts) runs here too; each level loads one, then the other, from a
 * child process with messages of the same size, `rounds` times, alternately,
 * so that each ratio compares two neighbouring measurements of a shared
 * machine and the median ratio says what the noise leaves. For the service
 * it also reports this process's event-loop utilisation, its main thread's share of
 * garbage collection, and the CPU time per slice of each stage.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PerformanceObserver, performance } from "node:perf_hooks";
import { create, toBinary } from "@bufbuild/protobuf";
import { asyncScheduler, interval, type SchedulerLike } from "rxjs";
import { directionName, type DirectionName } from "../contract/direction.js";
import { SliceSchema, TranslateRequestSchema } from "../gen/medsynth/v1/translator_pb.js";
import type { RunningServer } from "../server/server.js";
import type { ServerConfig } from "../server/config.js";
import { STAGES, type Stage, type StageTotals } from "../server/stage-times.js";
import { benchImages, hostInfo, runLoadInProcess, type BenchReport } from "./bench.js";
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
  /** Echo-then-service measurements per level (default DEFAULT_CEILING_ROUNDS); the level reports the median ratio's. */
  rounds?: number;
  input?: string;
  syntheticSize?: number;
  log?: (line: string) => void;
  /** Clock of the RSS sampling (default asyncScheduler). */
  scheduler?: SchedulerLike;
}

/** What the server's process did while a level ran. */
export interface ServerLoad {
  /** Event-loop utilisation of its main thread, 0–1 (busy ÷ wall). */
  utilisation: number;
  busyMs: number;
  /** Garbage collection pauses of the main thread (perf_hooks "gc" entries). */
  gcMs: number;
  gcCount: number;
  /** gcMs ÷ busyMs. */
  gcShare: number;
  /** CPU time (user + system) of the whole process, all threads, per answered message. */
  cpuMsPerMessage: number;
}

/** The server process's resident set size while the service was measured (after the load's warm-up). */
export interface RssCurve {
  /** [ms since the level started, MiB], every RSS_SAMPLE_MS. */
  samples: [number, number][];
  minMb: number;
  maxMb: number;
  meanMb: number;
  /** The largest distance from the mean, as a share of it. */
  spread: number;
}

const RSS_SAMPLE_MS = 100;
/** Three adjacent pairs: the median outlives one round that another load on the machine spoilt. */
export const DEFAULT_CEILING_ROUNDS = 3;

/** Samples this process's RSS from now on; only samples after measuring() count. */
function sampleRss(scheduler: SchedulerLike): { measuring(): void; stop(): RssCurve } {
  const started = performance.now();
  const samples: [number, number][] = [];
  let counting = false;
  const sample = () => samples.push([Math.round(performance.now() - started), process.memoryUsage.rss() / 2 ** 20]);
  const sampling = interval(RSS_SAMPLE_MS, scheduler).subscribe(() => {
    if (counting) sample();
  });
  return {
    measuring: () => {
      counting = true;
      sample();
    },
    stop() {
      sampling.unsubscribe();
      if (counting) sample();
      const values = samples.map(([, mb]) => mb);
      const meanMb = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
      const minMb = Math.min(...values);
      const maxMb = Math.max(...values);
      return { samples, minMb, maxMb, meanMb, spread: values.length ? Math.max(maxMb - meanMb, meanMb - minMb) / meanMb : 0 };
    },
  };
}

/** A level's load and what the load generator's process spent. */
type Measured = LoadResult & {
  server: ServerLoad;
  /** The load generator's CPU time (user + system) per answered message. */
  clientCpuMsPerMessage: number;
};

export interface StageCost {
  stage: Stage;
  /** CPU ms per answered slice, on the main thread and on worker threads. */
  mainMs: number;
  workerMs: number;
}

export interface CeilingLevel {
  concurrency: number;
  /** Every round's throughputs and ratio, in the order run. */
  rounds: { echo: number; service: number; ratio: number }[];
  /** The round of the median ratio (the lower of the middle two for an even count). */
  echo: Measured;
  service: Measured & {
    rss: RssCurve;
    stages: StageCost[];
    /** Main-thread busy ms per slice outside the stages: gRPC, HTTP/2, handing work to threads, GC. */
    otherMainMs: number;
  };
  /** Service slices/s ÷ echo messages/s, of that round. */
  ratio: number;
}

export interface CeilingReport {
  tool: "medsynth bench --ceiling";
  startedAt: string;
  host: BenchReport["host"];
  /** V8 flags of this process and the load generators (heap sizing changes what GC costs). */
  nodeFlags: string[];
  model: { real: string; null: string; direction: DirectionName; width: number; height: number };
  server: Pick<ServerConfig, "workers" | "maxBatch" | "maxDelayMs" | "window" | "transformWorkers">;
  load: { count: number | null; durationMs: number | null; warmup: number; inFlight: number; rounds: number; slices: string; messageBytes: number };
  levels: CeilingLevel[];
  best: { concurrency: number; throughput: number; echo: number; ratio: number };
}

/**
 * This process's main-thread utilisation, GC and CPU time from measuring()
 * (the load's warm-up over) until stop(), given the messages answered meanwhile:
 * the load counts only those, so the warm-up's cost stays out too.
 */
function watchServer(): { measuring(): void; stop(answeredMessages: number): ServerLoad } {
  let gcMs = 0;
  let gcCount = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      gcCount++;
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  let start = performance.eventLoopUtilization();
  let cpu = process.cpuUsage();
  return {
    measuring() {
      gcMs = 0;
      gcCount = 0;
      start = performance.eventLoopUtilization();
      cpu = process.cpuUsage();
    },
    stop(answeredMessages) {
      const elu = performance.eventLoopUtilization(start);
      const { user, system } = process.cpuUsage(cpu);
      observer.disconnect();
      return {
        utilisation: elu.utilization,
        busyMs: elu.active,
        gcMs,
        gcCount,
        gcShare: elu.active > 0 ? gcMs / elu.active : 0,
        cpuMsPerMessage: (user + system) / 1000 / Math.max(1, answeredMessages),
      };
    },
  };
}

function measured({ result, cpuMs }: { result: LoadResult; cpuMs: number }, server: ServerLoad): Measured {
  return { ...result, server, clientCpuMsPerMessage: cpuMs / Math.max(1, result.measured) };
}

function stageCosts(before: StageTotals, after: StageTotals, slices: number): StageCost[] {
  return STAGES.map((stage) => ({
    stage,
    mainMs: slices > 0 ? (after[stage].main - before[stage].main) / slices : 0,
    workerMs: slices > 0 ? (after[stage].workers - before[stage].workers) / slices : 0,
  }));
}

export async function runCeiling(options: CeilingOptions): Promise<CeilingReport> {
  const log = options.log ?? (() => {});
  const scheduler = options.scheduler ?? asyncScheduler;
  const startedAt = new Date().toISOString();
  const { loadModelSpecs } = await import("../inference/registry.js");
  const specs = await loadModelSpecs(options.server.modelsDir);
  const real = options.model
    ? specs.find((s) => s.name === options.model)
    : specs.find((s) => directionName(s.direction) === options.direction && s.isDefault);
  if (!real) {
    throw new Error(`${options.model ? `model "${options.model}"` : `a default ${options.direction} model`} is not in ${options.server.modelsDir}`);
  }
  const rounds = options.rounds ?? DEFAULT_CEILING_ROUNDS;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a whole number ≥ 1, got ${rounds}`);
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
    const embedded = await openService(undefined, { ...options.server, modelsDir: nullDir });
    const running: RunningServer = embedded.running!;
    /** One round at a level: the echo, then the service, under the same load. */
    const round = async (concurrency: number): Promise<Omit<CeilingLevel, "rounds">> => {
      log(`ceiling: ${concurrency} stream(s), bare grpc-js echo of ${message.byteLength} B`);
      let watch = watchServer();
      const echo = await runLoadInProcess({ kind: "echo", target: echoServer.address, load: load(concurrency), message }, watch.measuring);
      const echoMeasured = measured(echo, watch.stop(echo.result.measured));

      log(`ceiling: ${concurrency} stream(s), the service on the null model ${nullName}`);
      // Stage totals, like the watch, count from the warm-up's end: they are divided by measured slices.
      let before = running.stageTotals();
      watch = watchServer();
      const rss = sampleRss(scheduler);
      const translate = await runLoadInProcess(
        {
          kind: "translate",
          target: embedded.address,
          client: {},
          load: { ...load(concurrency), translate: { direction, model: nullName } },
          images,
        },
        () => {
          before = running.stageTotals();
          rss.measuring();
          watch.measuring();
        },
      );
      const service = { ...measured(translate, watch.stop(translate.result.measured)), rss: rss.stop() };
      const slices = service.measured;
      const stages = stageCosts(before, running.stageTotals(), slices);
      const staged = stages.reduce((sum, s) => sum + s.mainMs, 0);
      return {
        concurrency,
        echo: echoMeasured,
        service: { ...service, stages, otherMainMs: service.server.busyMs / Math.max(1, slices) - staged },
        ratio: echoMeasured.throughput > 0 ? service.throughput / echoMeasured.throughput : 0,
      };
    };
    const levels: CeilingLevel[] = [];
    try {
      for (const concurrency of options.concurrency) {
        const runs: Omit<CeilingLevel, "rounds">[] = [];
        for (let r = 0; r < rounds; r++) runs.push(await round(concurrency));
        const median = [...runs].sort((a, b) => a.ratio - b.ratio)[Math.floor((runs.length - 1) / 2)];
        levels.push({ ...median, rounds: runs.map((r) => ({ echo: r.echo.throughput, service: r.service.throughput, ratio: r.ratio })) });
      }
    } finally {
      await embedded.close();
      await echoServer.close();
    }
    const best = levels.reduce((a, b) => (b.service.throughput > a.service.throughput ? b : a), levels[0]);
    const { workers, maxBatch, maxDelayMs, window, transformWorkers } = options.server;
    return {
      tool: "medsynth bench --ceiling",
      host: hostInfo(),
      nodeFlags: process.execArgv,
      startedAt,
      model: { real: real.name, null: nullName, direction, width: real.input.width, height: real.input.height },
      server: { workers, maxBatch, maxDelayMs, window, transformWorkers },
      load: {
        count: options.count ?? null,
        durationMs: options.durationMs ?? null,
        warmup: options.warmup,
        inFlight: options.inFlight,
        rounds,
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
    columns: ["streams", "echo msg/s", "slices/s", "ratio", "loop util", "GC share", "server CPU ms", "client CPU ms", "echo: loop util", "GC", "server CPU ms", "client CPU ms", "mean batch", "statuses"],
    rows: report.levels.map((l) => [
      String(l.concurrency),
      f1(l.echo.throughput),
      f1(l.service.throughput),
      f2(l.ratio),
      pct(l.service.server.utilisation),
      pct(l.service.server.gcShare),
      f2(l.service.server.cpuMsPerMessage),
      f2(l.service.clientCpuMsPerMessage),
      pct(l.echo.server.utilisation),
      pct(l.echo.server.gcShare),
      f2(l.echo.server.cpuMsPerMessage),
      f2(l.echo.clientCpuMsPerMessage),
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
      ["main thread busy", f2(best.service.server.busyMs / Math.max(1, best.service.measured)), "-"],
    ],
  });
  const byRound = report.levels.some((l) => l.rounds.length > 1)
    ? [
        "",
        `ratio by round (echo first, then the service; each level's row above is its median round):`,
        ...report.levels.map((l) => `  ${l.concurrency} stream(s): ${l.rounds.map((r) => f2(r.ratio)).join(", ")} (echo ${l.rounds.map((r) => f1(r.echo)).join(", ")} msg/s)`),
      ]
    : [];
  return [
    `null model ${model.null} (identity, ${model.width}×${model.height}, the manifest of ${model.real}) on ${report.host.cpus} CPUs (${report.host.cpuModel})`,
    `node flags: ${report.nodeFlags.join(" ") || "none"} (the load generators take over the heap flags)`,
    `service: this process (${server.workers} inference workers, ${server.transformWorkers} transform workers, max batch ${server.maxBatch}, max delay ${server.maxDelayMs} ms); load from a child process`,
    `load: closed loop, ${load.count !== null ? `${load.count} slices` : `${(load.durationMs ?? 0) / 1000} s`} per level and round, ${load.inFlight} in flight per stream, ${load.warmup} warm-up, ${load.rounds} round(s); ${load.slices}; echo messages of ${load.messageBytes} B`,
    "",
    levels.trimEnd(),
    ...byRound,
    "",
    `CPU per slice by stage at ${best.concurrency} stream(s) (ms; main = this process's event loop):`,
    stages.trimEnd(),
    "",
    `server RSS after warm-up: ${report.levels.map((l) => `${f1(l.service.rss.minMb)}–${f1(l.service.rss.maxMb)} MiB (±${pct(l.service.rss.spread)})`).join(" / ")} at ${report.levels.map((l) => l.concurrency).join(" / ")} stream(s)`,
    `ceiling: ${f1(report.best.throughput)} slices/s at ${report.best.concurrency} stream(s) = ${f2(report.best.ratio)}× the bare grpc-js echo (${f1(report.best.echo)} msg/s); main-thread GC ${pct(best.service.server.gcShare)} of busy time`,
  ].join("\n") + "\n";
}
