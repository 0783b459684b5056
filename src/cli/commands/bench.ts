import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { formatBench, runBench, writeBenchFiles, type BenchOptions, type BenchReport } from "../bench.js";
import { DEFAULT_CEILING_ROUNDS, formatCeiling, runCeiling, type CeilingOptions, type CeilingReport } from "../ceiling.js";
import {
  oneOf,
  parseCommand,
  parseDuration,
  parseInteger,
  parseIntegerList,
  parsePositiveNumber,
  UsageError,
  type CommandSpec,
  type OptionSpec,
  type ParsedValues,
} from "../args.js";
import type { DirectionName } from "../../contract/direction.js";
import { CONNECTION_OPTIONS, clientOptionsFrom, embeddedConfig } from "./common.js";

/** Flags passed to the embedded server (and used for the raw measurement) as `medsynth serve` reads them. */
const SERVER_FLAGS = ["workers", "max-batch", "max-delay-ms", "max-queue", "window", "device", "transform-workers"] as const;

export const benchSpec = {
  name: "bench",
  summary: "Load-test the service with concurrent Translate streams and compare with raw ONNX Runtime throughput.",
  usage: "medsynth bench [--target host:port | --embedded] [--concurrency 1,4,16] [--duration 30s | --count N] [--rate R] [options]",
  details: [
    "Each concurrency level opens that many Translate streams. Closed loop (default): each stream keeps",
    "--in-flight slices outstanding. Open loop (--rate): slices leave on a fixed schedule and latency counts",
    "from the scheduled time, so queueing shows. Latency is recorded in an HDR histogram. Before the",
    "levels, the same model runs in ONNX Runtime alone in this process (same workers and batch size as",
    "the service) for the service/raw ratio. Writes bench.json and bench.svg to --out. Only the given",
    "target is contacted; without one the service runs in this process.",
  ].join("\n"),
  options: {
    embedded: { type: "boolean", description: "run the service in this process (the default without --target)" },
    ceiling: {
      type: "boolean",
      description: "the service's own ceiling: a null model (identity) in this process against a bare grpc-js echo, side by side",
    },
    direction: { type: "string", short: "d", placeholder: "mr2ct|ct2mr", description: "direction whose default model is loaded", default: "mr2ct" },
    model: { type: "string", short: "m", placeholder: "name", description: "model to load (default: the direction's default)" },
    concurrency: { type: "string", short: "c", placeholder: "list", description: "streams per level", default: "1,4,16" },
    duration: { type: "string", placeholder: "time", description: "length of each level, e.g. 30s (default 30s without --count)" },
    count: { type: "string", short: "n", placeholder: "N", description: "slices per level instead of a duration" },
    rate: { type: "string", placeholder: "R", description: "open loop: slices per second over all streams" },
    warmup: { type: "string", placeholder: "N", description: "slices per level before measuring", default: "8" },
    "in-flight": { type: "string", placeholder: "N", description: "closed loop: slices outstanding per stream", default: "1" },
    input: { type: "string", placeholder: "dir|nii", description: "slices to send, cycled (default: a synthetic head at the model's size)" },
    size: { type: "string", placeholder: "N", description: "side of the synthetic head slice in pixels (default: the model's input size)" },
    rounds: { type: "string", placeholder: "N", description: `--ceiling: echo then service, N times per level; each level reports its median ratio (default ${DEFAULT_CEILING_ROUNDS})` },
    "raw-duration": { type: "string", placeholder: "time", description: "raw ONNX Runtime run; 0 skips it", default: "10s" },
    out: { type: "string", short: "o", placeholder: "dir", description: "report folder", default: "out/bench" },
    workers: { type: "string", placeholder: "N", description: "embedded server and raw run: inference workers (default as serve)" },
    "max-batch": { type: "string", placeholder: "N", description: "embedded server and raw run: batch size (default as serve)" },
    "max-delay-ms": { type: "string", placeholder: "ms", description: "embedded server: batching delay (default as serve)" },
    "max-queue": { type: "string", placeholder: "N", description: "embedded server: queue bound (default as serve)" },
    window: { type: "string", placeholder: "N", description: "embedded server: per-stream window (default as serve)" },
    device: { type: "string", placeholder: "cpu|cuda|auto", description: "embedded server and raw run (default as serve)" },
    "transform-workers": { type: "string", placeholder: "N", description: "embedded server: threads for each slice's decoding through encoding (default as serve)" },
    ...CONNECTION_OPTIONS,
  },
  examples: [
    "medsynth bench --embedded --concurrency 1,4,16 --duration 30s",
    "medsynth bench --target 127.0.0.1:50051 --count 500 --rate 20 --concurrency 8",
    "medsynth bench --ceiling --concurrency 4,16 --in-flight 4 --duration 6s --rounds 5",
  ],
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** BenchOptions from parsed `bench` flags (shared by the CLI and `npm run bench`). */
export function benchOptionsFrom(values: ParsedValues<typeof benchSpec.options>): BenchOptions {
  if (values.embedded && values.target) throw new UsageError("--embedded and --target exclude each other");
  if (values.duration && values.count) throw new UsageError("--duration and --count exclude each other");
  if (values.rounds !== undefined && !values.ceiling) throw new UsageError("--rounds repeats the --ceiling levels; add --ceiling or drop --rounds");
  const serverArgs = SERVER_FLAGS.flatMap((flag) => (values[flag] === undefined ? [] : [`--${flag}`, values[flag]!]));
  if (values.input && values.size) throw new UsageError("--input and --size exclude each other (--size sets the synthetic slice)");
  const count = values.count === undefined ? undefined : parseInteger(values.count, "count");
  return {
    target: values.target,
    server: embeddedConfig(values["models-dir"], serverArgs),
    client: clientOptionsFrom(values),
    direction: oneOf(values.direction, ["mr2ct", "ct2mr"] as const, "direction") as DirectionName,
    model: values.model,
    concurrency: parseIntegerList(values.concurrency, "concurrency"),
    count,
    durationMs: count === undefined ? parseDuration(values.duration ?? "30s", "duration") : undefined,
    rate: values.rate === undefined ? undefined : parsePositiveNumber(values.rate, "rate"),
    warmup: parseInteger(values.warmup, "warmup", 0),
    inFlight: parseInteger(values["in-flight"], "in-flight"),
    input: values.input,
    syntheticSize: values.size === undefined ? undefined : parseInteger(values.size, "size"),
    rawDurationMs: parseDuration(values["raw-duration"], "raw-duration", { allowZero: true }),
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

/** CeilingOptions from parsed `bench --ceiling` flags. */
export function ceilingOptionsFrom(values: ParsedValues<typeof benchSpec.options>): CeilingOptions {
  if (values.target) throw new UsageError("--ceiling runs the service in this process; drop --target");
  if (values.rate) throw new UsageError("--ceiling measures a closed loop; drop --rate");
  const { server, direction, model, concurrency, count, durationMs, warmup, inFlight, input, syntheticSize, log } = benchOptionsFrom(values);
  const rounds = values.rounds === undefined ? undefined : parseInteger(values.rounds, "rounds");
  return { server, direction, model, concurrency, count, durationMs, warmup, inFlight, rounds, input, syntheticSize, log };
}

/** `bench --ceiling` (the CLI's and `npm run bench`'s): runs it, prints the summary and writes ceiling.json to --out. */
export async function ceilingCommand(values: ParsedValues<typeof benchSpec.options>): Promise<CeilingReport> {
  const report = await runCeiling(ceilingOptionsFrom(values));
  process.stdout.write(formatCeiling(report));
  await mkdir(values.out, { recursive: true });
  const path = join(values.out, "ceiling.json");
  await writeFile(path, JSON.stringify(report, null, 2) + "\n");
  process.stdout.write(`wrote ${path}\n`);
  return report;
}

/** The run both `medsynth bench` and `npm run bench` make: the ceiling (printed; no report), or the load run, printed and returned. */
export async function printedBench(values: ParsedValues<typeof benchSpec.options>): Promise<BenchReport | undefined> {
  if (values.ceiling) {
    await ceilingCommand(values);
    return undefined;
  }
  const report = await runBench(benchOptionsFrom(values));
  process.stdout.write(formatBench(report));
  return report;
}

export async function benchCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(benchSpec, argv);
  if (!parsed) return 0;
  const report = await printedBench(parsed.values);
  if (!report) return 0;
  const files = await writeBenchFiles(report, parsed.values.out);
  process.stdout.write(`wrote ${files.join(", ")}\n`);
  // Error statuses are results here (overload is what a bench looks for), not a failed run.
  return 0;
}
