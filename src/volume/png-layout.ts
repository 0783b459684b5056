/**
 * What a PNG's header says about its samples, and the grey of a pixel stored
 * as colour: shared by the service (codec, admission) and the browser viewer,
 * so both read a file alike. Pure, no decoder: the viewer bundles this file.
 */

/** IHDR colour types. */
export const PngColour = { grey: 0, rgb: 2, palette: 3, greyAlpha: 4, rgba: 6 } as const;

/** Samples stored per pixel, by IHDR colour type (a palette stores one index). */
export const PNG_SAMPLES_PER_PIXEL: Readonly<Partial<Record<number, number>>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Bit depths a PNG may have, by IHDR colour type (the PNG specification's table). */
export const PNG_DEPTHS: Readonly<Partial<Record<number, readonly number[]>>> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/** A pixel stored as colour read as grey: the mean of red, green and blue, rounded (exact when they are equal). */
export function greyOfRgb(red: number, green: number, blue: number): number {
  return Math.round((red + green + blue) / 3);
}
