/**
 * Pre- and post-processing of slices on worker threads: decoding (a
 * deflated or JPEG 2000 DICOM, a large PNG can take seconds), resampling to
 * the model's size, windowing and percentiles (about 10 ms for a 512² slice,
 * 0.7 s for a 4096² one): time the event loop must not spend.
 */
import { SliceFault } from "../contract/slice-errors.js";
import type { Encoding, Image, Slice } from "../gen/medsynth/v1/translator_pb.js";
import type { DicomSource } from "../imaging/dicom.js";
import type { Raster } from "../imaging/raster.js";
import type { Range } from "../imaging/window.js";
import { movable, movableRaster, WorkerPool } from "../workers/worker-pool.js";
import type { TransformSpec } from "./transforms.js";

export interface TransformPoolOptions {
  /** Worker threads. */
  readonly workers?: number;
}

export const DEFAULT_TRANSFORM_POOL_OPTIONS: Required<TransformPoolOptions> = { workers: 1 };

/** A slice decoded, checked and normalised for its model. */
export interface Prepared {
  /** The model input (C×H×W in [-1, 1]). */
  readonly input: Float32Array;
  /** The source image's size, which the output is resized back to. */
  readonly size: { readonly width: number; readonly height: number };
  /** Which encoding the image came in, so the answer can default to it. */
  readonly encoding: Encoding;
  /** For a DICOM image: what a derived instance needs from it. Holds patient data: never log it. */
  readonly dicom: DicomSource | undefined;
  /** The reference, decoded, when the slice has one. */
  readonly reference: Raster | undefined;
}

export interface Denormalised {
  /** The synthetic slice in physical units at the source size. */
  readonly synthetic: Raster;
  /** The physical range the model's [-1, 1] was mapped onto (the metrics' target window). */
  readonly range: Range;
  /** The reference, handed back (its buffer went to the worker and returned). */
  readonly reference: Raster | undefined;
}

/** What transform-worker.js serves. */
export type TransformMethods = {
  prepare: {
    request: {
      readonly image: Image | undefined;
      readonly reference: Image | undefined;
      readonly frame: number | undefined;
      readonly maxDimension: number;
      readonly spec: TransformSpec;
    };
    reply: Prepared;
  };
  denormalise: {
    request: {
      readonly output: Float32Array;
      readonly channels: number;
      readonly spec: TransformSpec;
      /** Travels there and back: the output range of an MR model comes from its percentiles. */
      readonly reference: Raster | undefined;
      /** The source slice's size, which the output is resized back to. */
      readonly size: { readonly width: number; readonly height: number };
    };
    reply: Denormalised;
  };
};

export class TransformPool {
  readonly workers: WorkerPool<TransformMethods>;

  constructor({ workers = DEFAULT_TRANSFORM_POOL_OPTIONS.workers }: TransformPoolOptions = {}) {
    this.workers = new WorkerPool(new URL("./transform-worker.js", import.meta.url), { name: "TransformPool", workers });
  }

  /**
   * On a worker: decodes the slice's image and reference (see decodeImage),
   * checks they match, and makes the model input (toModelInput). A bad slice
   * rejects with its SliceFault. The images' bytes move to the worker: a
   * message's own buffer (as the server deserializes every request) is
   * transferred and detached here; a small or shared one is copied.
   */
  async prepare(slice: Slice, spec: TransformSpec, maxDimension: number): Promise<Prepared> {
    const transfer: ArrayBuffer[] = [];
    for (const image of [slice.image, slice.reference]) {
      const buffer = image?.data.buffer;
      // A Buffer from Node's pool shares its ArrayBuffer (poolSize bytes) with others: never move that one.
      if (buffer instanceof ArrayBuffer && buffer.byteLength > Buffer.poolSize && !transfer.includes(buffer)) transfer.push(buffer);
    }
    const request = { image: slice.image, reference: slice.reference, frame: slice.frame, maxDimension, spec: pick(spec) };
    try {
      return (await this.workers.call("prepare", request, transfer)).value;
    } catch (error) {
      throw asSliceFault(error);
    }
  }

  /**
   * outputRange() and fromModelOutput() on a worker. `output` may be a view
   * into a batch (it is copied then); the reference's buffer is borrowed and
   * comes back in the result.
   */
  async denormalise(
    output: Float32Array,
    channels: number,
    spec: TransformSpec,
    reference: Raster | undefined,
    size: { width: number; height: number },
  ): Promise<Denormalised> {
    const transfer: ArrayBuffer[] = [];
    const request = {
      output: movable(output, transfer),
      channels,
      spec: pick(spec),
      reference: reference && movableRaster(reference, transfer),
      size: { width: size.width, height: size.height }, // only the numbers, even when given a Raster
    };
    return (await this.workers.call("denormalise", request, transfer)).value;
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}

/** A SliceFault thrown on the worker arrives as an Error with its name, message and code: made one again. */
function asSliceFault(error: unknown): unknown {
  const { name, code, message } = error as { name?: string; code?: number; message: string };
  if (name !== "SliceFault" || code === undefined) return error;
  const at = message.indexOf(": ");
  return new SliceFault(code, message.slice(0, at), message.slice(at + 2));
}

/** Only what the transforms read, not the whole manifest (paths, provenance). */
function pick(spec: TransformSpec): TransformSpec {
  return { input: spec.input, intensity: spec.intensity };
}
