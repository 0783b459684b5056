import { Server, ServerCredentials } from "@grpc/grpc-js";
import { asyncScheduler, firstValueFrom, from, map, of, race, switchMap, tap, timer, type SchedulerLike } from "rxjs";
import { MicroBatcher } from "../batcher/micro-batcher.js";
import { WorkerSlots } from "../batcher/worker-slots.js";
import { addService } from "../contract/service.js";
import { file_grpc_health_v1_health, Health } from "../gen/grpc/health/v1/health_pb.js";
import { file_medsynth_v1_translator, Translator } from "../gen/medsynth/v1/translator_pb.js";
import { OrtWorkerPool } from "../inference/ort-pool.js";
import { loadModelSpecs } from "../inference/registry.js";
import { QualityPool } from "../quality/quality-pool.js";
import { TransformPool } from "../inference/transform-pool.js";
import { inferenceRunner, type ModelOutput } from "../inference/runner.js";
import { startTelemetry } from "../telemetry/telemetry.js";
import { StowSender, stowAuthorization } from "../dicomweb/stow.js";
import { InFlightBudget } from "./admission.js";
import { DEFAULT_CONFIG, type ServerConfig } from "./config.js";
import { HealthService, ServingStatus } from "./health.js";
import { callSlots, serverChannelOptions, streamLimiter } from "./limits.js";
import { createLogger, type Logger } from "./log.js";
import type { QualityFn } from "./pipeline.js";
import { addReflection } from "./reflection.js";
import { healthOnlyInterceptor, loadAuthTokens, serverCredentials, serverTls, tokenAuthInterceptor } from "./security.js";
import { StageTimes, timedCodec, type StageTotals } from "./stage-times.js";
import { statusGuard } from "./statuses.js";
import { TranslatorService } from "./translator.js";
import { startWebPort } from "./web.js";

/**
 * Past the drain timeout, how long open streams may take to answer the slices
 * they accepted (at most a window each, already queued) before they are cut.
 */
const DRAIN_ANSWER_GRACE_MS = 5_000;

export interface RunningServer {
  /** The bound gRPC port (useful with port 0). */
  readonly port: number;
  /** "host:port" to dial. */
  readonly address: string;
  /** The web port (Connect, gRPC-Web, gRPC, the viewer), if it is on. */
  readonly webPort: number | undefined;
  /** The /metrics port, if the endpoint is on. */
  readonly metricsPort: number | undefined;
  /** "cpu" or "cuda:<id>". */
  readonly executionProvider: string;
  /** Streams open now. */
  readonly openStreams: number;
  /** Derived instances waiting to be stored by STOW-RS, or being sent. */
  flushStores(): Promise<void>;
  /** Slices waiting for a batch, all models together. */
  readonly queueDepth: number;
  /** CPU ms per stage since start, main thread and workers (see StageTimes). */
  stageTotals(): StageTotals;
  /** Declared decoded bytes of the slices admitted and not yet answered, all streams. */
  readonly inflightBytes: number;
  /**
   * Graceful stop: health NOT_SERVING, new calls refused with UNAVAILABLE,
   * open streams finish (up to drainTimeoutMs, then ended with UNAVAILABLE),
   * then everything is released.
   */
  drain(): Promise<void>;
  /** Immediate stop: open calls are cancelled. */
  close(): Promise<void>;
}

export interface ServerHooks {
  log?: Logger;
  /** Clock and timers of the batchers, the batch deadlines, the stream idle timeout and the drain deadline (default asyncScheduler). */
  scheduler?: SchedulerLike;
  /** The inference worker script (default: OrtWorkerPool's own; tests wrap it to inject faults). */
  inferenceWorker?: URL;
}

