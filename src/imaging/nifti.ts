import { gunzipSync, gzipSync } from "node:zlib";
import { NIFTI1 } from "nifti-reader-js";
import { readNiftiVoxels } from "../volume/nifti-voxels.js";

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

const isGzip = (bytes: Uint8Array) => bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Reads a .nii or .nii.gz file (single-file NIfTI-1 or NIfTI-2). `source` names it in errors. */
export function readNifti(file: Uint8Array, source = "NIfTI"): NiftiVolume {
  const bytes = isGzip(file) ? gunzipSync(file) : file;
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const { header, dims, data } = readNiftiVoxels(buffer, source);
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
