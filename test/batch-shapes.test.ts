import { test } from "node:test";
import assert from "node:assert/strict";
import { padBatch, paddedBatchSizes, paddedSize, unpadOutput } from "../src/inference/batch-shapes.js";

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

test("padding appends zero rows after the real ones and unpadding returns exactly the real rows", () => {
  const item = 6; // C×H×W of a toy model
  const input = Float32Array.from({ length: 3 * item }, (_, i) => i + 1);
  const padded = padBatch(input, 3, 4);
  assert.equal(padded.length, 4 * item);
  assert.deepEqual(padded.subarray(0, 3 * item), input);
  assert.ok(padded.subarray(3 * item).every((v) => v === 0));

  // An output with a different per-row size (e.g. 3 output channels for 1 input channel).
  const outItem = 2 * item;
  const output = Float32Array.from({ length: 4 * outItem }, (_, i) => 100 + i);
  const real = unpadOutput(output, 4, 3);
  assert.deepEqual(real, output.subarray(0, 3 * outItem));
  real[0] = 99;
  assert.equal(output[0], 100, "unpadOutput copies: the result can be transferred while ORT owns the original");
});

test("an unpadded batch is passed through without a copy, and inconsistent shapes are refused", () => {
  const input = new Float32Array(8);
  assert.equal(padBatch(input, 2, 2), input);
  assert.throws(() => padBatch(new Float32Array(7), 2, 4), RangeError);
  assert.throws(() => padBatch(input, 2, 1), RangeError);
  assert.throws(() => unpadOutput(new Float32Array(9), 4, 3), RangeError);
  assert.throws(() => unpadOutput(input, 2, 3), RangeError);
});
