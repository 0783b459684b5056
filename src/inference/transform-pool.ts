/**
 * Pre- and post-processing of slices on worker threads: resampling to the
 * model's size, windowing and percentiles cost about 10 ms for a 512² slice
 * and about 0.7 s for a 4096² one, time the event loop must not spend.
 */
import type { Raster } from "../imaging/raster.js";
import type { Range } from "../imaging/window.js";
import { movable, movableRaster, ThreadPool } from "../workers/thread-pool.js";
import type { TransformSpec } from "./transforms.js";

export interface TransformPoolOptions {
  /** Worker threads (default 1). */
  readonly workers?: number;
}

/** A request to transform-worker.js. */
export type TransformRequest =
  | { readonly kind: "normalise"; readonly raster: Raster; readonly spec: TransformSpec }
  | {
      readonly kind: "denormalise";
      readonly output: Float32Array;
      readonly channels: number;
      readonly spec: TransformSpec;
      /** Travels there and back: the output range of an MR model comes from its percentiles. */
      readonly reference: Raster | undefined;
      /** The source slice's size, which the output is resized back to. */
      readonly size: { readonly width: number; readonly height: number };
    };

/** normalise answers the model input (C×H×W in [-1, 1]); denormalise a Denormalised. */
export type TransformReply = Float32Array | Denormalised;

export interface Denormalised {
  /** The synthetic slice in physical units at the source size. */
  readonly synthetic: Raster;
  /** The physical range the model's [-1, 1] was mapped onto (the metrics' target window). */
  readonly range: Range;
  /** The reference, handed back (its buffer went to the worker and returned). */
  readonly reference: Raster | undefined;
}

export class TransformPool extends ThreadPool<TransformRequest, TransformReply> {
  constructor(options: TransformPoolOptions = {}) {
    super(new URL("./transform-worker.js", import.meta.url), { workers: options.workers, name: "TransformPool" });
  }

  /**
   * toModelInput() on a worker: the model's C×H×W input in [-1, 1]. Takes
   * ownership of the raster's pixels (see movable()).
   */
  async normalise(raster: Raster, spec: TransformSpec): Promise<Float32Array> {
    const transfer: ArrayBuffer[] = [];
    const request: TransformRequest = { kind: "normalise", raster: movableRaster(raster, transfer), spec: pick(spec) };
    return (await this.run(request, transfer)).value as Float32Array;
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
    const request: TransformRequest = {
      kind: "denormalise",
      output: movable(output, transfer),
      channels,
      spec: pick(spec),
      reference: reference && movableRaster(reference, transfer),
      size: { width: size.width, height: size.height }, // only the numbers, even when given a Raster
    };
    return (await this.run(request, transfer)).value as Denormalised;
  }
}

/** Only what the transforms read, not the whole manifest (paths, provenance). */
function pick(spec: TransformSpec): TransformSpec {
  return { input: spec.input, intensity: spec.intensity };
}
