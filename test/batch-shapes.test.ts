import { test } from "node:test";
import assert from "node:assert/strict";
import { paddedBatchSizes, paddedSize, stackBatch, unstackBatch } from "../src/inference/batch-shapes.js";

test("padded batch sizes are the powers of two below the max batch, then the max batch", () => {
  assert.deepEqual(paddedBatchSizes(1), [1]);
  assert.deepEqual(paddedBatchSizes(2), [1, 2]);
  assert.deepEqual(paddedBatchSizes(8), [1, 2, 4, 8]);
  assert.deepEqual(paddedBatchSizes(12), [1, 2, 4, 8, 12]);
  assert.deepEqual(paddedBatchSizes(64), [1, 2, 4, 8, 16, 32, 64]);
  for (const bad of [0, -1, 2.5, Number.NaN]) assert.throws(() => paddedBatchSizes(bad), RangeError);
});

test("every batch up to the max pads to the smallest size that holds it; larger batches run as they are", () => {
  const sizes = paddedBatchSizes(12);
  const expected = [1, 2, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12];
  assert.deepEqual(expected.map((_, i) => paddedSize(i + 1, sizes)), expected);
  assert.equal(paddedSize(13, sizes), 13);
  // The CPU's list is [1]: it never pads.
  assert.deepEqual([1, 3, 8].map((n) => paddedSize(n, [1])), [1, 3, 8]);
});

test("stacking pads with zero rows after the real ones; unstacking returns exactly the real rows, into the given rows", () => {
  const item = 6; // C×H×W of a toy model
  const rows = [0, 1, 2].map((r) => Float32Array.from({ length: item }, (_, i) => r * item + i + 1));
  const scratch = new Float32Array(5 * item).fill(-7);
  const padded = stackBatch(rows, 4, scratch);
  assert.equal(padded.length, 4 * item);
  assert.equal(padded.buffer, scratch.buffer, "written into the reusable buffer");
  assert.deepEqual(padded.subarray(0, 3 * item), Float32Array.from({ length: 3 * item }, (_, i) => i + 1));
  assert.ok(padded.subarray(3 * item).every((v) => v === 0), "stale values in the buffer are zeroed");
  assert.equal(stackBatch(rows, 3).length, 3 * item, "without a buffer: a new one of the exact size");

  const output = Float32Array.from({ length: 4 * item }, (_, i) => 100 + i);
  const real = unstackBatch(output, 4, rows);
  assert.equal(real.length, 3);
  real.forEach((row, i) => {
    assert.equal(row, rows[i], "the input row is reused");
    assert.deepEqual(row, output.subarray(i * item, (i + 1) * item));
  });
  real[0][0] = 99;
  assert.equal(output[0], 100, "rows are copies: they can be transferred while ORT owns the output");

  // An output with a different per-row size (e.g. 3 output channels for 1 input channel): new arrays.
  const wide = Float32Array.from({ length: 4 * 3 * item }, (_, i) => i);
  const widened = unstackBatch(wide, 4, rows);
  assert.ok(widened.every((row, i) => row !== rows[i] && row.length === 3 * item));
  assert.deepEqual(widened[2], wide.subarray(6 * item, 9 * item));
});

test("inconsistent shapes are refused", () => {
  assert.throws(() => stackBatch([], 1), RangeError);
  assert.throws(() => stackBatch([new Float32Array(4), new Float32Array(5)], 2), RangeError);
  assert.throws(() => stackBatch([new Float32Array(4), new Float32Array(4)], 1), RangeError);
  assert.throws(() => unstackBatch(new Float32Array(9), 4, [new Float32Array(2)]), RangeError);
  assert.throws(() => unstackBatch(new Float32Array(8), 2, [1, 2, 3].map(() => new Float32Array(4))), RangeError);
});
