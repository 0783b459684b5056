/**
 * Quality metrics on worker threads, so that neither the event loop nor the
 * inference workers wait on them. Requests beyond the number of workers wait
 * in a FIFO queue.
 */
import type { Raster } from "../imaging/raster.js";
import { movableRaster, WorkerPool } from "../workers/worker-pool.js";
import type { QualityOptions, QualityReport, TargetWindow } from "./quality.js";

export interface QualityPoolOptions {
  /**
   * Worker threads. One 256² slice's metrics cost about 15 ms on
   * one core of the development machine (`node dist/bench/quality.js`), about
   * 5% of its CPU inference, so one worker keeps up with a few inference
   * cores; add workers when metrics_ms grows with queueing.
   */
  readonly workers?: number;
}

export const DEFAULT_QUALITY_POOL_OPTIONS: Required<QualityPoolOptions> = { workers: 1 };

export interface PooledQuality extends QualityReport {
  /** Time the worker spent computing, without the queue wait. */
  readonly computeMs: number;
}

/** What quality-worker.js serves. */
export type QualityMethods = {
  compute: {
    request: { readonly synthetic: Raster; readonly reference: Raster; readonly target: TargetWindow; readonly options: QualityOptions };
    reply: QualityReport;
  };
};

export class QualityPool {
  readonly workers: WorkerPool<QualityMethods>;

  constructor({ workers = DEFAULT_QUALITY_POOL_OPTIONS.workers }: QualityPoolOptions = {}) {
    this.workers = new WorkerPool(new URL("./quality-worker.js", import.meta.url), { name: "QualityPool", workers });
  }

  /**
   * computeQuality on a worker. Takes ownership of the rasters: a pixel
   * array that spans its whole ArrayBuffer is transferred (the caller's
   * array is detached), any other view is copied first (see movable()). A
   * failing request (e.g. sizes differ) rejects alone; a crashed worker is
   * replaced.
   */
  async compute(synthetic: Raster, reference: Raster, target: TargetWindow, options: QualityOptions = {}): Promise<PooledQuality> {
    const transfer: ArrayBuffer[] = [];
    const request = { synthetic: movableRaster(synthetic, transfer), reference: movableRaster(reference, transfer), target, options };
    const { value, computeMs } = await this.workers.call("compute", request, transfer);
    return { ...value, computeMs };
  }

  close(): Promise<void> {
    return this.workers.close();
  }
}
