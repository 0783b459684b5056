import { mapRange, resolveTargetWindow, resolveWindow, type Range } from "../imaging/window.js";
import { resample } from "../imaging/resample.js";
import type { Raster } from "../imaging/raster.js";
import type { ModelSpec } from "./registry.js";

/** What the transforms read from a model's manifest (small enough to post to a worker with every slice). */
export type TransformSpec = Pick<ModelSpec, "name" | "direction" | "input" | "intensity">;

/**
 * Normalise: physical values → the model's input window → [-1, 1], resized to
 * the model's input and replicated over its channels. Returns C×H×W. With
 * `consume`, the raster's pixels may be overwritten and returned as the
 * result (a one-channel model at the slice's size allocates nothing).
 */
export function toModelInput(raster: Raster, spec: TransformSpec, consume = false): Float32Array {
  const { width, height, channels } = spec.input;
  const range = resolveWindow(spec.intensity.input, raster.data);
  const plane = width * height;
  const resized = resample(raster, width, height).data;
  const reusable = channels === 1 && (consume || resized !== raster.data);
  const out = reusable ? resized : new Float32Array(channels * plane);
  mapRange(resized, range, -1, 1, out, 0);
  for (let c = 1; c < channels; c++) out.copyWithin(c * plane, 0, plane);
  return out;
}

/** Whether every value is the same: on the model input, a blank slice (nothing in the input window's range). */
export function isConstant(data: ArrayLike<number>): boolean {
  for (let i = 1; i < data.length; i++) if (data[i] !== data[0]) return false;
  return true;
}

/**
 * The physical range the model's [-1, 1] output stands for. CT: the fixed HU
 * window. MR (relative units): the reference's percentile window when there is
 * a reference, else the manifest's nominal range.
 */
export function outputRange(spec: TransformSpec, reference: Raster | undefined): Range {
  const window = spec.intensity.output;
  if (window.window === "fixed") return { low: window.low, high: window.high };
  if (reference) return resolveTargetWindow(window, reference.data);
  const [low, high] = window.nominal ?? [0, 1];
  return { low, high };
}

/**
 * Denormalise: one item's C×H×W output → channel mean → physical range →
 * resized back to the source size. With `consume`, the output may be
 * overwritten and returned as the result's pixels (a one-channel model at
 * the slice's size allocates nothing).
 */
export function fromModelOutput(
  output: Float32Array,
  channels: number,
  spec: TransformSpec,
  range: Range,
  size: { width: number; height: number },
  consume = false,
): Raster {
  const { width, height } = spec.input;
  const plane = width * height;
  let sum = output.subarray(0, plane);
  if (channels > 1 || !consume) {
    sum = new Float32Array(plane);
    for (let c = 0; c < channels; c++) {
      for (let i = 0, o = c * plane; i < plane; i++, o++) sum[i] += output[o];
    }
  }
  // The channel sum over [-channels, channels] is the mean over [-1, 1].
  const physical = mapRange(sum, { low: -channels, high: channels }, range.low, range.high, sum);
  return resample({ width, height, data: physical }, size.width, size.height);
}
