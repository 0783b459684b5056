#!/usr/bin/env node
/**
 * `medsynth`: run the service, translate folders and volumes, evaluate
 * models, load-test a deployment. NOT FOR CLINICAL USE.
 */
import { isEntryPoint } from "../entry-point.js";
import { UsageError } from "./args.js";

interface Command {
  summary: string;
  run(argv: string[]): Promise<number | void>;
}

/** A command whose module `load` imports only when the command runs. */
const lazy = (summary: string, load: () => Promise<(argv: string[]) => Promise<number | void>>): Command => ({
  summary,
  run: async (argv) => (await load())(argv),
});

// Each command loads its own modules, so `medsynth --help` and a --target run stay light.
const COMMANDS: Record<string, Command> = {
  serve: lazy("Start the service (same as npm start); SIGTERM/SIGINT drain, then exit.", async () => (await import("../server/main.js")).serve),
  translate: lazy(
    "Translate a folder of PNG/DICOM slices or a NIfTI volume; metrics CSV with --reference.",
    async () => (await import("./commands/translate.js")).translateCommand,
  ),
  eval: lazy(
    "Evaluate models on a paired test set: mean ± std of PSNR, SSIM, UQI, VIF (+ MAE for CT).",
    async () => (await import("./commands/eval.js")).evalCommand,
  ),
  bench: lazy("Load-test the service (closed or open loop) against raw ONNX Runtime throughput.", async () => (await import("./commands/bench.js")).benchCommand),
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return [
    "Usage: medsynth <command> [options]",
    "",
    "Real-time MR <-> CT synthesis of brain slices over gRPC. NOT FOR CLINICAL USE.",
    "",
    "Commands:",
    ...Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.summary}`),
    "",
    "Run `medsynth <command> --help` for a command's options.",
    "",
  ].join("\n");
}

/** Runs the CLI; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`medsynth: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`medsynth ${name}: ${error.message}\nRun \`medsynth ${name} --help\` for usage.\n`);
      return 2;
    }
    process.stderr.write(`medsynth ${name}: ${(error as Error).message}\n`);
    return 1;
  }
}

if (isEntryPoint(import.meta.url)) {
  const code = await main(process.argv.slice(2));
  // `serve` keeps running (its server holds the event loop); the others are done.
  if (process.argv[2] !== "serve") process.exit(code);
}
