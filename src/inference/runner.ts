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
 * The batcher's backend for one model: stacks normalised C×H×W inputs into
 * one [N, C, H, W] tensor, runs it on the worker pool and splits the result.
 */
export function inferenceRunner(
  pool: OrtWorkerPool,
  spec: ModelSpec,
): (items: readonly Float32Array[]) => Promise<ModelOutput[]> {
  const inputSize = spec.input.channels * spec.input.width * spec.input.height;
  return async (items) => {
    const batch = new Float32Array(items.length * inputSize);
    items.forEach((item, i) => batch.set(item, i * inputSize));
    const { output, channels, inferenceMs } = await pool.run(spec.name, batch, items.length);
    const outputSize = channels * spec.input.width * spec.input.height;
    return items.map((_, i) => ({
      output: output.subarray(i * outputSize, (i + 1) * outputSize),
      channels,
      inferenceMs,
    }));
  };
}
