import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import * as hdr from "hdr-histogram-js";
import { isSliceError, type SliceInit, type TranslateOptions, type TranslatorClient } from "../client/client.js";
import type { Timing } from "../gen/medsynth/v1/translator_pb.js";
import { statusName } from "../client/errors.js";
import { everyAnswer } from "./answers.js";

export interface LoadOptions {
  /** Concurrent streams. */
  concurrency: number;
  /** Stop after this many measured slices (all streams together)… */
  count?: number;
  /** …or after issuing measured slices for this long, ms. One of the two is required. */
  durationMs?: number;
  /**
   * Open loop: slices per second over all streams, on a fixed schedule;
   * latency counts from each slice's scheduled time, so queueing (also in
   * the client) shows up in it. Without a rate: closed loop, each stream
   * sends its next slice as soon as an answer frees a place.
   */
  rate?: number;
  /** Slices sent before measuring, not counted (default 0). */
  warmup?: number;
  /** Closed loop: slices in flight per stream (default 1). */
  inFlight?: number;
  /** Open loop: the most slices one stream may have in flight (default 64). */
  openLoopWindow?: number;
  /** Called once, as the first measured slice goes out (the warm-up is over). */
  onMeasuring?: () => void;
}

export interface TranslateLoadOptions extends LoadOptions {
  translate: TranslateOptions;
  /** The slice to send for a given index (called once per slice). */
  slice: (index: bigint) => SliceInit;
}

/** How one answer went: "OK" or a status name, and the server's Timing of an OK one. */
export interface Outcome {
  status: string;
  timing?: Timing;
}

/**
 * Opens one stream that sends one message per index of `indices` (read only
 * when fewer than `window` are unanswered) and yields one Outcome per
 * message, in order. `unanswered` names the indices sent and not answered
 * yet, for a stream that fails as a whole.
 */
export type StreamOpener = (window: number, indices: AsyncIterable<bigint>, unanswered: () => Iterable<bigint>) => AsyncIterable<Outcome>;

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  concurrency: number;
  /** Slices/s asked for (open loop) or null (closed loop). */
  rate: number | null;
  /** Measured slices sent and answered (or failed with their stream). */
  measured: number;
  /** Answers by status: "OK", "RESOURCE_EXHAUSTED", ... (a failed stream counts its unanswered slices). */
  statuses: Record<string, number>;
  /** From the first measured slice's send (or scheduled) time to the last measured answer, s. */
  elapsedS: number;
  /** OK answers per second. */
  throughput: number;
  /** Latency of OK answers, ms. */
  latencyMs: LatencySummary;
  /** [percentile, ms] points of the latency distribution, for charts. */
  latencyCurve: [number, number][];
  /** How many OK answers came from server batches of each size (Timing.batch_size). */
  batchSizes: Record<string, number>;
  meanBatchSize: number;
  /** Means of the server's Timing over OK answers, ms. */
  serverMs: { queue: number; inference: number; metrics: number; total: number };
}

/** Percentiles the latency curve is sampled at; 100 is the maximum. */
const CURVE_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 97.5, 99, 99.5, 99.9, 100];

interface Sent {
  index: number;
  at: number;
  measured: boolean;
}

/** Translate streams of `client`, as a StreamOpener. */
export function translateStreams(client: TranslatorClient, translate: TranslateOptions, slice: (index: bigint) => SliceInit): StreamOpener {
  return async function* (window, indices, unanswered) {
    async function* slices(): AsyncGenerator<SliceInit> {
      for await (const index of indices) yield slice(index);
    }
    for await (const answer of everyAnswer(client.translate({ ...translate, window }, slices()), unanswered)) {
      yield isSliceError(answer) ? { status: statusName(answer.code) } : { status: "OK", timing: answer.timing };
    }
  };
}

/**
 * Runs one load level of Translate streams against `client` and returns its
 * numbers. Bounded by `count` or `durationMs`, so it always stops by itself.
 */
export function runLoad(client: TranslatorClient, options: TranslateLoadOptions): Promise<LoadResult> {
  return runStreams(translateStreams(client, options.translate, options.slice), options);
}

