#!/usr/bin/env node
/**
 * `npm start -- [flags]`: the service on the models in --models-dir (default:
 * the embedded default models). SIGTERM/SIGINT drain, then exit 0; a second
 * signal during the drain is ignored, a third stops at once.
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
  // The first signal drains; a second one (a supervisor repeating itself, an impatient Ctrl-C) is logged and
  // ignored, so the drain still answers every accepted slice; a third one stops the server at once.
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 2) return log.warn("signal received during the drain: ignored; a third signal (or SIGKILL) stops the server now", { signal });
    if (signals > 2) {
      log.warn("third signal: stopping without finishing the drain", { signal });
      return process.exit(signal === "SIGINT" ? 130 : 143);
    }
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
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  try {
    await starting;
  } catch (error) {
    log.error("failed to start", { error: (error as Error).message });
    process.exit(1);
  }
}

if (isEntryPoint(import.meta.url)) await serve(process.argv.slice(2));
