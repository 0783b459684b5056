/**
 * Reusable work buffers. The metrics run for every slice of every stream, so
 * they borrow these instead of allocating per call. Each thread (the event
 * loop, every pool worker) has its own module instance and the metrics are
 * synchronous, so a buffer is never used by two calls at once.
 */
type Typed = Float64Array | Float32Array | Int32Array | Uint8Array;

/**
 * Buffers, one per role number, that grow as needed. `exact`: a call gets exactly
 * `length` elements (a subarray view when the buffer is longer); otherwise
 * the whole buffer, at least `length` long, and callers index [0, length)
 * (saves a view object per call in the hot path).
 */
function arena<T extends Typed>(make: (length: number) => T, exact: boolean): (role: number, length: number) => T {
  const buffers: T[] = [];
  return (role, length) => {
    let buffer = buffers[role];
    if (buffer === undefined || buffer.length < length) {
      buffer = make(length);
      buffers[role] = buffer;
    }
    return !exact || buffer.length === length ? buffer : (buffer.subarray(0, length) as T);
  };
}

/** Float64 work buffers of the kernels and filters: at least `length` long. */
export const scratch = arena((n) => new Float64Array(n), false);
/** Exactly `length` long: these become image planes. */
export const scratch32 = arena((n) => new Float32Array(n), true);
export const scratchU8 = arena((n) => new Uint8Array(n), true);
export const scratchI32 = arena((n) => new Int32Array(n), false);

/**
 * Roles of the float64 buffers (kernels and filters). Inputs, intermediates and outputs of
 * one computation must not share a buffer, hence one number per role.
 */
export const Scratch = {
  /** Float64 copies of the two images a kernel works on; VIF ping-pongs with NextX/NextY. */
  X: 0,
  Y: 1,
  NextX: 2,
  NextY: 3,
  /** Horizontal-pass results (filters.ts). */
  Rows: 4,
  /** Window moments, the filters' output. */
  Moments: 5,
  /** UQI: count of neighbour differences per block. */
  Changes: 6,
} as const;

/** Roles of the float32 buffers (quality.ts): the window-mapped images and their foreground crops. */
export const Scratch32 = {
  Reference: 0,
  Synthetic: 1,
  Reference255: 2,
  Synthetic255: 3,
  CropReference: 4,
  CropSynthetic: 5,
  CropReference255: 6,
  CropSynthetic255: 7,
} as const;
