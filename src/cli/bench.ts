import { mkdir, readFile, writeFile } from "node:fs/promises";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ServerConfig } from "../server/config.js";
import { axialLayout, extractSlice } from "../volume/axial.js";
import { readNifti } from "../imaging/nifti.js";
import type { Raster } from "../imaging/raster.js";
import { benchChart } from "./chart.js";
import type { ClientOptions } from "../client/client.js";
import { directionName, modalitiesOf, type DirectionName } from "../contract/direction.js";
import type { LoadResult } from "./loadgen.js";
import type { LoadJob, LoadMessage } from "./loadgen-process.js";
import type { RawThroughput } from "./raw-throughput.js";
import { textTable, type Table } from "./report.js";
import { openService } from "./service.js";
import { PNG_RESCALE } from "../volume/png-rescale.js";
import { isNiftiPath, listSliceFiles, rawImage, readSliceImage, type ImageInit } from "./slice-files.js";
import { syntheticHead } from "./synthetic-head.js";

export interface BenchOptions {
  /** Server to load; undefined runs the service in this process (embedded). */
  target?: string;
  /** The embedded server's configuration, and the raw measurement's (workers, device, batch size). */
  server: ServerConfig;
  client?: ClientOptions;
  direction: DirectionName;
  /** Default: the direction's default model. */
  model?: string;
  concurrency: number[];
  count?: number;
  durationMs?: number;
  rate?: number;
  warmup: number;
  inFlight: number;
  /** Folder of PNG/DICOM slices or a NIfTI volume to send (cycled); default a synthetic head at the model's input size. */
  input?: string;
  /** Side of the synthetic slice (default the model's input size); large ones show pre/post-processing costs. */
  syntheticSize?: number;
  /** How long to run ONNX Runtime alone; 0 skips it. */
  rawDurationMs: number;
  /** Progress lines (stderr). */
  log?: (line: string) => void;
}

export interface BenchLevel extends LoadResult {
  /** Throughput ÷ raw ONNX Runtime throughput. */
  ratioToRaw: number | null;
  /** Event-loop delay of the server's process during the level, ms (embedded only). */
  eventLoopDelayMs: { p50: number; p99: number; max: number } | null;
}

export interface BenchReport {
  tool: "medsynth bench";
  startedAt: string;
  host: { cpus: number; cpuModel: string; node: string; platform: string };
  target: string;
  model: { name: string; direction: DirectionName; width: number; height: number; executionProvider: string };
  server: Pick<ServerConfig, "workers" | "maxBatch" | "maxDelayMs" | "maxQueue" | "window" | "device" | "transformWorkers"> | null;
  load: {
    mode: "closed loop" | "open loop";
    count: number | null;
    durationMs: number | null;
    rate: number | null;
    warmup: number;
    inFlight: number;
    slices: string;
  };
  raw: RawThroughput | null;
  rawSkipped?: string;
  levels: BenchLevel[];
  best: { concurrency: number; throughput: number; ratioToRaw: number | null };
  /** Added by `npm run bench`: median ms of all five quality metrics on a 256×256 slice, and its share of one slice's inference. */
  qualityMetrics?: { medianMs: number; shareOfInference: number | null; detail: unknown };
}

/** Physical values of the bench's synthetic slice: air and brain (CT, HU), or dark background and bright tissue (MR). */
const SYNTHETIC_HEAD = {
  ct: { outside: -1000, inside: 35, core: 25 },
  mr: { outside: 0, inside: 620, core: 780 },
};

const MAX_INPUT_SLICES = 64;

/** The images a bench sends, cycled: up to 64 from `input`, or one synthetic slice (by default at the model's input size). */
export async function benchImages(
  input: string | undefined,
  syntheticSize: number | undefined,
  modelSize: { width: number; height: number },
  direction: DirectionName,
): Promise<{ images: ImageInit[]; label: string }> {
  const { source } = modalitiesOf(direction);
  if (input === undefined) {
    const [width, height] = [syntheticSize ?? modelSize.width, syntheticSize ?? modelSize.height];
    const raster: Raster = { width, height, data: syntheticHead(width, height, SYNTHETIC_HEAD[source]) };
    return { images: [rawImage(raster)], label: `synthetic ${raster.width}×${raster.height} RAW float32 ${source.toUpperCase()}` };
  }
  if (isNiftiPath(input)) {
    const volume = readNifti(await readFile(input), input);
    const layout = axialLayout(volume.dims, volume.affine);
    const count = Math.min(MAX_INPUT_SLICES, layout.count);
    const images = Array.from({ length: count }, (_, k) => rawImage(extractSlice(volume.data, layout, k)));
    return { images, label: `${count} slices of ${input} (RAW float32)` };
  }
  const files = (await listSliceFiles(input)).slice(0, MAX_INPUT_SLICES);
  const images = await Promise.all(files.map((file) => readSliceImage(file, PNG_RESCALE[source])));
  return { images, label: `${files.length} ${files[0].kind.toUpperCase()} slices of ${input}` };
}

