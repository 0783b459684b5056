/** Physical value = stored × slope + intercept, for PNG files. */
export interface Rescale {
  slope: number;
  intercept: number;
}

/**
 * The project's PNG convention (models/testdata, the CLI, the viewer page):
 * CT stored as HU + 1024, MR as is.
 */
export const PNG_RESCALE: Record<"ct" | "mr", Rescale> = {
  ct: { slope: 1, intercept: -1024 },
  mr: { slope: 1, intercept: 0 },
};
