#!/usr/bin/env node
/**
 * `npm start -- [flags]`: the service on the models in --models-dir (default:
 * the embedded default models). SIGTERM/SIGINT drain, then exit 0.
 */
import { isEntryPoint } from "../entry-point.js";
import { ConfigError, parseServerConfig, usage } from "./config.js";
import { createLogger } from "./log.js";
import { startServer } from "./server.js";

/** Starts the service from command-line flags and environment; shared with `medsynth serve`. */
export async function serve(argv: readonly string[]): Promise<void> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`medsynth server — MR↔CT slice synthesis over gRPC (not for clinical use)\n\n${usage()}\n`);
    return;
  }
  let config;
  try {
    config = parseServerConfig(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  const log = createLogger(config.logLevel);
  // Handlers go in before the (slow) start, so a SIGTERM during warm-up still drains rather than kills.
  const starting = startServer(config, { log });
  const stop = (signal: string) => {
    log.info("signal received", { signal });
    starting
      .then((server) => server.drain())
      .then(
        () => process.exit(0),
        (error: Error) => {
          log.error("drain failed", { error: error.message });
          process.exit(1);
        },
      );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  try {
    await starting;
  } catch (error) {
    log.error("failed to start", { error: (error as Error).message });
    process.exit(1);
  }
}

if (isEntryPoint(import.meta.url)) await serve(process.argv.slice(2));
