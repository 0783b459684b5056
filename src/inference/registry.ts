import { readdir, readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { directionName, directionOf } from "../contract/direction.js";
import { Direction } from "../gen/medsynth/v1/translator_pb.js";
import type { WindowSpec } from "../imaging/window.js";

/** One generator as its model.json describes it (see models/README.md). */
export interface ModelSpec {
  readonly name: string;
  readonly direction: Direction;
  readonly version: string;
  readonly description: string;
  /** Absolute path of the ONNX file. */
  readonly onnxPath: string;
  readonly isDefault: boolean;
  readonly input: { readonly name: string; readonly width: number; readonly height: number; readonly channels: number };
  readonly output: { readonly name: string; readonly channels: number };
  readonly intensity: { readonly input: WindowSpec; readonly output: WindowSpec };
  readonly provenance: unknown;
}

/** A model.json that cannot be used; the message says which file and field. */
export class ManifestError extends Error {
  override name = "ManifestError";
}

/**
 * Reads every `<dir>/<name>/model.json`, validates it and resolves which
 * model is the default of each direction. Throws ManifestError on the first
 * problem: the service refuses to start rather than serve a broken model.
 */
export async function loadModelSpecs(dir: string): Promise<ModelSpec[]> {
  const root = resolve(dir);
  let entries: string[];
  try {
    entries = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (error) {
    // The default, "models", is relative to the working directory: name the embedded models' own folder.
    const embedded = fileURLToPath(new URL("../../../models", import.meta.url));
    throw new ManifestError(
      `models directory ${root} cannot be read (${(error as Error).message}); set --models-dir (the embedded default models are in ${embedded})`,
    );
  }
  const specs: ModelSpec[] = [];
  for (const entry of entries) {
    const manifestPath = join(root, entry, "model.json");
    let text: string;
    try {
      text = await readFile(manifestPath, "utf8");
    } catch {
      continue; // not a model folder (e.g. testdata/)
    }
    specs.push(await parseManifest(text, manifestPath));
  }
  if (specs.length === 0) {
    throw new ManifestError(`no model.json found under ${root}; set --models-dir to a folder of models`);
  }
  return resolveDefaults(specs);
}

async function parseManifest(text: string, path: string): Promise<ModelSpec> {
  const fail = (field: string, what: string): never => {
    throw new ManifestError(`${path}: ${field} ${what}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    return fail("", `is not valid JSON (${(error as Error).message})`);
  }
  const m = object(raw, "(root)", fail);
  if (m.schema !== 1) fail("schema", `must be 1, found ${JSON.stringify(m.schema)}`);
  const name = string(m.name, "name", fail);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) fail("name", "may only use letters, digits, '.', '_' and '-'");
  const direction =
    m.direction === "mr2ct" || m.direction === "ct2mr" ? directionOf(m.direction) : fail("direction", 'must be "mr2ct" or "ct2mr"');
  const onnxPath = resolve(path, "..", string(m.onnx, "onnx", fail));
  const onnxStat = await stat(onnxPath).catch(() => undefined);
  if (!onnxStat?.isFile()) fail("onnx", `points to ${onnxPath}, which is not a file`);
  const input = object(m.input, "input", fail);
  const output = object(m.output, "output", fail);
  const intensity = object(m.intensity, "intensity", fail);
  const inputChannels = positiveInt(input.channels, "input.channels", fail);
  const outputChannels = positiveInt(output.channels, "output.channels", fail);
  for (const [field, value] of [["input.channels", inputChannels], ["output.channels", outputChannels]] as const) {
    if (value !== 1 && value !== 3) fail(field, "must be 1 or 3");
  }
  return {
    name,
    direction,
    version: string(m.version, "version", fail),
    description: typeof m.description === "string" ? m.description : "",
    onnxPath,
    isDefault: m.default === true,
    input: {
      name: string(input.name, "input.name", fail),
      width: positiveInt(input.width, "input.width", fail),
      height: positiveInt(input.height, "input.height", fail),
      channels: inputChannels,
    },
    output: { name: string(output.name, "output.name", fail), channels: outputChannels },
    intensity: {
      input: windowSpec(intensity.input, "intensity.input", fail),
      output: windowSpec(intensity.output, "intensity.output", fail),
    },
    provenance: m.provenance ?? {},
  };
}

type Fail = (field: string, what: string) => never;

function object(value: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail(field, "must be an object");
  return value as Record<string, unknown>;
}

function string(value: unknown, field: string, fail: Fail): string {
  if (typeof value !== "string" || value === "") return fail(field, "must be a non-empty string");
  return value;
}

function positiveInt(value: unknown, field: string, fail: Fail): number {
  if (!Number.isInteger(value) || (value as number) <= 0) return fail(field, "must be a positive integer");
  return value as number;
}

function finite(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== "number" || !Number.isFinite(value)) return fail(field, "must be a finite number");
  return value;
}

function windowSpec(value: unknown, field: string, fail: Fail): WindowSpec {
  const w = object(value, field, fail);
  const low = finite(w.low, `${field}.low`, fail);
  const high = finite(w.high, `${field}.high`, fail);
  if (!(high > low)) fail(field, "needs high > low");
  if (w.window === "fixed") return { window: "fixed", low, high };
  if (w.window !== "percentile") return fail(`${field}.window`, 'must be "fixed" or "percentile"');
  if (low < 0 || high > 100) fail(field, "percentiles must lie in [0, 100]");
  if (w.nominal === undefined) return { window: "percentile", low, high };
  const nominal = w.nominal;
  if (!Array.isArray(nominal) || nominal.length !== 2) return fail(`${field}.nominal`, "must be [low, high]");
  const n0 = finite(nominal[0], `${field}.nominal[0]`, fail);
  const n1 = finite(nominal[1], `${field}.nominal[1]`, fail);
  if (!(n1 > n0)) fail(`${field}.nominal`, "needs high > low");
  return { window: "percentile", low, high, nominal: [n0, n1] };
}

/** Exactly one default per direction: the flagged one, or the only model there is. */
function resolveDefaults(specs: ModelSpec[]): ModelSpec[] {
  const seen = new Set<string>();
  for (const spec of specs) {
    if (seen.has(spec.name)) throw new ManifestError(`two models are named "${spec.name}"; names must be unique`);
    seen.add(spec.name);
  }
  const result = [...specs];
  for (const direction of [Direction.MR_TO_CT, Direction.CT_TO_MR]) {
    const ofDirection = result.filter((s) => s.direction === direction);
    const flagged = ofDirection.filter((s) => s.isDefault);
    if (flagged.length > 1) {
      throw new ManifestError(
        `models ${flagged.map((s) => s.name).join(", ")} are all "default" for ${directionName(direction)}; flag one`,
      );
    }
    if (flagged.length === 0 && ofDirection.length > 1) {
      throw new ManifestError(
        `no default model for ${directionName(direction)} among ${ofDirection.map((s) => s.name).join(", ")}; set "default": true on one`,
      );
    }
    if (flagged.length === 0 && ofDirection.length === 1) {
      const only = ofDirection[0];
      result[result.indexOf(only)] = { ...only, isDefault: true };
    }
  }
  return result;
}
