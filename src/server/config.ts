/**
 * The service's options, composed from the components that own them: one
 * row per option with its default (the component's), bounds or choices and a
 * line for `--help`. Every option is a flag (--max-batch) and an environment
 * variable (MEDSYNTH_MAX_BATCH); flags win over the environment, which wins
 * over the defaults.
 */
import { parseArgs } from "node:util";
import { DEFAULT_BATCHER_OPTIONS } from "../batcher/micro-batcher.js";
import { DEFAULT_STOW_OPTIONS } from "../dicomweb/stow.js";
import { checkUidRoot, DEFAULT_UID_ROOT } from "../imaging/dicom-uid.js";
import { DEFAULT_MAX_DIMENSION } from "../imaging/raster.js";
import { DEFAULT_ORT_POOL_OPTIONS } from "../inference/ort-pool.js";
import { DEFAULT_TRANSFORM_POOL_OPTIONS } from "../inference/transform-pool.js";
import { DEFAULT_QUALITY_POOL_OPTIONS } from "../quality/quality-pool.js";
import { DEFAULT_IN_FLIGHT } from "./admission.js";
import { DEFAULT_LIMITS } from "./limits.js";
import { LOG_LEVELS } from "./log.js";

interface OptionSpec<T extends string | number> {
  readonly default: T;
  /** One line for --help. */
  readonly description: string;
  /** Integers: the smallest and largest value allowed (integer() sets the smallest; no largest when absent). */
  readonly min?: number;
  readonly max?: number;
  /** The values allowed, when there is a fixed set. */
  readonly choices?: readonly T[];
  /** Throws, saying why, when the value cannot work. */
  readonly check?: (value: string) => void;
}

const integer = (fallback: number, description: string, bounds: { min?: number; max?: number } = {}): OptionSpec<number> => ({
  default: fallback,
  description,
  min: bounds.min ?? 1,
  max: bounds.max,
});
const text = (fallback: string, description: string, check?: (value: string) => void): OptionSpec<string> => ({
  default: fallback,
  description,
  check,
});
const choice = <T extends string>(choices: readonly T[], fallback: T, description: string): OptionSpec<T> => ({
  default: fallback,
  description,
  choices,
});
const PORT = { min: 0, max: 65535 };

function checkHttpUrl(value: string): void {
  if (!/^https?:\/\/[^\s/]+/.test(value)) throw new Error("expected an http:// or https:// URL");
}

/** A comma-separated list of web origins: scheme://host[:port], nothing else (no path, no wildcard). */
function checkOrigins(value: string): void {
  for (const origin of value.split(",").map((o) => o.trim()).filter(Boolean)) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.origin !== origin) {
      throw new Error(`"${origin}" is not an origin; write scheme://host[:port], e.g. https://viewer.example.org`);
    }
  }
}

