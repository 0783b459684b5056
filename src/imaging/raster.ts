import { invalidArgument } from "../errors.js";

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
  for (let i = 0; i < stored.length; i++) {
    out[i] = stored[i] * m + intercept;
    if (!Number.isFinite(out[i])) throw invalidArgument(field, `sample ${i} is not finite (NaN or ±Infinity) after rescale`);
  }
  return out;
}
