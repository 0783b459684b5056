/**
 * A slice's own CPU work on worker threads, before and after inference:
 * decoding (RAW, PNG, DICOM), validation, resampling to the model's size,
 * windows and percentiles, then mapping the output back and encoding it.
 * About 1 ms for a 256² slice and far more for large or compressed ones:
 * time the event loop must not spend, and the work that spreads over cores
 * (--transform-workers) while batches still form on the event loop across
 * every stream.
 */
import { ownsBuffer } from "../contract/wire.js";
import { SliceFault } from "../contract/slice-errors.js";
import type { Encoding, Image } from "../gen/medsynth/v1/translator_pb.js";
import type { DicomSource } from "../imaging/dicom.js";
import type { Raster } from "../imaging/raster.js";
import type { Range } from "../imaging/window.js";
import { movable, movableRaster, WorkerPool, type Pooled } from "../workers/worker-pool.js";
import type { TransformSpec } from "./transforms.js";

export interface TransformPoolOptions {
  /** Worker threads. */
  readonly workers?: number;
}

export const DEFAULT_TRANSFORM_POOL_OPTIONS: Required<TransformPoolOptions> = { workers: 1 };

/** A received slice's images, as the worker decodes them. */
export interface SliceImages {
  /** Its bytes travel to the worker (the message's buffer moves when nothing else uses it, see ownsBuffer()). */
  readonly image: Image | undefined;
  readonly reference: Image | undefined;
  /** Frame of a multi-frame DICOM instance. */
  readonly frame: number | undefined;
  /** Largest accepted width or height. */
  readonly maxDimension: number;
}

export interface Prepared {
  /** The model input (C×H×W in [-1, 1]); the decoded pixels became it. */
  readonly input: Float32Array;
  /** The decoded slice's size, which the output is resized back to. */
  readonly size: { readonly width: number; readonly height: number };
  /** Which encoding the slice came in, so the answer can default to it. */
  readonly encoding: Encoding;
  /** For ENCODING_DICOM: what a derived instance needs from the source. Holds patient data: never log it. */
  readonly dicom: DicomSource | undefined;
  /** The decoded reference, in physical units. */
  readonly reference: Raster | undefined;
  /** The worker's time decoding, part of its compute time. */
  readonly decodeMs: number;
  /** The model input is flat (nothing in the input window's range): no anatomy to translate (pipeline.ts, background). */
  readonly blank: boolean;
}

export interface Finished {
  /** The synthetic slice encoded (RAW or PNG); undefined for DICOM, which the stream's derived series encodes. */
  readonly image: Image | undefined;
  /** The synthetic slice in physical units at the source size, when asked for (metrics, DICOM). */
  readonly synthetic: Raster | undefined;
  /** The physical range the model's [-1, 1] was mapped onto (the metrics' target window). */
  readonly range: Range;
  /** The reference, handed back (its buffer went to the worker and returned). */
  readonly reference: Raster | undefined;
  /** The worker's time encoding, part of its compute time. */
  readonly encodeMs: number;
}

/** What transform-worker.js serves. */
export type TransformMethods = {
  /** Decode and check the slice (and its reference), then normalise it for the model. */
  prepare: { request: { readonly slice: SliceImages; readonly spec: TransformSpec }; reply: Prepared };
  /** Map one model output back to physical units at the source size, then encode it. */
  finish: {
    request: {
      readonly output: Float32Array;
      readonly channels: number;
      readonly spec: TransformSpec;
      /** Travels there and back: the output range of an MR model comes from its percentiles. */
      readonly reference: Raster | undefined;
      readonly size: { readonly width: number; readonly height: number };
      /** RAW or PNG: encoded there; DICOM: left to the caller, with the synthetic raster. */
      readonly encoding: Encoding;
      /** Also return the synthetic raster (for the metrics). */
      readonly keepSynthetic: boolean;
    };
    reply: Finished;
  };
};

export class TransformPool {
  readonly workers: WorkerPool<TransformMethods>;

  constructor({ workers = DEFAULT_TRANSFORM_POOL_OPTIONS.workers }: TransformPoolOptions = {}) {
    this.workers = new WorkerPool(new URL("./transform-worker.js", import.meta.url), { name: "TransformPool", workers });
  }

  /**
   * Decodes, checks and normalises a slice on a worker. A problem with the
   * slice rejects with its SliceFault. The images' bytes move to the worker:
   * a received message's buffer is transferred whole (its views here are
   * detached), as is any other array that spans its own buffer; the rest
   * are copied first (see movable()).
   */
  prepare(slice: SliceImages, spec: TransformSpec): Promise<Pooled<Prepared>> {
    const transfer: ArrayBuffer[] = [];
    const movableImage = (image: Image | undefined) => image && { ...image, data: movable(image.data, transfer, ownsBuffer(image.data)) };
    const request = { slice: { ...slice, image: movableImage(slice.image), reference: movableImage(slice.reference) }, spec: pick(spec) };
    return this.workers.call("prepare", request, transfer).catch(asSliceFault);
  }

  /**
   * outputRange(), fromModelOutput() and, for RAW and PNG, the encoding, on
   * a worker. `output` and the reference's buffer move there; the reference
   * comes back in the result.
   */
  finish(
    output: Float32Array,
    channels: number,
    spec: TransformSpec,
    reference: Raster | undefined,
    size: { width: number; height: number },
    { encoding, keepSynthetic }: { encoding: Encoding; keepSynthetic: boolean },
  ): Promise<Pooled<Finished>> {
    const transfer: ArrayBuffer[] = [];
    const request = {
      output: movable(output, transfer),
      channels,
      spec: pick(spec),
      reference: reference && movableRaster(reference, transfer),
      size: { width: size.width, height: size.height }, // only the numbers, even when given a Raster
      encoding,
      keepSynthetic,
    };
    return this.workers.call("finish", request, transfer).catch(asSliceFault);
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}

/** Only what the transforms read, not the whole manifest (paths, provenance). */
function pick(spec: TransformSpec): TransformSpec {
  return { name: spec.name, direction: spec.direction, input: spec.input, intensity: spec.intensity };
}

/** A SliceFault thrown on the worker arrives as an Error with its name, message, code, field and detail: made one again. */
function asSliceFault(error: Error & Partial<Pick<SliceFault, "code" | "field" | "detail">>): never {
  if (error.name !== "SliceFault" || error.code === undefined || error.field === undefined || error.detail === undefined) throw error;
  throw new SliceFault(error.code, error.field, error.detail);
}
