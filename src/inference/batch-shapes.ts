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
 * The items (each one C×H×W row) stacked into a [size, …item] batch, with
 * zero rows after them up to `size`. Zero rows are harmless to the real
 * ones: every layer of the generators (convolutions, instance norm, padding)
 * works on each batch row alone. Written into `into` when it is large enough
 * (a worker's batch buffer, reused from batch to batch); the result is a
 * view of exactly size × item values.
 */
export function stackBatch(items: readonly Float32Array[], size: number, into?: Float32Array): Float32Array {
  const item = items[0]?.length ?? 0;
  if (items.length === 0 || size < items.length || items.some((row) => row.length !== item)) {
    throw new RangeError(`cannot stack ${items.length} rows of ${items.map((row) => row.length).join(", ")} values into ${size} rows`);
  }
  const batch = into && into.length >= size * item ? into.subarray(0, size * item) : new Float32Array(size * item);
  items.forEach((row, i) => batch.set(row, i * item));
  batch.fill(0, items.length * item);
  return batch;
}

/**
 * The first `rows.length` rows of `output` ([size, …item]): padded rows are
 * dropped, and each row is copied out of the output (which ORT owns) into
 * `rows[i]` when that has the row's length (the input row it came from,
 * reused), else into a new array.
 */
export function unstackBatch(output: Float32Array, size: number, rows: readonly Float32Array[]): Float32Array[] {
  if (output.length % size !== 0 || rows.length > size) throw new RangeError(`cannot take ${rows.length} rows of ${output.length} values in ${size} rows`);
  const item = output.length / size;
  return rows.map((row, i) => {
    const into = row.length === item ? row : new Float32Array(item);
    into.set(output.subarray(i * item, (i + 1) * item));
    return into;
  });
}
