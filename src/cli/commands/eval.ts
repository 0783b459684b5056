import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ModelInfo, Quality } from "../../gen/medsynth/v1/translator_pb.js";
import { parseCommand, parseInteger, parseList, UsageError, type CommandSpec, type OptionSpec } from "../args.js";
import { isSliceError, type SliceInit } from "../../client/client.js";
import { directionName, modalitiesOf, type DirectionName } from "../../contract/direction.js";
import { statusName } from "../../client/errors.js";
import { everyAnswer, indices } from "../answers.js";
import { progressBar } from "../progress.js";
import { csv, formatMeanStd, markdownTable, summarize, textTable, type Summary, type Table } from "../report.js";
import type { Rescale } from "../../volume/png-rescale.js";
import { readSliceImage } from "../slice-files.js";
import { CONNECTION_OPTIONS, connect } from "./common.js";
import { DEFAULT_WINDOW } from "../../contract/limits.js";

export const evalSpec = {
  name: "eval",
  summary: "Evaluate models on a paired test set: mean ± std of PSNR, SSIM, UQI, VIF (and MAE for CT) per model and direction.",
  usage: "medsynth eval --data <dir> [--models a,b,c] [--target host:port] [options]",
  details: [
    "<dir>/index.json lists subjects and their paired MR/CT PNG slices (the layout of models/testdata).",
    "Every slice goes through the service with its real counterpart as reference, so the numbers are",
    "the service's own Quality values. Writes eval.md, eval.csv and eval.json to --out.",
  ].join("\n"),
  options: {
    data: { type: "string", placeholder: "dir", description: "test set with index.json", default: "models/testdata" },
    models: { type: "string", placeholder: "a,b,c", description: "models to evaluate (default: every model the service lists)" },
    subjects: { type: "string", placeholder: "id,id", description: "only these subjects (default: all)" },
    out: { type: "string", short: "o", placeholder: "dir", description: "report folder", default: "out/eval" },
    foreground: { type: "boolean", description: "also tabulate the metrics inside the head mask" },
    window: { type: "string", placeholder: "n", description: "slices in flight per stream", default: String(DEFAULT_WINDOW) },
    quiet: { type: "boolean", short: "q", description: "no progress bar" },
    ...CONNECTION_OPTIONS,
  },
  examples: ["medsynth eval --data models/testdata", "medsynth eval --models mr2ct-heads,mr2ct-phantom --target 127.0.0.1:50051"],
} satisfies CommandSpec<Record<string, OptionSpec>>;

interface TestSet {
  ct: Rescale;
  mr: Rescale;
  subjects: { id: string; slices: { index: number; mr: string; ct: string }[] }[];
}

const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
type Metric = (typeof METRICS)[number];
const HEADINGS: Record<Metric, string> = { psnr: "PSNR (dB)", ssim: "SSIM", uqi: "UQI", vif: "VIF", mae: "MAE" };
const DIGITS: Record<Metric, number> = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };
/** The method's tables: MAE only where the target is CT (HU are absolute; MR units are not). */
const TABLE_METRICS: Record<DirectionName, readonly Metric[]> = {
  mr2ct: METRICS,
  ct2mr: ["psnr", "ssim", "uqi", "vif"],
};

export interface ModelEvaluation {
  model: string;
  direction: DirectionName;
  slices: number;
  failed: { subject: string; index: number; status: string; message: string }[];
  metrics: Record<Metric, Summary>;
  foreground?: Record<Metric, Summary>;
  /** A metric the service could not compute for a slice (Quality.unavailable) is absent. */
  perSlice: { subject: string; index: number; quality: Values; foreground?: Values }[];
}