/**
 * One load level in a child process (see loadgen-process.ts), run with this
 * process's V8 heap flags (so a client and the server it is compared with
 * are tuned alike); `cpuMs` is the child's CPU time during it.
 */
export async function runLoadInProcess(job: LoadJob, onMeasuring?: () => void): Promise<{ result: LoadResult; cpuMs: number }> {
  const execArgv = process.execArgv.filter((flag) => HEAP_FLAGS.some((name) => flag.startsWith(`${name}=`)));
  const child = fork(fileURLToPath(new URL("./loadgen-process.js", import.meta.url)), [], { serialization: "advanced", stdio: "inherit", execArgv });
  const exited = once(child, "exit");
  try {
    const reply = await new Promise<Extract<LoadMessage, { kind: "reply" }>>((resolve, reject) => {
      child.on("message", (message: LoadMessage) => (message.kind === "measuring" ? onMeasuring?.() : resolve(message)));
      child.once("error", reject);
      child.once("exit", (code, signal) => reject(new Error(`load generator exited (${signal ?? `code ${code}`}) before it replied`)));
      child.send(job);
    });
    if (!reply.ok) throw new Error(`load generator: ${reply.message}`);
    // It exits by itself once it has replied; a grace period, then it is stopped.
    const grace = setTimeout(() => child.kill(), CHILD_EXIT_GRACE_MS);
    await exited;
    clearTimeout(grace);
    return { result: reply.result, cpuMs: reply.cpuMs };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  }
}

/** V8 heap sizing flags a load generator takes over from this process. */
const HEAP_FLAGS = ["--initial-heap-size", "--max-semi-space-size", "--max-old-space-size"];

const CHILD_EXIT_GRACE_MS = 10_000;

/**
 * One bench run on one model: raw ONNX Runtime throughput in this process
 * (same workers, threads and batch size as the service), then every
 * concurrency level through gRPC, each bounded by count or duration.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const log = options.log ?? (() => {});
  const startedAt = new Date().toISOString();
  const service = await openService(options.target, options.server, options.client);
  try {
    const models = await service.client.listModels();
    const direction = options.direction;
    const model = options.model
      ? models.find((m) => m.name === options.model)
      : models.find((m) => directionName(m.direction) === direction && m.isDefault);
    if (!model) {
      throw new Error(
        `${options.model ? `model "${options.model}"` : `a default ${direction} model`} is not served by ${service.target}; ` +
          `available: ${models.map((m) => m.name).join(", ") || "none"}`,
      );
    }
    const modelDirection = directionName(model.direction);
    const { images, label } = await benchImages(options.input, options.syntheticSize, { width: model.inputWidth, height: model.inputHeight }, modelDirection);

    let raw: RawThroughput | null = null;
    let rawSkipped: string | undefined;
    if (options.target !== undefined && !onThisMachine(options.target)) {
      rawSkipped = `the service runs on ${options.target}; a ratio against this machine's ONNX Runtime would compare two machines`;
    } else if (options.rawDurationMs > 0) {
      // Loaded here: a bench that skips the raw run never needs ONNX Runtime in this process.
      const [{ loadModelSpecs }, { measureRawThroughput }] = await Promise.all([
        import("../inference/registry.js"),
        import("./raw-throughput.js"),
      ]);
      const spec = (await loadModelSpecs(options.server.modelsDir).catch(() => [])).find((s) => s.name === model.name);
      if (spec) {
        log(`raw ONNX Runtime: ${model.name}, batch ${options.server.maxBatch}, ${options.server.workers} workers, ${options.rawDurationMs / 1000} s`);
        raw = await measureRawThroughput(spec, {
          batchSize: options.server.maxBatch,
          durationMs: options.rawDurationMs,
          workers: options.server.workers,
          device: options.server.device,
          deviceId: options.server.deviceId,
        });
      } else {
        rawSkipped = `model ${model.name} is not in ${options.server.modelsDir}`;
      }
    } else {
      rawSkipped = "turned off";
    }

    const levels: BenchLevel[] = [];
    for (const concurrency of options.concurrency) {
      log(`load: ${concurrency} stream(s), ${options.count !== undefined ? `${options.count} slices` : `${(options.durationMs ?? 0) / 1000} s`}${options.rate ? ` at ${options.rate}/s` : ""}`);
      const loop = service.embedded ? monitorEventLoopDelay({ resolution: 10 }) : undefined;
      loop?.enable();
      const { result } = await runLoadInProcess({
        kind: "translate",
        target: service.address,
        client: { tls: options.client?.tls, token: options.client?.token },
        load: {
          concurrency,
          count: options.count,
          durationMs: options.durationMs,
          rate: options.rate,
          warmup: options.warmup,
          inFlight: options.inFlight,
          translate: { direction: modelDirection, model: model.name },
        },
        images,
      });
      loop?.disable();
      levels.push({
        ...result,
        ratioToRaw: raw ? result.throughput / raw.slicesPerSecond : null,
        eventLoopDelayMs: loop
          ? { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 }
          : null,
      });
    }
    const best = levels.reduce((a, b) => (b.throughput > a.throughput ? b : a), levels[0]);
    const s = options.server;
    return {
      tool: "medsynth bench",
      startedAt,
      host: hostInfo(),
      target: service.target,
      model: { name: model.name, direction: modelDirection, width: model.inputWidth, height: model.inputHeight, executionProvider: model.executionProvider },
      server: service.embedded
        ? { workers: s.workers, maxBatch: s.maxBatch, maxDelayMs: s.maxDelayMs, maxQueue: s.maxQueue, window: s.window, device: s.device, transformWorkers: s.transformWorkers }
        : null,
      load: {
        mode: options.rate === undefined ? "closed loop" : "open loop",
        count: options.count ?? null,
        durationMs: options.durationMs ?? null,
        rate: options.rate ?? null,
        warmup: options.warmup,
        inFlight: options.inFlight,
        slices: label,
      },
      raw,
      ...(rawSkipped ? { rawSkipped } : {}),
      levels,
      best: { concurrency: best.concurrency, throughput: best.throughput, ratioToRaw: best.ratioToRaw },
    };
  } finally {
    await service.close();
  }
}

/** The machine a report was made on. */
export function hostInfo(): BenchReport["host"] {
  return { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? "unknown", node: process.version, platform: `${process.platform}-${process.arch}` };
}

