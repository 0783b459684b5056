import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { trace, type Tracer } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

export interface TelemetryOptions {
  /** Port of the Prometheus /metrics endpoint; 0 = an ephemeral port, undefined = no endpoint. */
  metricsPort?: number;
  host?: string;
  /** Export traces by OTLP/gRPC here (default: $OTEL_EXPORTER_OTLP_ENDPOINT; none when unset). */
  otlpEndpoint?: string;
  /** Default: the version in package.json. */
  serviceVersion?: string;
}

/** The package's version; this file runs as dist/src/telemetry/telemetry.js, three levels below package.json. */
const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")).version;

/** Labels are low-cardinality on purpose: no stream, slice or patient identifiers. */
export interface Telemetry {
  readonly tracer: Tracer;
  /** Port the /metrics endpoint listens on, if any. */
  readonly metricsPort: number | undefined;
  slice(direction: string, model: string, status: string): void;
  batch(model: string, size: number, inferenceMs: number): void;
  queueWait(model: string, ms: number): void;
  qualityTime(ms: number): void;
  /** One instance's STOW-RS outcome: the HTTP status, or "unreachable", "timeout", "dropped". */
  stow(status: string): void;
  streamOpened(): void;
  streamClosed(): void;
  /** A worker thread died (error, exit), hung past its deadline, or could not be started. */
  workerCrash(pool: string, kind: string): void;
  /** Called at every collection to read each model's queue depth. */
  observeQueueDepth(read: () => Iterable<[model: string, depth: number]>): void;
  /** Called at every collection to read the inference workers ready to run a batch. */
  observeReadyWorkers(read: () => number): void;
  /** Called at every collection to read the slice bytes admitted and not yet answered, all streams. */
  observeInflightBytes(read: () => number): void;
  shutdown(): Promise<void>;
}

const MS_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

/**
 * OpenTelemetry metrics served in Prometheus format, and a tracer that exports
 * by OTLP only when an endpoint is configured (a no-op tracer otherwise, so
 * the hot path pays nothing). Each server gets its own providers, so several
 * servers in one process (tests, benchmarks) keep separate counts.
 */
export async function startTelemetry(options: TelemetryOptions = {}): Promise<Telemetry> {
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: "medsynth",
    [ATTR_SERVICE_VERSION]: options.serviceVersion ?? PACKAGE_VERSION,
  });
  const exporter = options.metricsPort === undefined ? undefined : new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ resource, readers: exporter ? [exporter] : [] });
  const meter = meterProvider.getMeter("medsynth");

  let httpServer: Server | undefined;
  let metricsPort: number | undefined;
  if (exporter) {
    httpServer = createServer((request, response) => {
      if (request.url?.split("?")[0] === "/metrics") exporter.getMetricsRequestHandler(request, response);
      else response.writeHead(404).end("see /metrics\n");
    });
    await new Promise<void>((resolve, reject) => {
      httpServer!.once("error", reject);
      httpServer!.listen(options.metricsPort, options.host ?? "0.0.0.0", resolve);
    });
    metricsPort = (httpServer.address() as AddressInfo).port;
  }

  const endpoint = options.otlpEndpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const tracerProvider = endpoint
    ? new NodeTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }))] })
    : undefined;
  const tracer = tracerProvider ? tracerProvider.getTracer("medsynth") : trace.getTracer("medsynth");

  const slices = meter.createCounter("medsynth_slices", { description: "Slices answered, by direction, model and gRPC status" });
  const streams = meter.createCounter("medsynth_streams", { description: "Translate streams opened" });
  const stows = meter.createCounter("medsynth_stow", { description: "Derived DICOM instances sent by STOW-RS, by outcome (HTTP status, unreachable, timeout, dropped)" });
  const activeStreams = meter.createUpDownCounter("medsynth_streams_active", { description: "Translate streams open now" });
  const queueWait = meter.createHistogram("medsynth_queue_wait_ms", {
    description: "From a slice's arrival to the start of its batch's inference",
    unit: "ms",
    advice: { explicitBucketBoundaries: MS_BUCKETS },
  });
  const inference = meter.createHistogram("medsynth_inference_ms", {
    description: "Inference time per batch",
    unit: "ms",
    advice: { explicitBucketBoundaries: MS_BUCKETS },
  });
  const batchSize = meter.createHistogram("medsynth_batch_size", {
    description: "Slices per inference batch",
    advice: { explicitBucketBoundaries: [1, 2, 4, 8, 16, 32, 64] },
  });
  const qualityMs = meter.createHistogram("medsynth_quality_metrics_ms", {
    description: "Time to compute PSNR, SSIM, UQI, VIF and MAE for one slice",
    unit: "ms",
    advice: { explicitBucketBoundaries: MS_BUCKETS },
  });
  const queueDepth = meter.createObservableGauge("medsynth_queue_depth", { description: "Slices waiting for a batch, per model" });
  const crashes = meter.createCounter("medsynth_worker_crashes", {
    description: "Worker threads that died (kind error or exit), hung past their deadline (deadline) or could not be started (setup), by pool",
  });
  const readyWorkers = meter.createObservableGauge("medsynth_inference_workers_ready", { description: "Inference workers ready to run a batch" });
  const inflightBytes = meter.createObservableGauge("medsynth_inflight_bytes", {
    description: "Declared decoded bytes of the slices admitted and not yet answered, all streams",
    unit: "By",
  });

  return {
    tracer,
    metricsPort,
    slice: (direction, model, status) => slices.add(1, { direction, model, status }),
    batch: (model, size, ms) => {
      batchSize.record(size, { model });
      inference.record(ms, { model });
    },
    queueWait: (model, ms) => queueWait.record(ms, { model }),
    qualityTime: (ms) => qualityMs.record(ms),
    stow: (status) => stows.add(1, { status }),
    streamOpened: () => {
      streams.add(1);
      activeStreams.add(1);
    },
    streamClosed: () => activeStreams.add(-1),
    workerCrash: (pool, kind) => crashes.add(1, { pool, kind }),
    observeQueueDepth: (read) =>
      queueDepth.addCallback((result) => {
        for (const [model, depth] of read()) result.observe(depth, { model });
      }),
    observeReadyWorkers: (read) => readyWorkers.addCallback((result) => result.observe(read())),
    observeInflightBytes: (read) => inflightBytes.addCallback((result) => result.observe(read())),
    shutdown: async () => {
      await Promise.all([meterProvider.shutdown(), tracerProvider?.shutdown()]);
      if (httpServer) await new Promise<void>((resolve) => httpServer!.close(() => resolve()));
    },
  };
}
