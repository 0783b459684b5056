/**
 * `npm run bench [-- options]`: one run on one model and machine that prints
 * raw ONNX Runtime throughput in-process, the service's throughput through
 * gRPC at several concurrencies, their ratio, latency p50/p99, the server
 * process's event-loop delay p99 under load, and the cost of the quality
 * metrics against one slice's inference. Same options as `medsynth bench`
 * (run with --help); the service runs embedded unless --target is given.
 */
import { parseCommand, UsageError } from "../src/cli/args.js";
import { writeBenchFiles } from "../src/cli/bench.js";
import { benchSpec, printedBench } from "../src/cli/commands/bench.js";
import { benchQuality } from "./quality.js";

/** Goals from the service's issue: throughput within 5% of raw ONNX Runtime, event loop responsive under load. */
const GOALS = { ratio: 0.95, eventLoopP99Ms: 20 };

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommand({ ...benchSpec, usage: "npm run bench -- [options]" }, argv);
  if (!parsed) return 0;
  const report = await printedBench(parsed.values);
  if (!report) return 0;

  process.stderr.write("quality metrics: 256×256, one thread\n");
  const quality = await benchQuality();
  const perSlice = report.raw?.msPerSlice;
  const qualityMetrics = {
    medianMs: quality.medianMs.all,
    shareOfInference: perSlice === undefined ? null : quality.medianMs.all / perSlice,
    detail: quality,
  };
  const files = await writeBenchFiles({ ...report, qualityMetrics }, parsed.values.out);

  const best = report.levels.find((l) => l.concurrency === report.best.concurrency)!;
  const loopP99 = Math.max(...report.levels.map((l) => l.eventLoopDelayMs?.p99 ?? NaN));
  const verdict = (ok: boolean) => (ok ? "meets" : "misses");
  const lines = [
    "",
    "summary",
    report.raw
      ? `  raw ONNX Runtime throughput   ${report.raw.slicesPerSecond.toFixed(2)} slices/s (batch ${report.raw.batchSize}, ${report.raw.workers} workers)`
      : `  raw ONNX Runtime throughput   skipped (${report.rawSkipped})`,
    `  service throughput            ${report.levels.map((l) => l.throughput.toFixed(2)).join(" / ")} slices/s at ${report.levels.map((l) => l.concurrency).join(" / ")} streams`,
    report.best.ratioToRaw === null
      ? "  service/raw ratio             n/a"
      : `  service/raw ratio             ${report.best.ratioToRaw.toFixed(3)} at ${best.concurrency} streams (${verdict(report.best.ratioToRaw >= GOALS.ratio)} the goal >= ${GOALS.ratio})`,
    `  latency p50 / p99             ${best.latencyMs.p50.toFixed(1)} / ${best.latencyMs.p99.toFixed(1)} ms at ${best.concurrency} streams`,
    Number.isNaN(loopP99)
      ? "  event-loop delay p99          n/a (remote target)"
      : `  event-loop delay p99          ${loopP99.toFixed(1)} ms, worst level (${verdict(loopP99 < GOALS.eventLoopP99Ms)} the goal < ${GOALS.eventLoopP99Ms} ms)`,
    `  quality metrics (all five)    ${quality.medianMs.all.toFixed(2)} ms median per 256×256 slice` +
      (qualityMetrics.shareOfInference === null
        ? ""
        : ` = ${(100 * qualityMetrics.shareOfInference).toFixed(1)}% of one slice's inference (${perSlice!.toFixed(1)} ms at batch ${report.raw!.batchSize})`),
    `wrote ${files.join(", ")}`,
    "",
  ];
  process.stdout.write(lines.join("\n"));
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`npm run bench: ${(error as Error).message}\n`);
  if (error instanceof UsageError) process.stderr.write("Run `npm run bench -- --help` for the options.\n");
  process.exitCode = error instanceof UsageError ? 2 : 1;
}
