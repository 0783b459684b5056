import { parseArgs } from "node:util";

/** A mistake on the command line: the CLI prints it with the command's help and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  /** Shown in help as `--name <placeholder>`. */
  placeholder?: string;
  description: string;
  default?: string | boolean;
}

export interface CommandSpec<O extends Record<string, OptionSpec>> {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** e.g. "medsynth translate <input> --direction mr2ct|ct2mr [options]" */
  usage: string;
  /** Paragraphs after the usage line. */
  details?: string;
  options: O;
  /** Number of positional arguments accepted. */
  positionals?: { min: number; max: number };
  examples?: string[];
}

export type ParsedValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K]["type"] extends "boolean" ? boolean : O[K] extends { default: string } ? string : string | undefined;
};

export function helpText(spec: CommandSpec<Record<string, OptionSpec>>): string {
  const options = Object.entries(spec.options).map(([name, option]) => {
    const flag = `${option.short ? `-${option.short}, ` : "    "}--${name}${option.type === "string" ? ` <${option.placeholder ?? "value"}>` : ""}`;
    const fallback = option.default === undefined || option.default === false ? "" : ` (default: ${option.default})`;
    return [flag, `${option.description}${fallback}`];
  });
  options.push(["-h, --help", "show this help"]);
  const width = Math.max(...options.map(([flag]) => flag.length));
  return [
    `Usage: ${spec.usage}`,
    "",
    spec.summary,
    ...(spec.details ? ["", spec.details] : []),
    "",
    "Options:",
    ...options.map(([flag, text]) => `  ${flag.padEnd(width)}  ${text}`),
    ...(spec.examples?.length ? ["", "Examples:", ...spec.examples.map((e) => `  ${e}`)] : []),
    "",
  ].join("\n");
}

/**
 * Parses a command's arguments (node:util parseArgs, strict). Returns
 * undefined after printing help when -h/--help is given.
 */
export function parseCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec<O>,
  argv: string[],
  print: (text: string) => void = (text) => process.stdout.write(text),
): { values: ParsedValues<O>; positionals: string[] } | undefined {
  const options = Object.fromEntries(
    Object.entries(spec.options).map(([name, option]) => [
      name,
      { type: option.type, ...(option.short ? { short: option.short } : {}), ...(option.default !== undefined ? { default: option.default } : {}) },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) {
    print(helpText(spec));
    return undefined;
  }
  const { min, max } = spec.positionals ?? { min: 0, max: 0 };
  if (parsed.positionals.length < min || parsed.positionals.length > max) {
    throw new UsageError(
      max === 0
        ? `unexpected argument "${parsed.positionals[0]}"`
        : `expected ${min === max ? min : `${min} to ${max}`} argument(s), got ${parsed.positionals.length}`,
    );
  }
  return { values: parsed.values as ParsedValues<O>, positionals: parsed.positionals };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "2m", "1.5h", "250ms" (a bare number is seconds) → milliseconds; 0 only with `allowZero`. */
export function parseDuration(text: string, option: string, { allowZero = false } = {}): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--${option} "${text}": use a duration such as 30s, 2m or 500ms`);
  const ms = Number(match[1]) * DURATION_UNITS[match[2] ?? "s"];
  if (ms <= 0 && !(allowZero && ms === 0)) throw new UsageError(`--${option} must be greater than 0`);
  return ms;
}

/** A whole number ≥ `min`. */
export function parseInteger(text: string, option: string, min = 1): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new UsageError(`--${option} "${text}": expected a whole number ≥ ${min}`);
  return value;
}

export function parsePositiveNumber(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${option} "${text}": expected a number > 0`);
  return value;
}

/** "1,4,16" → [1, 4, 16]. */
export function parseIntegerList(text: string, option: string): number[] {
  const items = parseList(text);
  if (items.length === 0) throw new UsageError(`--${option} "${text}": give at least one number, e.g. 1,4,16`);
  return items.map((item) => parseInteger(item, option));
}

/** "a, b,c" → ["a", "b", "c"]. */
export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

export function oneOf<T extends string>(text: string, allowed: readonly T[], option: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${option} "${text}": use one of ${allowed.join(", ")}`);
  return text as T;
}