async function readTestSet(dir: string): Promise<TestSet> {
  const path = join(dir, "index.json");
  let index: any;
  try {
    index = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new UsageError(`--data: cannot read ${path} (${(error as Error).message})`);
  }
  const rescale = (modality: "ct" | "mr"): Rescale => {
    const spec = index?.[modality];
    if (typeof spec?.rescale_intercept !== "number") throw new UsageError(`${path}: ${modality}.rescale_intercept is missing`);
    return { slope: typeof spec.rescale_slope === "number" && spec.rescale_slope !== 0 ? spec.rescale_slope : 1, intercept: spec.rescale_intercept };
  };
  if (!Array.isArray(index?.subjects)) throw new UsageError(`${path}: subjects[] is missing`);
  return { ct: rescale("ct"), mr: rescale("mr"), subjects: index.subjects };
}

type Values = Partial<Record<Metric, number>>;
const pick = (quality: Quality): Values => Object.fromEntries(METRICS.flatMap((m) => (quality[m] === undefined ? [] : [[m, quality[m]]])));
/** Mean and std of each metric over the slices that have it. */
const summaries = (values: Values[]) =>
  Object.fromEntries(METRICS.map((m) => [m, summarize(values.map((v) => v[m]))])) as Record<Metric, Summary>;

async function evaluate(
  service: Awaited<ReturnType<typeof connect>>,
  model: ModelInfo,
  dir: string,
  testSet: TestSet,
  options: { foreground: boolean; window: number; progress: boolean },
): Promise<ModelEvaluation> {
  const direction = directionName(model.direction);
  const { source, target } = modalitiesOf(direction);
  const slices = testSet.subjects.flatMap((subject) => subject.slices.map((slice) => ({ subject: subject.id, slice })));
  async function* requests(): AsyncGenerator<SliceInit> {
    for (const [n, { slice }] of slices.entries()) {
      yield {
        index: BigInt(n),
        image: await readSliceImage({ name: "", path: join(dir, slice[source]), kind: "png" }, testSet[source]),
        reference: await readSliceImage({ name: "", path: join(dir, slice[target]), kind: "png" }, testSet[target]),
      };
    }
  }
  const evaluation: ModelEvaluation = {
    model: model.name,
    direction,
    slices: slices.length,
    failed: [],
    metrics: summaries([]),
    perSlice: [],
  };
  const progress = progressBar(slices.length, `${model.name}`, options.progress);
  let answered = 0;
  try {
    const answers = service.client.translate(
      { direction, model: model.name, foregroundMetrics: options.foreground, window: options.window },
      requests(),
    );
    for await (const answer of everyAnswer(answers, () => indices(answered, slices.length))) {
      const { subject, slice } = slices[Number(answer.index)];
      answered++;
      progress.tick();
      if (isSliceError(answer)) {
        evaluation.failed.push({ subject, index: slice.index, status: statusName(answer.code), message: answer.message });
      } else if (!answer.quality) {
        evaluation.failed.push({ subject, index: slice.index, status: "NO_QUALITY", message: "the answer carried no Quality" });
      } else {
        evaluation.perSlice.push({
          subject,
          index: slice.index,
          quality: pick(answer.quality),
          ...(answer.foregroundQuality ? { foreground: pick(answer.foregroundQuality) } : {}),
        });
      }
    }
  } finally {
    progress.stop();
  }
  evaluation.metrics = summaries(evaluation.perSlice.map((s) => s.quality));
  if (options.foreground) evaluation.foreground = summaries(evaluation.perSlice.flatMap((s) => (s.foreground ? [s.foreground] : [])));
  return evaluation;
}

/** One table per direction, as the method lays them out: a row per model, mean ± std per metric. */
export function evaluationTables(evaluations: readonly ModelEvaluation[], which: "metrics" | "foreground"): { title: string; table: Table }[] {
  return (["mr2ct", "ct2mr"] as const).flatMap((direction) => {
    const rows = evaluations.filter((e) => e.direction === direction && e[which]);
    if (rows.length === 0) return [];
    const metrics = TABLE_METRICS[direction];
    const unit = direction === "mr2ct" ? " (HU)" : "";
    const title = `${direction === "mr2ct" ? "MR → CT" : "CT → MR"}${which === "foreground" ? ", inside the head mask" : ""}`;
    return [
      {
        title,
        table: {
          columns: ["Model", "Slices", ...metrics.map((m) => `${HEADINGS[m]}${m === "mae" ? unit : ""}`)],
          rows: rows.map((e) => [e.model, String(e[which]!.psnr.n), ...metrics.map((m) => formatMeanStd(e[which]![m], DIGITS[m]))]),
        },
      },
    ];
  });
}

