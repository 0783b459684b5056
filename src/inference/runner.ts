import type { OrtWorkerPool } from "./ort-pool.js";
import type { ModelSpec } from "./registry.js";

export interface ModelOutput {
  /** C×H×W in the model's output range ([-1, 1]). */
  output: Float32Array;
  channels: number;
  /** Inference time of the whole batch this item was in. */
  inferenceMs: number;
}

/**
 * The batcher's backend for one model: runs normalised C×H×W inputs as one
 * batch on the worker pool (which stacks them there and hands each row's
 * output back in its own buffer).
 */
export function inferenceRunner(pool: OrtWorkerPool, spec: ModelSpec): (items: readonly Float32Array[]) => Promise<ModelOutput[]> {
  return async (items) => {
    const { outputs, channels, inferenceMs } = await pool.run(spec.name, items);
    return outputs.map((output) => ({ output, channels, inferenceMs }));
  };
}
