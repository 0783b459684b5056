import { performance } from "node:perf_hooks";
import cliProgress from "cli-progress";

export interface Progress {
  tick(): void;
  stop(): void;
}

/**
 * A progress bar on stderr with slices/s and ETA. Draws only on a terminal
 * (cli-progress skips non-TTY streams), so piped output and tests stay clean.
 */
export function progressBar(total: number, label: string, enabled: boolean): Progress {
  if (!enabled) return { tick() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} {bar} {value}/{total} slices | {rate} slices/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let done = 0;
  const rate = () => (done / Math.max(1e-3, (performance.now() - started) / 1000)).toFixed(1);
  bar.start(total, 0, { rate: "0.0" });
  return {
    tick() {
      done++;
      bar.increment(1, { rate: rate() });
    },
    stop() {
      bar.stop();
    },
  };
}
