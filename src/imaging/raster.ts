/**
 * A single-channel image in physical units (HU for CT, scanner units for MR),
 * row-major, first row at the top. Every stage after decoding works on this.
 */
export interface Raster {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}
