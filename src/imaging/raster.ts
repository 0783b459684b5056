import { invalidArgument } from "../contract/slice-errors.js";
import { wasmPixels } from "./pixels-wasm.js";

/** Largest accepted width or height unless configured otherwise (--max-dimension). */
export const DEFAULT_MAX_DIMENSION = 4096;

/** The most one encoded image may decode to under a dimension limit, bytes: four full-size 32-bit frames. */
export const maxDecodedBytes = (maxDimension: number): number => 16 * maxDimension * maxDimension;

/**
 * A single-channel image in physical units (HU for CT, scanner units for MR),
 * row-major, first row at the top. Every stage after decoding works on this.
 */
export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

/**
 * Physical values = stored × slope + intercept, where a slope of 0 means 1
 * (an unset Rescale Slope), for RAW, PNG and DICOM alike. Fails, naming
 * `field`, on a value that is not finite (NaN or ±Inf samples, or a slope that
 * overflows float32). `out` may be `stored` itself.
 */
export function rescale(
  stored: ArrayLike<number>,
  slope: number,
  intercept: number,
  field: string,
  out: Float32Array = new Float32Array(stored.length),
): Float32Array {
  const m = slope === 0 ? 1 : slope;
  const finite = wasmPixels()?.rescale(stored, m, intercept, out) ?? rescaleTs(stored, m, intercept, out);
  if (!finite) {
    const i = out.findIndex((v) => !Number.isFinite(v));
    throw invalidArgument(
      field,
      `sample ${i} is not finite (NaN or ±Infinity) after rescale; replace such values (e.g. NaN outside a mask) with a number, such as the background's, before sending`,
    );
  }
  return out;
}

/**
 * rescale()'s loop in TypeScript (the slope resolved): the reference of the
 * WebAssembly kernel (pixels-wasm.ts) and its fallback. True when every
 * result is finite.
 */
export function rescaleTs(stored: ArrayLike<number>, slope: number, intercept: number, out: Float32Array): boolean {
  // Convert natively first, then one loop over one array type: a loop over
  // whichever typed array came in would be polymorphic and several times slower.
  if (stored !== out) out.set(stored);
  // x·0 is 0 for every finite float32 and NaN otherwise: one sum checks them all without a branch per sample.
  let check = 0;
  for (let i = 0; i < out.length; i++) {
    out[i] = out[i] * slope + intercept;
    check += out[i] * 0;
  }
  return check === 0;
}

/**
 * Fits values into uint16: stored = round((value − intercept) / slope).
 * The intercept is the smaller of 0 and the minimum (so CT air keeps −1024).
 * A range of 255 to 65535 units keeps slope 1 (integer steps already give
 * 8 bits or more, and integer units such as HU stay exact); smaller or larger
 * ranges use all 16 bits, so relative MR intensities in, say, [0, 1] are not
 * rounded away.
 */
export function quantize16(data: Float32Array): { stored: Uint16Array; slope: number; intercept: number } {
  let min = 0;
  let max = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < min) min = data[i];
    if (data[i] > max) max = data[i];
  }
  const intercept = Math.floor(min);
  const range = max - intercept;
  const slope = range >= 255 && range <= 65535 ? 1 : range > 0 ? range / 65535 : 1;
  const stored = new Uint16Array(data.length);
  const inverse = 1 / slope;
  // Values are >= 0 here, so truncating x + 0.5 (what a Uint16Array store does) is Math.round, without the call.
  for (let i = 0; i < data.length; i++) stored[i] = (data[i] - intercept) * inverse + 0.5;
  return { stored, slope, intercept };
}
