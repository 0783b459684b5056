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

/** Deterministic uniform [0, 1) numbers (mulberry32), so failures reproduce. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A width × height float32 image with sample f(row, column). */
export function raster(width: number, height: number, f: (r: number, c: number) => number): Raster {
  const data = new Float32Array(width * height);
  for (let r = 0; r < height; r++) for (let c = 0; c < width; c++) data[r * width + c] = f(r, c);
  return { width, height, data };
}