/** Loads the models, warms up the workers, then binds and reports SERVING. */
export async function startServer(overrides: Partial<ServerConfig> = {}, hooks: ServerHooks = {}): Promise<RunningServer> {
  const config: ServerConfig = { ...DEFAULT_CONFIG, ...overrides };
  const log = hooks.log ?? createLogger(config.logLevel);
  const scheduler = hooks.scheduler ?? asyncScheduler;
  // Bad TLS or token files fail here, before the slow model loading.
  const tls = serverTls(config);
  const tokens = config.authTokensFile ? loadAuthTokens(config.authTokensFile) : undefined;
  const stowAuth = stowAuthorization({ token: config.stowToken, basicAuthFile: config.stowBasicAuthFile });
  const models = await loadModelSpecs(config.modelsDir);
  const pool = await OrtWorkerPool.start(models, {
    workers: config.workers,
    device: config.device,
    deviceId: config.deviceId,
    maxBatch: config.maxBatch,
    batchDeadlineFactor: config.batchDeadlineFactor,
    batchDeadlineMinMs: config.batchDeadlineMinMs,
    scheduler,
    script: hooks.inferenceWorker,
  });
  if (pool.fallbackReason) log.warn("CUDA unavailable, running on CPU", { reason: pool.fallbackReason });
  for (const placed of pool.placement) log.info("node placement", { ...placed });
  log.info("inference ready", {
    executionProvider: pool.executionProvider,
    workers: pool.size,
    models: models.map((m) => ({ name: m.name, direction: m.direction, default: m.isDefault })),
  });
  const telemetry = await startTelemetry({
    metricsPort: config.metricsPort === 0 ? undefined : config.metricsPort,
    host: config.host,
  });

  const stages = new StageTimes();
  const slots = new WorkerSlots(pool.size);
  const batchers = new Map<string, MicroBatcher<Float32Array, ModelOutput>>();
  for (const model of models) {
    const run = inferenceRunner(pool, model);
    const measured = async (items: readonly Float32Array[]) => {
      // Until its first await, run() stacks the batch and posts it to a worker.
      const outputs = await stages.time("queue", () => run(items));
      const inferenceMs = outputs[0]?.inferenceMs ?? 0;
      telemetry.batch(model.name, items.length, inferenceMs);
      stages.add("inference", inferenceMs, "workers");
      return outputs;
    };
    batchers.set(model.name, new MicroBatcher(measured, slots, { ...config, scheduler }));
  }
  telemetry.observeQueueDepth(() => [...batchers].map(([name, batcher]) => [name, batcher.depth]));

  const stow = config.stowUrl
    ? new StowSender({ url: config.stowUrl, authorization: stowAuth, retries: config.stowRetries, scheduler }, (outcome) => {
        telemetry.stow(outcome.status);
        if (outcome.ok) log.debug("stored", { index: outcome.label, attempts: outcome.attempts });
        else log.warn("STOW-RS store failed; the slice was answered", { index: outcome.label, status: outcome.status, reason: outcome.reason, attempts: outcome.attempts });
      })
    : undefined;
  const qualityPool = new QualityPool({ workers: config.metricsWorkers });
  const transforms = new TransformPool({ workers: config.transformWorkers });
  // Like the models, the per-slice workers are up before the first slice can arrive.
  await Promise.all([qualityPool.workers.ready, transforms.workers.ready]);
  const quality: QualityFn = (synthetic, reference, target, foreground) =>
    qualityPool.compute(synthetic, reference, target, { foreground });
  const budget = new InFlightBudget(config);
  telemetry.observeInflightBytes(() => budget.inflightBytes);
  const translator = new TranslatorService({
    models,
    batchers,
    admissions: budget,
    maxMessageBytes: config.maxMessageBytes,
    executionProvider: pool.executionProvider,
    dicom: { uidRoot: config.dicomUidRoot, deidentify: config.deidentify === "basic-profile" },
    telemetry,
    log,
    pipeline: {
      maxDimension: config.maxDimension,
      transforms,
      quality,
      stages,
      tracer: telemetry.tracer,
      onQueueWait: telemetry.queueWait,
      onQualityTime: telemetry.qualityTime,
      store: stow && ((instance, index) => stow.store(instance, String(index))),
    },
  });
  const health = new HealthService([Translator.typeName]);
  // SERVING once bound, until the drain, while at least one inference worker is alive (each serves every model).
  let bound = false;
  let released = false;
  let readyWorkers = pool.size;
  const updateHealth = () => health.setAll(bound && readyWorkers > 0 ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
  telemetry.observeReadyWorkers(() => readyWorkers);
  pool.workers.readyWorkers.subscribe((ready) => {
    if (released) return;
    if (ready === 0) log.error("no inference worker is alive: health is NOT_SERVING until one is ready", { workers: pool.size });
    else if (ready > readyWorkers) log.info("inference worker ready", { ready, workers: pool.size });
    readyWorkers = ready;
    // A pool that can start no more workers fails every batch at once: one slot lets the queued batches reach it, so their slices are answered.
    slots.resize(pool.workers.isEnded ? 1 : ready);
    updateHealth();
  });
  for (const crashes of [pool.workers.crashes, transforms.workers.crashes, qualityPool.workers.crashes]) {
    crashes.subscribe((crash) => {
      telemetry.workerCrash(crash.pool, crash.kind);
      log.error("worker crashed, replacing it", { pool: crash.pool, kind: crash.kind, detail: crash.detail });
    });
  }

  // Filled once the health-only port is bound; calls there may only be health checks.
  const healthPorts = new Set<number>();
  // One count of open calls for both ports: the limits hold per client, whichever port it calls.
  const calls = callSlots(config);
  const server = new Server({
    ...serverChannelOptions(config),
    // In order: statuses (it must see grpc-js's own call), probe-port guard, authentication, stream limits
    // (unauthenticated calls take no slot), then the in-flight budget (it holds slices back).
    interceptors: [
      statusGuard,
      healthOnlyInterceptor(healthPorts),
      ...(tokens ? [tokenAuthInterceptor(tokens)] : []),
      streamLimiter(calls, config, scheduler),
      budget.interceptor,
    ],
  });
  addService(server, Translator, translator.implementation, (method) => timedCodec(method, stages));
  addService(server, Health, health.implementation);
  addReflection(server, [file_medsynth_v1_translator, file_grpc_health_v1_health]);

  const bind = (port: number, portCredentials: ServerCredentials) =>
    new Promise<number>((resolve, reject) =>
      server.bindAsync(`${config.host}:${port}`, portCredentials, (error, bound) => (error ? reject(error) : resolve(bound))),
    );
  const port = await bind(config.port, serverCredentials(tls));
  if (config.healthPort > 0) healthPorts.add(await bind(config.healthPort, ServerCredentials.createInsecure()));
  const web =
    config.webPort > 0
      ? await startWebPort(
          {
            host: config.host,
            port: config.webPort,
            corsOrigins: config.webCorsOrigins.split(",").map((origin) => origin.trim()).filter(Boolean),
            maxMessageBytes: config.maxMessageBytes,
          },
          { translator, health, slots: calls, tokens, tls, log },
        )
      : undefined;
  bound = true;
  updateHealth();
  log.info("listening", {
    port,
    metricsPort: telemetry.metricsPort,
    healthPort: config.healthPort || undefined,
    webPort: web?.port,
    webCorsOrigins: config.webCorsOrigins || undefined,
    tls: config.tlsClientCa ? "mutual" : config.tlsCert ? "server" : "off",
    stow: config.stowUrl ? { auth: config.stowToken ? "token" : config.stowBasicAuthFile ? "basic" : "none", retries: config.stowRetries } : undefined,
    authTokens: tokens?.size ?? 0,
  });

  const release = async () => {
    released = true;
    stow?.close();
    await Promise.all([pool.close(), qualityPool.close(), transforms.close()]);
    await telemetry.shutdown();
  };
  let stopping: Promise<void> | undefined;
  return {
    port,
    address: `${config.host === "0.0.0.0" ? "127.0.0.1" : config.host}:${port}`,
    webPort: web?.port,
    metricsPort: telemetry.metricsPort,
    executionProvider: pool.executionProvider,
    get openStreams() {
      return translator.openStreams;
    },
    flushStores: () => stow?.flush() ?? Promise.resolve(),
    get queueDepth() {
      return [...batchers.values()].reduce((sum, b) => sum + b.depth, 0);
    },
    stageTotals: () => stages.snapshot(),
    get inflightBytes() {
      return budget.inflightBytes;
    },
    drain: () =>
      (stopping ??= (async () => {
        log.info("draining", { openStreams: translator.openStreams });
        bound = false;
        updateHealth();
        const timedOut = `server is shutting down; the drain timeout of ${config.drainTimeoutMs} ms passed`;
        // At the deadline the open streams take no more slices and end once those they accepted are answered;
        // a stream whose answers still cannot be written a grace period later (a client that stopped reading) is cut.
        const deadline = timer(config.drainTimeoutMs, scheduler).pipe(
          tap(() => {
            log.warn("drain timeout, ending open streams after their accepted slices", { openStreams: translator.openStreams });
            translator.endAll(timedOut);
          }),
          switchMap(() => timer(DRAIN_ANSWER_GRACE_MS, scheduler)),
          map(() => {
            log.warn("drain answer grace passed, ending open streams", { openStreams: translator.openStreams });
            translator.abortAll(timedOut);
          }),
        );
        await firstValueFrom(race(from(translator.drain()), deadline));
        health.endWatches();
        // Open unary calls (on either port) finish first; past the drain timeout the web port's connections are ended.
        const webClosed = web ? race(from(web.close()), timer(config.drainTimeoutMs, scheduler).pipe(map(() => web.destroy()))) : of(undefined);
        await Promise.all([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), firstValueFrom(webClosed)]);
        // Every answered slice's instance gets its store attempts (and their retries) before the exit.
        await stow?.flush();
        await release();
        log.info("drained");
      })()),
    close: () =>
      (stopping ??= (async () => {
        server.forceShutdown();
        web?.destroy();
        await release();
      })()),
  };
}