const f1 = (n: number) => n.toFixed(1);

function levelsTable(report: BenchReport): Table {
  return {
    columns: ["streams", "slices/s", "vs raw", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean batch", "loop p99 ms", "statuses"],
    rows: report.levels.map((l) => [
      String(l.concurrency),
      f1(l.throughput),
      l.ratioToRaw === null ? "-" : l.ratioToRaw.toFixed(2),
      f1(l.latencyMs.p50),
      f1(l.latencyMs.p90),
      f1(l.latencyMs.p99),
      f1(l.latencyMs.max),
      l.meanBatchSize.toFixed(2),
      l.eventLoopDelayMs ? f1(l.eventLoopDelayMs.p99) : "-",
      Object.entries(l.statuses)
        .map(([name, n]) => `${name} ${n}`)
        .join(", "),
    ]),
  };
}

/** The human-readable summary of a run. */
export function formatBench(report: BenchReport): string {
  const { model, server, raw, load } = report;
  const lines = [
    `model ${model.name} (${model.direction}, ${model.width}×${model.height}, ${model.executionProvider}) on ${report.host.cpus} CPUs (${report.host.cpuModel})`,
    `service: ${report.target}${server ? ` (${server.workers} workers, max batch ${server.maxBatch}, max delay ${server.maxDelayMs} ms)` : ""}`,
    `load: ${load.mode}, ${load.count !== null ? `${load.count} slices` : `${(load.durationMs ?? 0) / 1000} s`} per level` +
      `${load.rate !== null ? ` at ${load.rate} slices/s` : `, ${load.inFlight} in flight per stream`}, ${load.warmup} warm-up; ${load.slices}`,
    raw
      ? `raw ONNX Runtime in-process: ${f1(raw.slicesPerSecond)} slices/s (batch ${raw.batchSize}, ${raw.workers} workers, ${raw.executionProvider}; ${f1(raw.msPerSlice)} ms/slice)`
      : `raw ONNX Runtime: skipped (${report.rawSkipped})`,
    "",
    textTable(levelsTable(report)).trimEnd(),
    "",
    `best: ${f1(report.best.throughput)} slices/s at ${report.best.concurrency} stream(s)` +
      (report.best.ratioToRaw !== null ? `, service/raw ratio ${report.best.ratioToRaw.toFixed(3)}` : ""),
  ];
  return lines.join("\n") + "\n";
}

/** Writes bench.json and bench.svg into `dir`; returns their paths. */
export async function writeBenchFiles(report: BenchReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const json = join(dir, "bench.json");
  const svg = join(dir, "bench.svg");
  await writeFile(json, JSON.stringify(report, null, 2) + "\n");
  const title = `medsynth bench: ${report.model.name} (${report.model.executionProvider}), ${report.load.mode}`;
  await writeFile(
    svg,
    benchChart(
      title,
      report.levels.map((l) => ({ label: `${l.concurrency} stream${l.concurrency > 1 ? "s" : ""}`, latencyCurve: l.latencyCurve, throughput: l.throughput })),
      report.raw?.slicesPerSecond,
    ),
  );
  return [json, svg];
}

/** Whether every address of a target is loopback, i.e. the service shares this machine's CPU or GPU. */
function onThisMachine(target: string): boolean {
  const addresses = target.replace(/^(ipv4|ipv6|dns):(\/\/\/)?/, "").split(",");
  return addresses.every((address) => /^(localhost|127\.\d+\.\d+\.\d+|\[::1\]|::1)(:\d+)?$/.test(address.trim()));
}
