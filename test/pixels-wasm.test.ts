// The WebAssembly pixel kernels (assembly/pixels.ts) against the TypeScript
// loops they replace, which stay as the reference: the same float64
// arithmetic on float32 samples, so every result must be the same to the bit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SliceFault } from "../src/contract/slice-errors.js";
import { MAX_MEMORY_BYTES, wasmPixels, wasmPixelsFailure, type WasmPixels } from "../src/imaging/pixels-wasm.js";
import { rescale, rescaleTs } from "../src/imaging/raster.js";
import { countTs, mapRange, percentiles } from "../src/imaging/window.js";
import { random } from "./quality-fixtures.js";

function kernels(): WasmPixels {
  const wasm = wasmPixels();
  assert.ok(wasm, `the WebAssembly pixel kernels did not load: ${String(wasmPixelsFailure())}`);
  return wasm;
}

/** Float32 samples of several shapes: smooth, noisy, heavy ties (a background), extremes; odd lengths exercise the tails. */
function samples(n: number, seed: number): Float32Array[] {
  const rnd = random(seed);
  return [
    Float32Array.from({ length: n }, (_, i) => 1000 * Math.sin(i / 37) + 50 * rnd()),
    Float32Array.from({ length: n }, () => (rnd() < 0.6 ? 0 : Math.round(4000 * rnd()) - 1024)),
    Float32Array.from({ length: n }, () => (rnd() - 0.5) * 3e38),
    new Float32Array(n).fill(-7.25),
  ];
}

const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

test("rescale: the kernel's samples equal the TypeScript loop's bit for bit, for every stored type; a non-finite result is found", () => {
  const wasm = kernels();
  for (const n of [1, 3, 4, 5, 4099, 256 * 256]) {
    const rnd = random(n);
    const stored = [
      Uint8Array.from({ length: n }, () => rnd() * 256),
      Uint16Array.from({ length: n }, () => rnd() * 65536),
      Int16Array.from({ length: n }, () => (rnd() - 0.5) * 65536),
      ...samples(n, n),
    ];
    for (const values of stored) {
      for (const [slope, intercept] of [[1, 0], [0.37, -1024], [1e-3, 17.5], [3e30, 1]]) {
        const viaWasm = new Float32Array(n);
        const viaTs = new Float32Array(n);
        assert.equal(wasm.rescale(values, slope, intercept, viaWasm), rescaleTs(values, slope, intercept, viaTs), `finite, ${values.constructor.name} n=${n} ×${slope}`);
        assert.deepEqual(bits(viaWasm), bits(viaTs), `${values.constructor.name} n=${n} ×${slope} + ${intercept}`);
      }
    }
  }
  const poisoned = Float32Array.from({ length: 1001 }, (_, i) => i);
  poisoned[998] = Number.NaN;
  assert.throws(() => rescale(poisoned, 1, 0, "slice.image.data"), (error: unknown) => error instanceof SliceFault && /sample 998 is not finite/.test(error.message));
  assert.throws(() => rescale(new Float32Array([1, 2, 3e38, 4]), 10, 0, "f"), /sample 2 is not finite/, "overflowing float32 is not finite");
});

test("mapRange: the kernel's samples equal the TypeScript loop's bit for bit, clipped both ways, into an offset, NaN kept", () => {
  kernels();
  for (const n of [1, 7, 8, 4097, 65536]) {
    for (const data of samples(n, n + 1)) {
      data[n >> 1] = Number.NaN;
      for (const [range, outLow, outHigh] of [[{ low: -1024, high: 3071 }, -1, 1], [{ low: 0, high: 780 }, 0, 255], [{ low: 5, high: 5 }, 0, 1], [{ low: -1, high: 1 }, 3071, -1024]] as const) {
        const viaWasm = mapRange(data, range, outLow, outHigh, new Float32Array(n + 3), 3);
        const viaTs = mapRange(data, range, outLow, outHigh, new Float32Array(n + 3), 3, false);
        assert.deepEqual(bits(viaWasm), bits(viaTs), `n=${n} [${range.low}, ${range.high}] -> [${outLow}, ${outHigh}]`);
      }
    }
  }
});

test("percentile brackets: the kernel counts as the TypeScript pass does, and percentiles equal a full sort's", () => {
  const wasm = kernels();
  for (const n of [4096, 4101, 65536, 100003]) {
    for (const data of samples(n, n + 2)) {
      const sorted = Float64Array.from(data).sort();
      const brackets = [{ low: sorted[10], high: sorted[400] }, { low: sorted[n >> 1], high: sorted[n >> 1] }, { low: sorted[n - 300], high: sorted[n - 1] }];
      const counted = new Map<number, ReturnType<typeof countTs>>();
      assert.ok(wasm.count(data, brackets, n >>> 3, (b, counts) => counted.set(b, { ...counts, inside: Float64Array.from(counts.inside) })));
      brackets.forEach((bracket, b) => {
        const reference = countTs(data, bracket, n >>> 3);
        assert.deepEqual(counted.get(b), { ...reference, inside: Float64Array.from(reference.inside) });
      });

      const ps = [0, 0.5, 1, 25, 37.3, 50, 99, 99.5, 100];
      const expected = ps.map((p) => {
        const rank = (p / 100) * (n - 1);
        const k = Math.floor(rank);
        return rank === k ? sorted[k] : sorted[k] + (rank - k) * (sorted[k + 1] - sorted[k]);
      });
      assert.deepEqual(percentiles(data, ps), expected, `n=${n}`);
    }
  }
});

test("an image beyond the module's memory is left to the TypeScript loops", () => {
  const wasm = kernels();
  const huge = { length: MAX_MEMORY_BYTES / 4 } as ArrayLike<number>;
  assert.equal(wasm.rescale(huge, 1, 0, new Float32Array(0)), undefined);
  assert.equal(wasm.mapRange(huge, 0, 1, 0, 0, 1, new Float32Array(0), 0), false);
});