/** One load level of the streams `open` makes (see runLoad). */
export async function runStreams(open: StreamOpener, options: LoadOptions): Promise<LoadResult> {
  const { concurrency, count, durationMs, rate } = options;
  if (count === undefined && durationMs === undefined) throw new Error("a load level needs count or durationMs");
  const warmup = options.warmup ?? 0;
  // Microseconds, 1 µs to 1 h, 3 significant digits.
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const statuses: Record<string, number> = {};
  const batchSizes: Record<string, number> = {};
  const server = { queue: 0, inference: 0, metrics: 0, total: 0 };
  let issued = 0;
  let measured = 0;
  let firstMeasuredAt: number | undefined;
  let lastAnswerAt = 0;
  const started = performance.now();
  const count1 = (key: string, into: Record<string, number>) => (into[key] = (into[key] ?? 0) + 1);

  /** The next slice's ticket, or undefined when the level is over. */
  const nextTicket = (): Sent | undefined => {
    if (count !== undefined && issued >= warmup + count) return undefined;
    const scheduled = rate === undefined ? performance.now() : started + (issued * 1000) / rate;
    if (durationMs !== undefined && firstMeasuredAt !== undefined && scheduled - firstMeasuredAt >= durationMs) return undefined;
    const ticket = { index: issued, at: scheduled, measured: issued >= warmup };
    if (ticket.measured) {
      if (firstMeasuredAt === undefined) {
        firstMeasuredAt = scheduled;
        options.onMeasuring?.();
      }
      measured++;
    }
    issued++;
    return ticket;
  };

  const stream = async (): Promise<void> => {
    const pending: Sent[] = [];
    async function* indices(): AsyncGenerator<bigint> {
      for (let ticket = nextTicket(); ticket; ticket = nextTicket()) {
        const wait = ticket.at - performance.now();
        if (wait > 0) await sleep(wait);
        if (rate === undefined) ticket.at = performance.now();
        pending.push(ticket);
        yield BigInt(ticket.index);
      }
    }
    const window = rate === undefined ? (options.inFlight ?? 1) : (options.openLoopWindow ?? 64);
    const unanswered = () => pending.map((sent) => BigInt(sent.index));
    for await (const outcome of open(window, indices(), unanswered)) {
      const sent = pending.shift();
      const now = performance.now();
      if (!sent?.measured) continue;
      lastAnswerAt = Math.max(lastAnswerAt, now);
      count1(outcome.status, statuses);
      if (outcome.status !== "OK") continue;
      histogram.recordValue(Math.max(1, Math.round((now - sent.at) * 1000)));
      const timing = outcome.timing;
      if (timing) {
        count1(String(timing.batchSize), batchSizes);
        server.queue += timing.queueMs;
        server.inference += timing.inferenceMs;
        server.metrics += timing.metricsMs;
        server.total += timing.totalMs;
      }
    }
  };

  await Promise.all(Array.from({ length: concurrency }, stream));

  const ok = statuses.OK ?? 0;
  const elapsedS = firstMeasuredAt === undefined ? 0 : Math.max(0, lastAnswerAt - firstMeasuredAt) / 1000;
  const ms = (us: number) => us / 1000;
  // Percentiles are their bucket's upper bound (3 significant digits); the maximum is exact, so it caps them.
  const at = (p: number) => ms(Math.min(histogram.getValueAtPercentile(p), histogram.maxValue));
  const batched = Object.entries(batchSizes).reduce((sum, [size, n]) => sum + Number(size) * n, 0);
  const result: LoadResult = {
    concurrency,
    rate: rate ?? null,
    measured,
    statuses,
    elapsedS,
    throughput: elapsedS > 0 ? ok / elapsedS : 0,
    latencyMs: {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      max: ms(histogram.maxValue),
      mean: ms(histogram.mean),
    },
    latencyCurve: CURVE_PERCENTILES.map((p) => [p, at(p)]),
    batchSizes,
    meanBatchSize: ok > 0 ? batched / ok : 0,
    serverMs: {
      queue: ok > 0 ? server.queue / ok : 0,
      inference: ok > 0 ? server.inference / ok : 0,
      metrics: ok > 0 ? server.metrics / ok : 0,
      total: ok > 0 ? server.total / ok : 0,
    },
  };
  histogram.destroy();
  return result;
}
