/**
 * Pre- and post-processing of slices on worker threads: resampling to the
 * model's size, windowing and percentiles cost about 10 ms for a 512² slice
 * and about 0.7 s for a 4096² one, time the event loop must not spend.
 */
import type { Raster } from "../imaging/raster.js";
import type { Range } from "../imaging/window.js";
import { movable, movableRaster, WorkerPool, type Pooled } from "../workers/worker-pool.js";
import type { TransformSpec } from "./transforms.js";

export interface TransformPoolOptions {
  /** Worker threads. */
  readonly workers?: number;
}

export const DEFAULT_TRANSFORM_POOL_OPTIONS: Required<TransformPoolOptions> = { workers: 1 };

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
  /** The model input (C×H×W in [-1, 1]). */
  normalise: { request: { readonly raster: Raster; readonly spec: TransformSpec }; reply: Float32Array };
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
   * toModelInput() on a worker: the model's C×H×W input in [-1, 1]. Takes
   * ownership of the raster's pixels (see movable()).
   */
  normalise(raster: Raster, spec: TransformSpec): Promise<Pooled<Float32Array>> {
    const transfer: ArrayBuffer[] = [];
    return this.workers.call("normalise", { raster: movableRaster(raster, transfer), spec: pick(spec) }, transfer);
  }

  /**
   * outputRange() and fromModelOutput() on a worker. `output` may be a view
   * into a batch (it is copied then); the reference's buffer is borrowed and
   * comes back in the result.
   */
  denormalise(
    output: Float32Array,
    channels: number,
    spec: TransformSpec,
    reference: Raster | undefined,
    size: { width: number; height: number },
  ): Promise<Pooled<Denormalised>> {
    const transfer: ArrayBuffer[] = [];
    const request = {
      output: movable(output, transfer),
      channels,
      spec: pick(spec),
      reference: reference && movableRaster(reference, transfer),
      size: { width: size.width, height: size.height }, // only the numbers, even when given a Raster
    };
    return this.workers.call("denormalise", request, transfer);
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}

/** Only what the transforms read, not the whole manifest (paths, provenance). */
function pick(spec: TransformSpec): TransformSpec {
  return { input: spec.input, intensity: spec.intensity };
}
