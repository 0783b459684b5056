import { gunzipSync, gzipSync } from "node:zlib";
import { NIFTI1, isNIFTI, readHeader, readImage, type NIFTI2 } from "nifti-reader-js";
import type { Raster } from "./raster.js";

/**
 * A NIfTI-1 or NIfTI-2 volume in physical units (scl_slope/scl_inter
 * applied), voxel i fastest, then j, then k, as stored.
 */
export interface NiftiVolume {
  readonly dims: readonly [number, number, number];
  readonly data: Float32Array;
  /** Voxel (i, j, k) to world (x, y, z) in mm, as nifti-reader-js derives it (sform or qform). */
  readonly affine: readonly (readonly number[])[];
  /** The file's header bytes without extensions, kept to write the result with the same geometry. */
  readonly headerBytes: Uint8Array;
  readonly littleEndian: boolean;
  readonly version: 1 | 2;
}

/** Byte offsets of the header fields this module rewrites. */
const LAYOUT = {
  1: { size: 348, datatype: 70, bitpix: 72, voxOffset: 108, slope: 112, inter: 116, calMax: 124, calMin: 128, descrip: 148 },
  2: { size: 540, datatype: 12, bitpix: 14, voxOffset: 168, slope: 176, inter: 184, calMax: 192, calMin: 200, descrip: 240 },
} as const;

const DESCRIP_BYTES = 80;

type Sample = (view: DataView, offset: number, littleEndian: boolean) => number;

const SAMPLES: Record<number, { bytes: number; read: Sample }> = {
  [NIFTI1.TYPE_UINT8]: { bytes: 1, read: (v, o) => v.getUint8(o) },
  [NIFTI1.TYPE_INT8]: { bytes: 1, read: (v, o) => v.getInt8(o) },
  [NIFTI1.TYPE_INT16]: { bytes: 2, read: (v, o, le) => v.getInt16(o, le) },
  [NIFTI1.TYPE_UINT16]: { bytes: 2, read: (v, o, le) => v.getUint16(o, le) },
  [NIFTI1.TYPE_INT32]: { bytes: 4, read: (v, o, le) => v.getInt32(o, le) },
  [NIFTI1.TYPE_UINT32]: { bytes: 4, read: (v, o, le) => v.getUint32(o, le) },
  [NIFTI1.TYPE_FLOAT32]: { bytes: 4, read: (v, o, le) => v.getFloat32(o, le) },
  [NIFTI1.TYPE_FLOAT64]: { bytes: 8, read: (v, o, le) => v.getFloat64(o, le) },
};

const isGzip = (bytes: Uint8Array) => bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

function spatialDims(header: NIFTI1 | NIFTI2, source: string): [number, number, number] {
  const [rank, nx, ny, nz] = header.dims;
  const extra = header.dims.slice(4, Math.max(4, rank + 1)).filter((n) => n > 1);
  if (rank < 2 || extra.length > 0) {
    throw new Error(`${source}: dims [${header.dims.slice(0, rank + 1).join(", ")}]: only 3-D volumes (or one 2-D slice) can be translated`);
  }
  return [nx, ny, rank === 2 ? 1 : nz];
}

/** Reads a .nii or .nii.gz file (single-file NIfTI-1 or NIfTI-2). `source` names it in errors. */
export function readNifti(file: Uint8Array, source = "NIfTI"): NiftiVolume {
  const bytes = isGzip(file) ? gunzipSync(file) : file;
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  if (!isNIFTI(buffer)) throw new Error(`${source}: not a single-file NIfTI-1/NIfTI-2 image (.hdr/.img pairs are not supported)`);
  const header = readHeader(buffer);
  const dims = spatialDims(header, source);
  const sample = SAMPLES[header.datatypeCode];
  if (!sample) throw new Error(`${source}: NIfTI datatype ${header.datatypeCode} is not a greyscale scalar type`);
  const count = dims[0] * dims[1] * dims[2];
  const image = new DataView(readImage(header, buffer));
  if (image.byteLength < count * sample.bytes) {
    throw new Error(`${source}: truncated: ${image.byteLength} bytes of voxel data, expected ${count * sample.bytes}`);
  }
  // NIfTI: a scl_slope of 0 (or not finite) means the stored values are already physical.
  const scaled = header.scl_slope !== 0 && Number.isFinite(header.scl_slope);
  const slope = scaled ? header.scl_slope : 1;
  const inter = scaled && Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const data = new Float32Array(count);
  for (let n = 0; n < count; n++) data[n] = sample.read(image, n * sample.bytes, header.littleEndian) * slope + inter;
  const version = header instanceof NIFTI1 ? 1 : 2;
  return {
    dims,
    data,
    affine: header.affine,
    headerBytes: bytes.slice(0, LAYOUT[version].size),
    littleEndian: header.littleEndian,
    version,
  };
}

