/**
 * Quality of a synthetic slice against the real target image, in the domain
 * that the `Quality` message documents (proto/medsynth/v1/translator.proto):
 * both images brought to the target window and mapped to [0, 1] with
 * clipping; PSNR and SSIM with data range 1 and UQI on those values; VIF on
 * the same images scaled to [0, 255]; MAE in physical units, unclipped.
 */
import type { Raster } from "../imaging/raster.js";
import { mapRange, resolveTargetWindow, type WindowSpec } from "../imaging/window.js";
import { mae, psnr, ssim, SSIM_SIDE, UQI_SIZE, uqi, VIF_MIN_SIDE, vifp, type Plane } from "./kernels.js";
import { crop, foregroundMask } from "./mask.js";
import { scratch32, Scratch32 } from "./scratch.js";
import { wasmMetrics } from "./wasm.js";

/**
 * The target modality's window: the model's output window from its manifest
 * (CT: `{ window: "fixed", low: -1024, high: 3071 }` in HU; MR:
 * `{ window: "percentile", low: 0.5, high: 99.5 }`, taken on the reference).
 */
export type TargetWindow = WindowSpec;

/** One set of metrics; the server copies it into a `Quality` message. */
export interface QualityValues {
  /** dB; +Infinity when the images are identical in the window. */
  readonly psnr: number;
  readonly ssim: number;
  readonly uqi: number;
  readonly vif: number;
  /** Physical units (HU for CT). */
  readonly mae: number;
}

export interface QualityReport {
  readonly quality: QualityValues;
  /** Only with `foreground: true`. */
  readonly foreground?: QualityValues;
  /** Size of the foreground mask's bounding box, with `foreground: true` and a mask that is not empty. */
  readonly foregroundBox?: { readonly width: number; readonly height: number };
}

export type MetricName = keyof QualityValues;

/**
 * Why each metric of `values` that is NaN could not be computed, by its
 * name: `size` is the image's (or the foreground box's, `what` says which),
 * undefined for an empty foreground mask. Defined metrics have no entry.
 */
export function unavailableMetrics(
  values: QualityValues,
  size: { readonly width: number; readonly height: number } | undefined,
  what: "image" | "foreground box",
): Partial<Record<MetricName, string>> {
  const reasons: Partial<Record<MetricName, string>> = {};
  const least = (side: number) =>
    `needs at least ${side}×${side} pixels; the ${what} is ${size!.width}×${size!.height}`;
  for (const metric of Object.keys(values) as MetricName[]) {
    if (!Number.isNaN(values[metric])) continue;
    const side = metric === "ssim" ? SSIM_SIDE : metric === "uqi" ? UQI_SIZE + 1 : metric === "vif" ? VIF_MIN_SIDE : 0;
    reasons[metric] =
      size === undefined
        ? "the foreground mask is empty: no reference pixel is above 0.05 of the target window"
        : Math.min(size.width, size.height) < side
          ? least(side)
          : "the reference is constant in the target window";
  }
  return reasons;
}

export interface QualityOptions {
  /**
   * Also compute the metrics inside the foreground mask (see mask.ts):
   * SSIM, UQI and VIF on the mask's bounding box, PSNR and MAE on its
   * pixels. Default false. Metrics that cannot be computed (an empty mask,
   * a box smaller than the metric's window: 7 px for SSIM, 9 for UQI, 41 for
   * VIF) are NaN; unavailableMetrics() says why.
   */
  readonly foreground?: boolean;
}

/**
 * Metrics of `synthetic` against `reference` (same size, physical units) in
 * the `target` window. Synchronous and CPU-bound: call it through
 * QualityPool on a server. Throws RangeError when the sizes differ.
 */
export function computeQuality(synthetic: Raster, reference: Raster, target: TargetWindow, options: QualityOptions = {}): QualityReport {
  return wasmMetrics()?.computeQuality(synthetic, reference, target, options) ?? computeQualityTs(synthetic, reference, target, options);
}

/** computeQuality on the TypeScript kernels: the reference for the WebAssembly ones (wasm.ts), and their fallback. */
export function computeQualityTs(
  synthetic: Raster,
  reference: Raster,
  target: TargetWindow,
  options: QualityOptions = {},
): QualityReport {
  const { width, height } = reference;
  if (synthetic.width !== width || synthetic.height !== height) {
    throw new RangeError(`synthetic image is ${synthetic.width}x${synthetic.height}, its reference ${width}x${height}`);
  }
  const n = width * height;
  const range = resolveTargetWindow(target, reference.data);
  const unitRef = mapRange(reference.data, range, 0, 1, scratch32(Scratch32.Reference, n));
  const unitSyn = mapRange(synthetic.data, range, 0, 1, scratch32(Scratch32.Synthetic, n));
  const byteRef = mapRange(reference.data, range, 0, 255, scratch32(Scratch32.Reference255, n));
  const byteSyn = mapRange(synthetic.data, range, 0, 255, scratch32(Scratch32.Synthetic255, n));
  const whole = (data: Float32Array): Plane => ({ width, height, data });
  const quality: QualityValues = {
    psnr: psnr(whole(unitRef), whole(unitSyn), 1),
    ssim: ssim(whole(unitRef), whole(unitSyn), 1),
    uqi: uqi(whole(unitRef), whole(unitSyn)),
    vif: vifp(whole(byteRef), whole(byteSyn)),
    mae: mae(reference, synthetic),
  };
  if (options.foreground !== true) return { quality };

  const { mask, box } = foregroundMask(unitRef, width, height);
  if (box === undefined) return { quality, foreground: { psnr: NaN, ssim: NaN, uqi: NaN, vif: NaN, mae: NaN } };
  const boxed = (data: Float32Array, role: number): Plane => ({
    width: box.width,
    height: box.height,
    data: crop(data, width, box, scratch32(role, box.width * box.height)),
  });
  const boxRef = boxed(unitRef, Scratch32.CropReference);
  const boxSyn = boxed(unitSyn, Scratch32.CropSynthetic);
  const foreground: QualityValues = {
    psnr: psnr(whole(unitRef), whole(unitSyn), 1, mask),
    ssim: ssim(boxRef, boxSyn, 1),
    uqi: uqi(boxRef, boxSyn),
    vif: vifp(boxed(byteRef, Scratch32.CropReference255), boxed(byteSyn, Scratch32.CropSynthetic255)),
    mae: mae(reference, synthetic, mask),
  };
  return { quality, foreground, foregroundBox: { width: box.width, height: box.height } };
}
