/**
 * Fixed batch sizes for the CUDA execution provider. cuDNN's exhaustive
 * algorithm search (ORT's default) runs for every new input shape, which
 * takes far longer than an inference: a batch of 5 after batches of 4 would
 * stall for it. Padding every batch up to one of a few sizes, each warmed up
 * at start, keeps the search out of the request path. On the CPU there is no
 * such search and padded rows would be pure waste, so the CPU runs batches
 * as they come.
 */

/** Powers of two below `maxBatch`, then `maxBatch` itself: 1, 2, 4, 8, …, maxBatch. */
export function paddedBatchSizes(maxBatch: number): number[] {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be a positive integer, got ${maxBatch}`);
  const sizes: number[] = [];
  for (let size = 1; size < maxBatch; size *= 2) sizes.push(size);
  sizes.push(maxBatch);
  return sizes;
}

/**
 * The smallest of `sizes` (ascending) that holds `batchSize` slices; a batch
 * larger than all of them runs as it is (a new shape, but never a wrong answer).
 */
export function paddedSize(batchSize: number, sizes: readonly number[]): number {
  return sizes.find((size) => size >= batchSize) ?? batchSize;
}

/**
 * `input` ([batchSize, …item]) grown to `size` rows with zero rows after it.
 * Zero rows are harmless to the real ones: every layer of the generators
 * (convolutions, instance norm, padding) works on each batch row alone.
 */
export function padBatch(input: Float32Array, batchSize: number, size: number): Float32Array {
  if (size === batchSize) return input;
  if (input.length % batchSize !== 0 || size < batchSize) throw new RangeError(`cannot pad ${input.length} values in ${batchSize} rows to ${size} rows`);
  const padded = new Float32Array((input.length / batchSize) * size);
  padded.set(input);
  return padded;
}

/** A copy of the first `batchSize` rows of `output` ([size, …item]): padded rows are dropped. */
export function unpadOutput(output: Float32Array, size: number, batchSize: number): Float32Array {
  if (output.length % size !== 0 || batchSize > size) throw new RangeError(`cannot take ${batchSize} rows of ${output.length} values in ${size} rows`);
  return output.slice(0, (output.length / size) * batchSize);
}
