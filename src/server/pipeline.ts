import { create } from "@bufbuild/protobuf";
import { defer, finalize, from, map, of, switchMap, type Observable } from "rxjs";
import { context, trace, type Span, type Tracer } from "@opentelemetry/api";
import type { Batched, MicroBatcher } from "../batcher/micro-batcher.js";
import {
  Encoding,
  QualitySchema,
  SliceResultSchema,
  TimingSchema,
  type Image,
  type Slice,
  type SliceResult,
} from "../gen/medsynth/v1/translator_pb.js";
import { encodeImage } from "../imaging/codec.js";
import type { DerivedSeries, DerivedSlice } from "../imaging/dicom.js";
import type { Raster } from "../imaging/raster.js";
import { unavailableMetrics, type QualityReport, type QualityValues, type TargetWindow } from "../quality/quality.js";
import type { ModelSpec } from "../inference/registry.js";
import type { ModelOutput } from "../inference/runner.js";
import type { Prepared, TransformPool } from "../inference/transform-pool.js";
import type { StageTimes } from "./stage-times.js";

/** Computes Quality off the event loop; may take ownership of the rasters' buffers. */
export type QualityFn = (
  synthetic: Raster,
  reference: Raster,
  target: TargetWindow,
  foreground: boolean,
) => Promise<QualityReport & { computeMs: number }>;

/** What one stream (or one TranslateSlice call) translates with. */
export interface StreamContext {
  model: ModelSpec;
  batcher: MicroBatcher<Float32Array, ModelOutput>;
  /** UNSPECIFIED answers in the input's encoding. */
  outputEncoding: Encoding;
  foreground: boolean;
  /** The stream's derived series: every DICOM answer is an instance of it. */
  derivedSeries: DerivedSeries;
}

export interface PipelineDeps {
  maxDimension: number;
  /** A slice's decoding, checks, normalising, denormalising and encoding, off the event loop. */
  transforms: Pick<TransformPool, "prepare" | "finish">;
  quality: QualityFn;
  /** CPU time per stage (bench --ceiling reads it). */
  stages: StageTimes;
  tracer: Tracer;
  onQueueWait(model: string, ms: number): void;
  onQualityTime(ms: number): void;
  /** With --stow-url: takes each translated slice's derived DICOM instance (whatever the answer's encoding) to store it. */
  store?: (instance: Uint8Array, index: bigint) => void;
}

interface Queued extends Prepared {
  submittedAt: number;
}

/**
 * One slice, one way: decode → validate → normalise → queue → batch →
 * inference → denormalise → resize back → encode → metrics. Cold: nothing
 * happens until subscribed, and unsubscribing (a cancelled stream) takes the
 * slice out of the queue if it has not reached a batch yet.
 */
export function translateSlice(deps: PipelineDeps, ctx: StreamContext, slice: Slice): Observable<SliceResult> {
  const arrivedAt = performance.now();
  return defer(() => {
    const span = deps.tracer.startSpan("medsynth.slice", {
      attributes: { "medsynth.model": ctx.model.name, "medsynth.index": Number(slice.index) },
    });
    return from(prepare(deps, ctx, slice)).pipe(
      switchMap((prepared) =>
        prepared.blank
          ? of({ prepared, batched: background(ctx.model) })
          : ctx.batcher.submit(prepared.input).pipe(map((batched) => ({ prepared, batched }))),
      ),
      switchMap(({ prepared, batched }) => {
        const dispatchedAt = prepared.submittedAt + batched.queuedMs;
        childSpan(deps.tracer, span, "queue", arrivedAt, dispatchedAt);
        childSpan(deps.tracer, span, "inference", dispatchedAt, dispatchedAt + batched.value.inferenceMs);
        deps.onQueueWait(ctx.model.name, dispatchedAt - arrivedAt);
        return from(
          finish(deps, ctx, slice, prepared, batched.value, span, {
            queueMs: dispatchedAt - arrivedAt,
            inferenceMs: batched.value.inferenceMs,
            batchSize: batched.batchSize,
            arrivedAt,
          }),
        );
      }),
      finalize(() => span.end()),
    );
  });
}

/**
 * A blank slice (flat as the model sees it: zero padding, a slice outside the head) has no anatomy to
 * translate, and on such a featureless input the generators draw bright artefacts along the edges. It is not
 * sent to the model: its answer is the output range's low end, the target's background (batch size 0).
 */
function background(model: ModelSpec): Batched<ModelOutput> {
  const { width, height } = model.input;
  const { channels } = model.output;
  return { value: { output: new Float32Array(channels * width * height).fill(-1), channels, inferenceMs: 0 }, queuedMs: 0, batchSize: 0 };
}

