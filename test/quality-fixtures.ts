import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Raster } from "../src/imaging/raster.js";

/** The metric fixtures (a copy of the shared set; see its README.md). */
export const METRIC_FIXTURES = join(process.cwd(), "test/fixtures/metrics");

/** A raw little-endian float32 image from the fixtures, e.g. readF32("ct_hu/ref.f32", 256, 256). */
export function readF32(path: string, width: number, height: number): Raster {
  const bytes = readFileSync(join(METRIC_FIXTURES, path));
  if (bytes.length !== 4 * width * height) throw new Error(`${path}: ${bytes.length} bytes, expected ${4 * width * height}`);
  // Copied into an aligned buffer; the files are little-endian like every supported host.
  const data = new Float32Array(width * height);
  new Uint8Array(data.buffer).set(bytes);
  return { width, height, data };
}
