import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { mae, psnr, ssim, uqi, vifp, type Plane } from "../src/metrics/kernels.js";

const FIXTURES = join(process.cwd(), "test/fixtures/metrics");

interface FixtureCase {
  name: string;
  width: number;
  height: number;
  data_range: number;
  ref: string;
  img: string;
  expected: Record<"psnr" | "ssim" | "ssim_gaussian" | "uqi" | "uqi_sewar" | "vifp", number | string>;
}

const index = JSON.parse(readFileSync(join(FIXTURES, "index.json"), "utf8")) as { cases: FixtureCase[] };

function readPlane(path: string, width: number, height: number): Plane {
  const bytes = readFileSync(join(FIXTURES, path));
  assert.equal(bytes.length, 4 * width * height, `${path} size`);
  // Copy into an aligned buffer; the file is little-endian like every supported host.
  const data = new Float32Array(width * height);
  new Uint8Array(data.buffer).set(bytes);
  return { width, height, data };
}

const expectedNumber = (v: number | string): number => (typeof v === "number" ? v : Number(v));

function assertClose(got: number, expected: number, what: string): void {
  if (!Number.isFinite(expected)) {
    assert.equal(got, expected, what);
    return;
  }
  const tolerance = 1e-4 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(got - expected) <= tolerance, `${what}: got ${got}, expected ${expected} (tolerance ${tolerance})`);
}

for (const c of index.cases) {
  test(`fixture ${c.name}: psnr, ssim, ssim_gaussian, uqi, vifp match the reference values`, () => {
    const reference = readPlane(c.ref, c.width, c.height);
    const distorted = readPlane(c.img, c.width, c.height);
    const got = {
      psnr: psnr(reference, distorted, c.data_range),
      ssim: ssim(reference, distorted, c.data_range),
      ssim_gaussian: ssim(reference, distorted, c.data_range, { gaussian: true }),
      uqi: uqi(reference, distorted),
      vifp: vifp(reference, distorted),
    };
    for (const [metric, value] of Object.entries(got)) {
      assertClose(value, expectedNumber(c.expected[metric as keyof typeof got]), `${c.name}.${metric}`);
    }
  });
}