async function prepare(deps: PipelineDeps, ctx: StreamContext, slice: Slice): Promise<Queued> {
  const images = { image: slice.image, reference: slice.reference, frame: slice.frame, maxDimension: deps.maxDimension };
  const { value, computeMs } = await deps.transforms.prepare(images, ctx.model);
  deps.stages.add("decode", value.decodeMs, "workers");
  deps.stages.add("normalise", computeMs - value.decodeMs, "workers");
  return { ...value, submittedAt: performance.now() };
}

async function finish(
  deps: PipelineDeps,
  ctx: StreamContext,
  slice: Slice,
  prepared: Queued,
  output: ModelOutput,
  span: Span,
  timing: { queueMs: number; inferenceMs: number; batchSize: number; arrivedAt: number },
): Promise<SliceResult> {
  const encoding = ctx.outputEncoding === Encoding.UNSPECIFIED ? prepared.encoding : ctx.outputEncoding;
  const reference = prepared.reference;
  const finished = await deps.transforms.finish(output.output, output.channels, ctx.model, reference, prepared.size, {
    encoding,
    // The synthetic pixels come back for the metrics and for the stored DICOM instance.
    keepSynthetic: reference !== undefined || deps.store !== undefined,
  });
  const { range, encodeMs, synthetic } = finished.value;
  deps.stages.add("denormalise", finished.computeMs - encodeMs, "workers");
  deps.stages.add("encode", encodeMs, "workers");
  const source = prepared.dicom;
  // Without a DICOM source the slices are numbered in the order the caller indexed them.
  const derived = { source, instanceNumber: source ? undefined : Number(slice.index) + 1 };
  const image = finished.value.image ?? (await encodeDicom(deps, ctx, derived, synthetic!));
  // Before the metrics: the metrics pool takes the synthetic buffer by transfer.
  const stored = deps.store && (encoding === Encoding.DICOM ? image.data : ctx.derivedSeries.encode(synthetic!, derived));
  let metricsMs = 0;
  let quality;
  let foregroundQuality;
  if (finished.value.reference) {
    const started = performance.now();
    // The output was mapped into the target window just above (for MR: the
    // reference's percentiles); hand that range on rather than resolving it again.
    const report = await deps.quality(synthetic!, finished.value.reference, { window: "fixed", low: range.low, high: range.high }, ctx.foreground);
    metricsMs = performance.now() - started;
    deps.stages.add("metrics", report.computeMs, "workers");
    childSpan(deps.tracer, span, "metrics", started, started + metricsMs);
    deps.onQualityTime(metricsMs);
    quality = qualityMessage(report.quality, synthetic, "image");
    if (report.foreground) foregroundQuality = qualityMessage(report.foreground, report.foregroundBox, "foreground box");
  }
  if (stored) deps.store!(stored, slice.index);
  return create(SliceResultSchema, {
    index: slice.index,
    image,
    quality,
    foregroundQuality,
    model: ctx.model.name,
    timing: create(TimingSchema, {
      queueMs: timing.queueMs,
      inferenceMs: timing.inferenceMs,
      batchSize: timing.batchSize,
      totalMs: performance.now() - timing.arrivedAt,
      metricsMs,
    }),
  });
}

/** The synthetic slice as an instance of the stream's derived series (which numbers its instances, so here, not on a worker). */
async function encodeDicom(deps: PipelineDeps, ctx: StreamContext, slice: DerivedSlice, synthetic: Raster): Promise<Image> {
  const started = performance.now();
  const image = await encodeImage(synthetic, Encoding.DICOM, { series: ctx.derivedSeries, slice });
  deps.stages.add("encode", performance.now() - started, "main");
  return image;
}

/** The Quality message: a metric that is NaN (not defined for this image) is absent, and `unavailable` says why. */
function qualityMessage(values: QualityValues, size: { width: number; height: number } | undefined, what: "image" | "foreground box") {
  const defined = Object.fromEntries(Object.entries(values).filter(([, value]) => !Number.isNaN(value)));
  return create(QualitySchema, { ...defined, unavailable: unavailableMetrics(values, size, what) });
}

/** A finished child span for a stage measured with performance.now() times. */
function childSpan(tracer: Tracer, parent: Span, name: string, start: number, end: number): void {
  if (!parent.isRecording()) return;
  const origin = performance.timeOrigin;
  const parentContext = trace.setSpan(context.active(), parent);
  tracer.startSpan(`medsynth.${name}`, { startTime: origin + start }, parentContext).end(origin + end);
}
