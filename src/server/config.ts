import { parseArgs } from "node:util";
import type { ExecutionDevice } from "../inference/ort-protocol.js";
import type { LogLevel } from "./log.js";
import { checkUidRoot } from "../imaging/dicom.js";
import { DEFAULT_MAX_DIMENSION } from "../imaging/raster.js";
import { DEFAULT_LIMITS, type LimitsOptions } from "./limits.js";

/**
 * Service options. Every one is a flag (--max-batch) and an env variable (MEDSYNTH_MAX_BATCH).
 * Limits (--max-message-bytes, --max-streams, --max-streams-per-peer,
 * --stream-idle-timeout-ms, --keepalive-time-ms, --keepalive-timeout-ms,
 * --max-connection-age-ms) are documented in limits.ts.
 */
export interface ServerConfig extends LimitsOptions {
  /** Address to listen on (default 0.0.0.0). */
  host: string;
  /** gRPC port (default 50051; 0 picks a free one). */
  port: number;
  /** Prometheus /metrics port (default 9464; 0 turns it off). */
  metricsPort: number;
  /** Folder of <model>/model.json (default models). */
  modelsDir: string;
  /** cpu (default), cuda (fail if unavailable) or auto (CUDA, else CPU). */
  device: ExecutionDevice;
  /** CUDA device id (default 0). */
  deviceId: number;
  /** Inference worker threads (default 2). */
  workers: number;
  /** Largest inference batch (default 8). */
  maxBatch: number;
  /** Longest the oldest queued slice waits for a fuller batch, ms (default 5). */
  maxDelayMs: number;
  /** Slices queued per model before RESOURCE_EXHAUSTED (default 256). */
  maxQueue: number;
  /** Slices one stream may have in flight before the server stops reading it (default 16). */
  window: number;
  /** Largest accepted width or height (default 4096). */
  maxDimension: number;
  /** Metrics worker threads (default 1). */
  metricsWorkers: number;
  /** Worker threads that resize and window slices before and after inference (default 1). */
  transformWorkers: number;
  /** On SIGTERM, how long open streams may take to finish before they are ended, ms (default 30000). */
  drainTimeoutMs: number;
  /** Plaintext port serving only grpc.health.v1, for probes that cannot do TLS (default 0: none). */
  healthPort: number;
  /** PEM certificate chain; with tlsKey, the gRPC port speaks TLS (default "": plaintext). */
  tlsCert: string;
  /** PEM private key of tlsCert (default ""). */
  tlsKey: string;
  /** PEM CA bundle; when set, clients must present a certificate it signed (default "": no client certificates). */
  tlsClientCa: string;
  /** File of accepted bearer tokens, one per line or sha256:<hex> (default "": no token needed). */
  authTokensFile: string;
  /** Root of the UIDs of derived DICOM instances (default 2.25, the UUID-derived root; use your organisation's). */
  dicomUidRoot: string;
  /** De-identify DICOM output: off (default) or basic-profile (PS3.15 Basic Application Level Confidentiality Profile). */
  deidentify: "off" | "basic-profile";
  logLevel: LogLevel;
}

export const DEFAULT_CONFIG: ServerConfig = {
  host: "0.0.0.0",
  port: 50051,
  metricsPort: 9464,
  modelsDir: "models",
  device: "cpu",
  deviceId: 0,
  workers: 2,
  maxBatch: 8,
  maxDelayMs: 5,
  maxQueue: 256,
  window: 16,
  maxDimension: DEFAULT_MAX_DIMENSION,
  metricsWorkers: 1,
  transformWorkers: 1,
  drainTimeoutMs: 30_000,
  healthPort: 0,
  tlsCert: "",
  tlsKey: "",
  tlsClientCa: "",
  authTokensFile: "",
  dicomUidRoot: "2.25",
  deidentify: "off",
  ...DEFAULT_LIMITS,
  logLevel: "info",
};

/** Thrown for a bad flag or env value; the message names it and says what is allowed. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Key = keyof ServerConfig;
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (key: string) => `MEDSYNTH_${kebab(key).replace(/-/g, "_").toUpperCase()}`;

/** Numeric options where 0 means "any free port" or "off". */
const ZERO_ALLOWED = new Set<Key>(["port", "metricsPort", "maxDelayMs", "deviceId", "healthPort", "streamIdleTimeoutMs", "maxConnectionAgeMs"]);

const CHOICES: Partial<Record<Key, readonly string[]>> = {
  device: ["cpu", "cuda", "auto"],
  logLevel: ["debug", "info", "warn", "error"],
  deidentify: ["off", "basic-profile"],
};

/** Usage text for --help: every option, its env variable and its default. */
export function usage(): string {
  const lines = (Object.keys(DEFAULT_CONFIG) as Key[]).map(
    (key) => `  --${kebab(key).padEnd(18)} ${envName(key).padEnd(28)} default ${DEFAULT_CONFIG[key]}`,
  );
  return ["Options (flag, environment variable, default):", ...lines].join("\n");
}

/**
 * Flags win over MEDSYNTH_* environment variables, which win over defaults.
 * Unknown flags are an error, so a typo does not silently run with a default.
 */
export function parseServerConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const keys = Object.keys(DEFAULT_CONFIG) as Key[];
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
  const config = { ...DEFAULT_CONFIG } as Record<Key, unknown>;
  for (const key of keys) {
    const flag = values[kebab(key)];
    const raw = flag ?? env[envName(key)];
    if (raw === undefined) continue;
    const source = flag !== undefined ? `--${kebab(key)}` : envName(key);
    config[key] = parseValue(key, raw, source);
  }
  return config as unknown as ServerConfig;
}

function parseValue(key: Key, raw: string, source: string): unknown {
  const fallback = DEFAULT_CONFIG[key];
  if (typeof fallback === "number") {
    const value = Number(raw);
    const min = ZERO_ALLOWED.has(key) ? 0 : 1;
    if (!Number.isInteger(value) || value < min || (key.endsWith("ort") && value > 65535)) {
      throw new ConfigError(`${source}=${raw}: expected an integer >= ${min}${key.endsWith("ort") ? " and <= 65535" : ""}`);
    }
    return value;
  }
  if (key === "dicomUidRoot") {
    try {
      checkUidRoot(raw);
    } catch (error) {
      throw new ConfigError(`${source}=${raw}: ${(error as Error).message}`);
    }
  }
  const choices = CHOICES[key];
  if (choices && !choices.includes(raw)) throw new ConfigError(`${source}=${raw}: expected one of ${choices.join(", ")}`);
  return raw;
}
