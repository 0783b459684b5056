/**
 * Pure voxel layout shared by the CLI (NIfTI in and out) and the viewer
 * page (bundled for the browser), so both cut a volume into the same axial
 * slices. World axes are RAS+ (x toward the patient's right, y anterior, z
 * superior), as in NIfTI.
 */

/** A direction in the RAS+ world. */
export type Direction3 = readonly [x: number, y: number, z: number];

/** One slice: row-major, first row at the top. */
export interface Plane {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

/**
 * How a volume is cut into axial slices: along the voxel axis closest to the
 * world's inferior–superior axis, each slice shown as DICOM shows an axial
 * image (columns run toward the patient's left, rows toward posterior, so
 * anterior is up and the patient's right is on the image's left).
 */
export interface AxialLayout {
  readonly width: number;
  readonly height: number;
  readonly count: number;
  /** Millimetres between neighbouring columns, rows and slices (1 where the affine says nothing). */
  readonly spacing: readonly [column: number, row: number, slice: number];
  /** Unit world directions in which the column index and the row index grow (for orientation labels). */
  readonly across: Direction3;
  readonly down: Direction3;
  /** Voxel index of pixel (row, column) of slice `slice`. */
  voxel(slice: number, row: number, column: number): number;
}

export function axialLayout(dims: readonly [number, number, number], affine: readonly (readonly number[])[]): AxialLayout {
  const axes = [0, 1, 2];
  // Largest |component| of each voxel axis's world direction decides its role: z first, then x.
  const component = (world: number, axis: number) => affine[world]?.[axis] ?? 0;
  const degenerate = axes.every((axis) => axes.every((world) => component(world, axis) === 0));
  const pick = (world: number, from: number[]) =>
    from.reduce((best, axis) => (Math.abs(component(world, axis)) > Math.abs(component(world, best)) ? axis : best));
  const sliceAxis = degenerate ? 2 : pick(2, axes);
  const columnAxis = degenerate ? 0 : pick(0, axes.filter((a) => a !== sliceAxis));
  const rowAxis = axes.find((a) => a !== sliceAxis && a !== columnAxis)!;
  // Voxel axes pointing to +x (right) or +y (anterior) run against the display direction.
  const flipColumn = degenerate || component(0, columnAxis) > 0;
  const flipRow = degenerate || component(1, rowAxis) > 0;
  const stride = [1, dims[0], dims[0] * dims[1]];
  const width = dims[columnAxis];
  const height = dims[rowAxis];
  const length = (axis: number) => Math.hypot(component(0, axis), component(1, axis), component(2, axis));
  const direction = (axis: number, flip: boolean, fallback: Direction3): Direction3 => {
    const norm = length(axis);
    if (degenerate || norm === 0) return fallback;
    // `|| 0` keeps -0 out (it is not 0 to deepStrictEqual).
    const unit = (world: number) => ((flip ? -1 : 1) * component(world, axis)) / norm || 0;
    return [unit(0), unit(1), unit(2)];
  };
  return {
    width,
    height,
    count: dims[sliceAxis],
    spacing: [length(columnAxis) || 1, length(rowAxis) || 1, length(sliceAxis) || 1],
    across: direction(columnAxis, flipColumn, [-1, 0, 0]),
    down: direction(rowAxis, flipRow, [0, -1, 0]),
    voxel: (slice, row, column) =>
      slice * stride[sliceAxis] +
      (flipRow ? height - 1 - row : row) * stride[rowAxis] +
      (flipColumn ? width - 1 - column : column) * stride[columnAxis],
  };
}

export function extractSlice(volume: Float32Array, layout: AxialLayout, slice: number): Plane {
  const data = new Float32Array(layout.width * layout.height);
  for (let row = 0; row < layout.height; row++) {
    for (let column = 0; column < layout.width; column++) {
      data[row * layout.width + column] = volume[layout.voxel(slice, row, column)];
    }
  }
  return { width: layout.width, height: layout.height, data };
}

export function insertSlice(volume: Float32Array, layout: AxialLayout, slice: number, plane: Plane): void {
  if (plane.width !== layout.width || plane.height !== layout.height) {
    throw new Error(`slice ${slice} is ${plane.width}×${plane.height}, the volume's slices are ${layout.width}×${layout.height}`);
  }
  for (let row = 0; row < layout.height; row++) {
    for (let column = 0; column < layout.width; column++) {
      volume[layout.voxel(slice, row, column)] = plane.data[row * layout.width + column];
    }
  }
}

/** The patient directions printed at an image's edges (radiology's R/L, A/P, S/I). */
export interface EdgeLetters {
  readonly left: string;
  readonly right: string;
  readonly top: string;
  readonly bottom: string;
}

/** An axial slice as DICOM shows it: columns toward the patient's left, rows toward posterior. */
export const AXIAL_DISPLAY: { readonly across: Direction3; readonly down: Direction3 } = { across: [-1, 0, 0], down: [0, -1, 0] };

/**
 * The letters at each edge of an image whose column index grows along
 * `across` and row index along `down`: every axis the direction leans on,
 * strongest first ("L" for an axial image's right edge, "LA" when oblique).
 */
export function edgeLetters(across: Direction3, down: Direction3): EdgeLetters {
  const letters = (direction: Direction3, sign: number) =>
    [0, 1, 2]
      .filter((axis) => Math.abs(direction[axis]) > 1e-4)
      .sort((a, b) => Math.abs(direction[b]) - Math.abs(direction[a]))
      .map((axis) => (sign * direction[axis] > 0 ? "RAS" : "LPI")[axis])
      .join("");
  return { left: letters(across, -1), right: letters(across, 1), top: letters(down, -1), bottom: letters(down, 1) };
}