export async function evalCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(evalSpec, argv);
  if (!parsed) return 0;
  const { values } = parsed;
  const testSet = await readTestSet(values.data);
  if (values.subjects) {
    const wanted = parseList(values.subjects);
    const unknown = wanted.filter((id) => !testSet.subjects.some((s) => s.id === id));
    if (unknown.length > 0) throw new UsageError(`--subjects: ${unknown.join(", ")} not in ${values.data}/index.json`);
    testSet.subjects = testSet.subjects.filter((s) => wanted.includes(s.id));
  }
  const window = parseInteger(values.window, "window");
  const service = await connect(values);
  const evaluations: ModelEvaluation[] = [];
  try {
    const listed = await service.client.listModels();
    let models = [...listed].sort((a, b) => a.direction - b.direction || a.name.localeCompare(b.name));
    if (values.models) {
      const names = parseList(values.models);
      const unknown = names.filter((name) => !listed.some((m) => m.name === name));
      if (unknown.length > 0) {
        throw new UsageError(`--models: ${unknown.join(", ")} not served; available: ${listed.map((m) => m.name).join(", ")}`);
      }
      models = names.map((name) => listed.find((m) => m.name === name)!);
    }
    for (const model of models) {
      evaluations.push(
        await evaluate(service, model, values.data, testSet, {
          foreground: values.foreground,
          window,
          progress: !values.quiet && process.stderr.isTTY === true,
        }),
      );
    }
  } finally {
    await service.close();
  }

  const tables = [...evaluationTables(evaluations, "metrics"), ...(values.foreground ? evaluationTables(evaluations, "foreground") : [])];
  const note = `Mean ± standard deviation (population, ddof = 0) over slices of ${values.data}, computed by the service (${service.target}). Not patient data; not for clinical use.`;
  const print = (text: string) => process.stdout.write(text);
  for (const { title, table } of tables) print(`\n${title}\n${textTable(table)}`);
  print(`\n${note}\n`);

  await mkdir(values.out, { recursive: true });
  const markdown = ["# medsynth evaluation", "", note, "", ...tables.flatMap(({ title, table }) => [`## ${title}`, "", markdownTable(table)])].join("\n");
  await writeFile(join(values.out, "eval.md"), markdown);
  const columns = ["model", "direction", "region", "slices", "failed", ...METRICS.flatMap((m) => [`${m}_mean`, `${m}_std`])];
  const rows = evaluations.flatMap((e) =>
    (["metrics", "foreground"] as const).flatMap((which) => {
      const summary = e[which];
      if (!summary) return [];
      return [[e.model, e.direction, which === "metrics" ? "image" : "head", summary.psnr.n, e.failed.length, ...METRICS.flatMap((m) => [summary[m].mean, summary[m].std])]];
    }),
  );
  await writeFile(join(values.out, "eval.csv"), csv(columns, rows));
  await writeFile(
    join(values.out, "eval.json"),
    JSON.stringify({ data: values.data, target: service.target, note, evaluations }, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v), 2) + "\n",
  );
  print(`wrote ${["eval.md", "eval.csv", "eval.json"].map((f) => join(values.out, f)).join(", ")}\n`);

  const failed = evaluations.flatMap((e) => e.failed.map((f) => ({ model: e.model, ...f })));
  if (failed.length === 0) return 0;
  process.stderr.write(`${failed.length} slices failed, e.g. ${failed[0].model} ${failed[0].subject}/${failed[0].index}: ${failed[0].status} ${failed[0].message}\n`);
  return 1;
}
