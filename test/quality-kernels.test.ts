import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as typescript from "../src/quality/kernels.js";
import { wasmMetrics } from "../src/quality/wasm.js";
import { METRIC_FIXTURES, readF32 } from "./quality-fixtures.js";

interface FixtureCase {
  name: string;
  width: number;
  height: number;
  data_range: number;
  ref: string;
  img: string;
  expected: Record<"psnr" | "ssim" | "ssim_gaussian" | "uqi" | "uqi_sewar" | "vifp", number | string>;
}

const index = JSON.parse(readFileSync(join(METRIC_FIXTURES, "index.json"), "utf8")) as { cases: FixtureCase[] };

const expectedNumber = (v: number | string): number => (typeof v === "number" ? v : Number(v));

function assertClose(got: number, expected: number, what: string): void {
  if (!Number.isFinite(expected)) {
    assert.equal(got, expected, what);
    return;
  }
  const tolerance = 1e-4 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(got - expected) <= tolerance, `${what}: got ${got}, expected ${expected} (tolerance ${tolerance})`);
}

/** The TypeScript kernels (the reference) and the WebAssembly ones: both must match the fixtures. */
const implementations = { typescript, wasm: wasmMetrics() };

for (const c of index.cases) {
  for (const [kind, kernels] of Object.entries(implementations)) {
    test(`fixture ${c.name}: psnr, ssim, ssim_gaussian, uqi, vifp match the reference values (${kind})`, () => {
      assert.ok(kernels, "the WebAssembly kernels load");
      const reference = readF32(c.ref, c.width, c.height);
      const distorted = readF32(c.img, c.width, c.height);
      const got = {
        psnr: kernels.psnr(reference, distorted, c.data_range),
        ssim: kernels.ssim(reference, distorted, c.data_range),
        ssim_gaussian: kernels.ssim(reference, distorted, c.data_range, { gaussian: true }),
        uqi: kernels.uqi(reference, distorted),
        vifp: kernels.vifp(reference, distorted),
      };
      for (const [metric, value] of Object.entries(got)) {
        assertClose(value, expectedNumber(c.expected[metric as keyof typeof got]), `${c.name}.${metric}`);
      }
    });
  }
}
