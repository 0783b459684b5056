/**
 * The voxels of an uncompressed single-file NIfTI-1 or NIfTI-2 image in
 * physical units, for the CLI (src/imaging/nifti.ts) and the viewer page
 * alike, so both send the service the same values.
 */
import { NIFTI1, isNIFTI, readHeader, readImage, type NIFTI2 } from "nifti-reader-js";

export interface NiftiVoxels {
  readonly header: NIFTI1 | NIFTI2;
  readonly dims: readonly [number, number, number];
  /** scl_slope/scl_inter applied; voxel i fastest, then j, then k, as stored. */
  readonly data: Float32Array;
}

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

function spatialDims(header: NIFTI1 | NIFTI2, source: string): [number, number, number] {
  const [rank, nx, ny, nz] = header.dims;
  const extra = header.dims.slice(4, Math.max(4, rank + 1)).filter((n) => n > 1);
  if (rank < 2 || extra.length > 0) {
    throw new Error(
      `${source}: dims [${header.dims.slice(0, rank + 1).join(", ")}]: only 3-D volumes (or one 2-D slice) can be translated; ` +
        "split a 4-D series into its 3-D volumes first (e.g. fslsplit or nibabel's four_to_three)",
    );
  }
  return [nx, ny, rank === 2 ? 1 : nz];
}

/** Reads `buffer` (the file, decompressed); `source` names it in errors. */
export function readNiftiVoxels(buffer: ArrayBuffer, source: string): NiftiVoxels {
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
  return { header, dims, data };
}