/** Every option of the service, in --help order. */
const OPTIONS = {
  host: text("0.0.0.0", "listen address"),
  port: integer(50051, "gRPC port (0 picks a free one)", PORT),
  // The OpenTelemetry Prometheus exporter's usual port.
  metricsPort: integer(9464, "Prometheus /metrics port (0 = off)", PORT),
  modelsDir: text("models", "folder of <model>/model.json"),
  device: choice(["cpu", "cuda", "auto"], DEFAULT_ORT_POOL_OPTIONS.device, "cpu, cuda (fail if unavailable) or auto (CUDA, else CPU)"),
  deviceId: integer(DEFAULT_ORT_POOL_OPTIONS.deviceId, "CUDA device", { min: 0 }),
  workers: integer(DEFAULT_ORT_POOL_OPTIONS.workers, "inference worker threads"),
  batchDeadlineFactor: integer(DEFAULT_ORT_POOL_OPTIONS.batchDeadlineFactor, "a batch running this many times its model's measured time marks its worker hung: the batch fails, the worker is replaced"),
  batchDeadlineMinMs: integer(DEFAULT_ORT_POOL_OPTIONS.batchDeadlineMinMs, "the shortest batch deadline, ms"),
  maxBatch: integer(DEFAULT_BATCHER_OPTIONS.maxBatch, "largest inference batch"),
  maxDelayMs: integer(DEFAULT_BATCHER_OPTIONS.maxDelayMs, "longest wait of the oldest queued slice for a fuller batch, ms", { min: 0 }),
  maxQueue: integer(DEFAULT_BATCHER_OPTIONS.maxQueue, "queued slices per model before RESOURCE_EXHAUSTED"),
  window: integer(DEFAULT_IN_FLIGHT.window, "in-flight slices per stream before the server stops reading it"),
  windowBytes: integer(DEFAULT_IN_FLIGHT.windowBytes, "in-flight bytes per stream (slices counted by their declared decoded size) before the server stops reading it"),
  maxInflightBytes: integer(DEFAULT_IN_FLIGHT.maxInflightBytes, "in-flight bytes over all streams before the server stops reading the streams that send more"),
  maxDimension: integer(DEFAULT_MAX_DIMENSION, "largest width or height of a slice"),
  metricsWorkers: integer(DEFAULT_QUALITY_POOL_OPTIONS.workers, "quality-metric (PSNR, SSIM, ...) worker threads"),
  transformWorkers: integer(DEFAULT_TRANSFORM_POOL_OPTIONS.workers, "worker threads for each slice's own CPU work: decoding, resizing, windows, mapping back, encoding"),
  drainTimeoutMs: integer(30_000, "on SIGTERM, how long open streams may take before they are ended, ms"),
  webPort: integer(0, "port for browsers and HTTP clients: Connect, gRPC-Web and gRPC (unary calls), and the viewer at /viewer (0 = off)", PORT),
  webCorsOrigins: text("", "comma-separated origins (scheme://host[:port]) whose pages may call the web port; none by default", checkOrigins),
  healthPort: integer(0, "extra plaintext port serving only grpc.health.v1, for probes when the main port is TLS (0 = off)", PORT),
  tlsCert: text("", "PEM certificate chain; with --tls-key the gRPC port speaks TLS"),
  tlsKey: text("", "PEM private key of --tls-cert"),
  tlsClientCa: text("", "PEM CA bundle: clients must present a certificate it signed (mTLS)"),
  authTokensFile: text("", "accepted bearer tokens, one per line or sha256:<hex>; every RPC but health needs one"),
  maxMessageBytes: integer(DEFAULT_LIMITS.maxMessageBytes, "largest message received or sent, bytes"),
  maxStreams: integer(DEFAULT_LIMITS.maxStreams, "concurrent calls over all clients"),
  maxStreamsPerPeer: integer(DEFAULT_LIMITS.maxStreamsPerPeer, "concurrent calls per client IP"),
  streamIdleTimeoutMs: integer(DEFAULT_LIMITS.streamIdleTimeoutMs, "a stream idle this long (Translate: every slice answered, no message from the client) ends with DEADLINE_EXCEEDED, ms (0 = never)", { min: 0 }),
  keepaliveTimeMs: integer(DEFAULT_LIMITS.keepaliveTimeMs, "HTTP/2 keepalive ping interval, ms"),
  keepaliveTimeoutMs: integer(DEFAULT_LIMITS.keepaliveTimeoutMs, "a connection whose ping is unanswered this long is dropped, ms"),
  maxConnectionAgeMs: integer(DEFAULT_LIMITS.maxConnectionAgeMs, "recycle connections after this long so new replicas get streams, ms (0 = never)", { min: 0 }),
  maxConnectionIdleMs: integer(DEFAULT_LIMITS.maxConnectionIdleMs, "close a connection with no call open this long, one that never sends a request included, ms (0 = never)", { min: 0 }),
  stowUrl: text("", "DICOMweb base URL: every derived DICOM instance is stored there by STOW-RS, e.g. http://pacs:8042/dicom-web", checkHttpUrl),
  stowToken: text("", "bearer token for --stow-url (prefer the environment variable: flags show in ps)"),
  stowBasicAuthFile: text("", "file whose first line is user:password, for basic auth at --stow-url"),
  stowRetries: integer(DEFAULT_STOW_OPTIONS.retries, "STOW-RS retries of a failure that may pass (network, timeout, 408, 429, 5xx), with doubling backoff", { min: 0 }),
  dicomUidRoot: text(DEFAULT_UID_ROOT, "root of the UIDs of derived DICOM instances (use your organisation's)", checkUidRoot),
  deidentify: choice(["off", "basic-profile"], "off", "basic-profile: de-identify DICOM output (PS3.15 Basic Application Level Confidentiality Profile)"),
  logLevel: choice(LOG_LEVELS, "info", "least severe log level written"),
};

type Key = keyof typeof OPTIONS;

/** The service's configuration: every option of OPTIONS, with its value type. */
export type ServerConfig = { [K in Key]: (typeof OPTIONS)[K] extends OptionSpec<infer T> ? T : never };

export const DEFAULT_CONFIG = Object.fromEntries(Object.entries(OPTIONS).map(([key, spec]) => [key, spec.default])) as ServerConfig;

/** Thrown for a bad flag or env value; the message names it and says what is allowed. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (key: string) => `MEDSYNTH_${kebab(key).replace(/-/g, "_").toUpperCase()}`;
const keys = Object.keys(OPTIONS) as Key[];

/** Usage text for --help: every option, its env variable, its default and what it does. */
export function usage(): string {
  const rows = keys.map((key) => [`--${kebab(key)}`, envName(key), OPTIONS[key].default === "" ? '""' : String(OPTIONS[key].default), OPTIONS[key].description]);
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c].length)));
  const lines = rows.map((row) => `  ${row.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]) : cell)).join("  ")}`);
  return ["Options (flag, environment variable, default, meaning):", ...lines].join("\n");
}

/**
 * Flags win over MEDSYNTH_* environment variables, which win over defaults.
 * Unknown flags are an error, so a typo does not silently run with a default.
 */
export function parseServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(keys.map((key) => [kebab(key), { type: "string" as const }])),
      strict: true,
      allowPositionals: false,
    }) as { values: Record<string, string | undefined> });
  } catch (error) {
    throw new ConfigError(`${(error as Error).message}\n${usage()}`);
  }
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const key of keys) {
    const flag = values[kebab(key)];
    const raw = flag ?? env[envName(key)];
    if (raw === undefined) continue;
    config[key] = parseValue(OPTIONS[key], raw, flag !== undefined ? `--${kebab(key)}` : envName(key));
  }
  return config as ServerConfig;
}

function parseValue(spec: OptionSpec<string | number>, raw: string, source: string): string | number {
  if (typeof spec.default === "number") {
    const value = Number(raw);
    const { min = -Infinity, max = Infinity } = spec;
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`${source}=${raw}: expected an integer >= ${min}${max < Infinity ? ` and <= ${max}` : ""}`);
    }
    return value;
  }
  try {
    spec.check?.(raw);
  } catch (error) {
    throw new ConfigError(`${source}=${raw}: ${(error as Error).message}`);
  }
  if (spec.choices && !spec.choices.includes(raw)) throw new ConfigError(`${source}=${raw}: expected one of ${spec.choices.join(", ")}`);
  return raw;
}