/**
 * Writes `data` (float32, same voxel grid) as a NIfTI file with `like`'s
 * header: same dims, pixdim, qform, sform and units, so it overlays the
 * input in any viewer. Extensions are dropped; scaling is reset to identity.
 */
export function writeNifti(like: NiftiVolume, data: Float32Array, options: { gzip: boolean; description?: string }): Uint8Array {
  const layout = LAYOUT[like.version];
  const voxOffset = layout.size + 4; // header, then the 4-byte extension flag (all zero: no extensions)
  const out = new Uint8Array(voxOffset + data.length * 4);
  out.set(like.headerBytes);
  const view = new DataView(out.buffer);
  const le = like.littleEndian;
  view.setInt16(layout.datatype, NIFTI1.TYPE_FLOAT32, le);
  view.setInt16(layout.bitpix, 32, le);
  const setReal = (offset: number, value: number) =>
    like.version === 1 ? view.setFloat32(offset, value, le) : view.setFloat64(offset, value, le);
  if (like.version === 1) view.setFloat32(layout.voxOffset, voxOffset, le);
  else view.setBigInt64(layout.voxOffset, BigInt(voxOffset), le);
  setReal(layout.slope, 1);
  setReal(layout.inter, 0);
  setReal(layout.calMax, 0); // 0/0: viewers take the display range from the data
  setReal(layout.calMin, 0);
  if (options.description !== undefined) {
    const text = new TextEncoder().encode(options.description).slice(0, DESCRIP_BYTES - 1);
    out.fill(0, layout.descrip, layout.descrip + DESCRIP_BYTES);
    out.set(text, layout.descrip);
  }
  for (let n = 0; n < data.length; n++) view.setFloat32(voxOffset + 4 * n, data[n], le);
  return options.gzip ? gzipSync(out) : out;
}

/**
 * How a volume is cut into axial slices: along the voxel axis closest to the
 * world's inferior–superior axis, each slice shown as DICOM shows an axial
 * image (columns run toward the patient's left, rows toward posterior, so
 * anterior is up and the patient's right is on the image's left). NIfTI
 * world axes are RAS+.
 */
export interface AxialLayout {
  readonly width: number;
  readonly height: number;
  readonly count: number;
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
  return {
    width,
    height,
    count: dims[sliceAxis],
    voxel: (slice, row, column) =>
      slice * stride[sliceAxis] +
      (flipRow ? height - 1 - row : row) * stride[rowAxis] +
      (flipColumn ? width - 1 - column : column) * stride[columnAxis],
  };
}

export function extractSlice(volume: Float32Array, layout: AxialLayout, slice: number): Raster {
  const data = new Float32Array(layout.width * layout.height);
  for (let row = 0; row < layout.height; row++) {
    for (let column = 0; column < layout.width; column++) {
      data[row * layout.width + column] = volume[layout.voxel(slice, row, column)];
    }
  }
  return { width: layout.width, height: layout.height, data };
}

export function insertSlice(volume: Float32Array, layout: AxialLayout, slice: number, raster: Raster): void {
  if (raster.width !== layout.width || raster.height !== layout.height) {
    throw new Error(`slice ${slice} is ${raster.width}×${raster.height}, the volume's slices are ${layout.width}×${layout.height}`);
  }
  for (let row = 0; row < layout.height; row++) {
    for (let column = 0; column < layout.width; column++) {
      volume[layout.voxel(slice, row, column)] = raster.data[row * layout.width + column];
    }
  }
}
