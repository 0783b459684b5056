export const NIFTI_INT16 = 4;
export const NIFTI_FLOAT32 = 16;
export const NIFTI_RGB24 = 128;

export interface TestVolume {
  dims: number[];
  datatype: number;
  /** Stored voxel values, i fastest. */
  values: number[];
  slope?: number;
  inter?: number;
  /** srow_x, srow_y, srow_z (sform, code 1). */
  srow?: number[][];
  littleEndian?: boolean;
}

/** A single-file NIfTI-1 written field by field from the specification (independent of src/imaging/nifti.ts). */
export function nifti1(volume: TestVolume): Uint8Array {
  const le = volume.littleEndian ?? true;
  const bytesPer = volume.datatype === NIFTI_INT16 ? 2 : 4;
  const out = new Uint8Array(352 + volume.values.length * bytesPer);
  const view = new DataView(out.buffer);
  view.setInt32(0, 348, le);
  const dim = [volume.dims.length, ...volume.dims, 1, 1, 1, 1, 1, 1, 1].slice(0, 8);
  dim.forEach((d, n) => view.setInt16(40 + 2 * n, d, le));
  view.setInt16(70, volume.datatype, le);
  view.setInt16(72, bytesPer * 8, le);
  [1, 1, 1, 2.5, 0, 0, 0, 0].forEach((p, n) => view.setFloat32(76 + 4 * n, p, le));
  view.setFloat32(108, 352, le);
  view.setFloat32(112, volume.slope ?? 0, le);
  view.setFloat32(116, volume.inter ?? 0, le);
  out.set(new TextEncoder().encode("test volume"), 148);
  view.setInt16(254, 1, le); // sform_code: scanner anatomical
  const srow = volume.srow ?? [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 2.5, 0]];
  srow.forEach((row, r) => row.forEach((v, c) => view.setFloat32(280 + 16 * r + 4 * c, v, le)));
  out.set(new TextEncoder().encode("n+1\0"), 344);
  volume.values.forEach((v, n) => {
    if (volume.datatype === NIFTI_INT16) view.setInt16(352 + 2 * n, v, le);
    else view.setFloat32(352 + 4 * n, v, le);
  });
  return out;
}
