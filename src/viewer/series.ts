/**
 * A series opened in the browser: a NIfTI volume (cut along its third axis,
 * as stored) or a set of PNG or DICOM slices (in natural name order). Each
 * slice is kept as the bytes the service reads (the file itself, or RAW
 * float32 for NIfTI) and as physical values for display: CT in HU, MR in
 * scanner units; PNG with the project's convention (CT stored as HU + 1024).
 */
import dicomParser from "dicom-parser";
import { decompress, isCompressed, isNIFTI, NIFTI1, readHeader, readImage } from "nifti-reader-js";
import { Encoding, PixelType, type Image } from "../gen/medsynth/v1/translator_pb.js";

export type ImageInit = Partial<Omit<Image, "$typeName">>;

export interface Series {
  width: number;
  height: number;
  names: string[];
  /** Physical values, slice after slice (row-major, first row at the top). */
  values: Float32Array;
  /** What to send for slice k. */
  image(k: number): ImageInit;
}

/** Thrown for a file the viewer cannot read; the message names the file and says why. */
export class SeriesError extends Error {}

const collator = new Intl.Collator("en", { numeric: true });
const isNifti = (name: string) => /\.nii(\.gz)?$/i.test(name);

/** Reads the files a user picked (one NIfTI volume, or a folder of PNG or DICOM slices). */
export async function readSeries(files: readonly File[], modality: "mr" | "ct"): Promise<Series> {
  const nifti = files.filter((f) => isNifti(f.name));
  if (nifti.length > 0) {
    if (files.length > 1) throw new SeriesError("open one NIfTI volume, or a folder of PNG or DICOM slices, not both");
    return readNiftiSeries(nifti[0]);
  }
  const slices = files.filter((f) => /\.(png|dcm|dicom|ima)$/i.test(f.name) && !f.name.startsWith(".")).sort((a, b) => collator.compare(a.name, b.name));
  if (slices.length === 0) throw new SeriesError("no .nii, .nii.gz, .png or .dcm file among those opened");
  const kinds = new Set(slices.map((f) => (/\.png$/i.test(f.name) ? "png" : "dicom")));
  if (kinds.size > 1) throw new SeriesError("the folder mixes PNG and DICOM files; open one series at a time");
  const decoded = await Promise.all(slices.map(async (file) => ({ file, bytes: new Uint8Array(await file.arrayBuffer()) })));
  const rasters = await Promise.all(
    decoded.map(({ file, bytes }) => (kinds.has("png") ? decodePng(bytes, file.name, modality === "ct" ? -1024 : 0) : decodeDicom(bytes, file.name))),
  );
  const { width, height } = rasters[0];
  const odd = rasters.findIndex((r) => r.width !== width || r.height !== height);
  if (odd >= 0) throw new SeriesError(`${slices[odd].name} is ${rasters[odd].width}×${rasters[odd].height}, ${slices[0].name} is ${width}×${height}`);
  const values = new Float32Array(width * height * slices.length);
  rasters.forEach((r, k) => values.set(r.data, k * width * height));
  const intercept = modality === "ct" ? -1024 : 0;
  return {
    width,
    height,
    names: slices.map((f) => f.name.replace(/\.[^.]+$/, "")),
    values,
    image: (k) =>
      kinds.has("png")
        ? { encoding: Encoding.PNG, data: decoded[k].bytes, rescaleSlope: 1, rescaleIntercept: intercept }
        : { encoding: Encoding.DICOM, data: decoded[k].bytes },
  };
}

interface Raster {
  width: number;
  height: number;
  data: Float32Array;
}

async function readNiftiSeries(file: File): Promise<Series> {
  let buffer: ArrayBuffer = await file.arrayBuffer();
  if (isCompressed(buffer)) buffer = decompress(buffer) as ArrayBuffer;
  if (!isNIFTI(buffer)) throw new SeriesError(`${file.name}: not a single-file NIfTI-1/NIfTI-2 image`);
  const header = readHeader(buffer);
  const [rank, width, height, depth] = header.dims;
  if (rank < 2 || header.dims.slice(4, rank + 1).some((n) => n > 1)) throw new SeriesError(`${file.name}: only 3-D volumes can be viewed`);
  const count = rank === 2 ? 1 : depth;
  const read = SAMPLES[header.datatypeCode];
  if (!read) throw new SeriesError(`${file.name}: NIfTI datatype ${header.datatypeCode} is not a greyscale scalar type`);
  const view = new DataView(readImage(header, buffer));
  const bytes = header.numBitsPerVoxel / 8;
  const slope = header.scl_slope || 1;
  const inter = Number.isFinite(header.scl_inter) ? header.scl_inter : 0;
  const voxels = width * height * count;
  const stored = new Float32Array(voxels);
  for (let i = 0; i < voxels; i++) stored[i] = read(view, i * bytes, header.littleEndian) * slope + inter;
  // Stored rows run from the first j up; shown, the first row is at the top (as in the slices' files).
  const values = new Float32Array(voxels);
  for (let k = 0; k < count; k++) {
    for (let j = 0; j < height; j++) values.set(stored.subarray((k * height + j) * width, (k * height + j + 1) * width), (k * height + (height - 1 - j)) * width);
  }
  const stem = file.name.replace(/\.nii(\.gz)?$/i, "");
  return {
    width,
    height,
    names: Array.from({ length: count }, (_, k) => `${stem}-${String(k).padStart(3, "0")}`),
    values,
    image: (k) => {
      const slice = stored.slice(k * width * height, (k + 1) * width * height);
      return { encoding: Encoding.RAW, pixelType: PixelType.FLOAT32, width, height, data: new Uint8Array(slice.buffer), rescaleSlope: 1 };
    },
  };
}

type Sample = (view: DataView, offset: number, littleEndian: boolean) => number;
const SAMPLES: Record<number, Sample> = {
  [NIFTI1.TYPE_UINT8]: (v, o) => v.getUint8(o),
  [NIFTI1.TYPE_INT8]: (v, o) => v.getInt8(o),
  [NIFTI1.TYPE_INT16]: (v, o, le) => v.getInt16(o, le),
  [NIFTI1.TYPE_UINT16]: (v, o, le) => v.getUint16(o, le),
  [NIFTI1.TYPE_INT32]: (v, o, le) => v.getInt32(o, le),
  [NIFTI1.TYPE_UINT32]: (v, o, le) => v.getUint32(o, le),
  [NIFTI1.TYPE_FLOAT32]: (v, o, le) => v.getFloat32(o, le),
  [NIFTI1.TYPE_FLOAT64]: (v, o, le) => v.getFloat64(o, le),
};

/** 8- or 16-bit greyscale PNG (non-interlaced), stored × 1 + intercept; the service reads the same file. */
async function decodePng(bytes: Uint8Array, name: string, intercept: number): Promise<Raster> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || view.getUint32(0) !== 0x89504e47) throw new SeriesError(`${name}: not a PNG file`);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const [depth, colour, , , interlace] = bytes.subarray(24, 29);
  if ((colour !== 0 && colour !== 4) || (depth !== 8 && depth !== 16) || interlace !== 0) {
    throw new SeriesError(`${name}: the viewer shows 8/16-bit greyscale, non-interlaced PNG (colour type ${colour}, ${depth} bits, interlace ${interlace})`);
  }
  const idat: Uint8Array[] = [];
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === "IEND") break;
    at += 12 + length;
  }
  const inflated = new Uint8Array(await new Response(new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"))).arrayBuffer());
  const channels = colour === 4 ? 2 : 1;
  const bpp = (channels * depth) / 8;
  const stride = width * bpp;
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)];
    const line = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[x - bpp] : 0;
      const b = up[x];
      const c = x >= bpp ? up[x - bpp] : 0;
      const predictor = [0, a, b, (a + b) >> 1, paeth(a, b, c)][filter];
      if (predictor === undefined) throw new SeriesError(`${name}: corrupt PNG (row filter ${filter})`);
      out[x] = (line[x] + predictor) & 0xff;
    }
  }
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = (depth === 16 ? (rows[i * bpp] << 8) | rows[i * bpp + 1] : rows[i * bpp]) + intercept;
  return { width, height, data };
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Uncompressed greyscale DICOM, with its rescale; other transfer syntaxes are sent as they are but not shown here. */
function decodeDicom(bytes: Uint8Array, name: string): Raster {
  let dataset;
  try {
    dataset = dicomParser.parseDicom(bytes);
  } catch (error) {
    throw new SeriesError(`${name}: not a DICOM file (${(error as Error).message ?? error})`);
  }
  const width = dataset.uint16("x00280011") ?? 0;
  const height = dataset.uint16("x00280010") ?? 0;
  const syntax = dataset.string("x00020010") ?? "";
  const pixels = dataset.elements.x7fe00010;
  if (!pixels || !["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"].includes(syntax)) {
    throw new SeriesError(`${name}: the viewer shows uncompressed little-endian DICOM (transfer syntax ${syntax || "unknown"})`);
  }
  const bits = dataset.uint16("x00280100") ?? 16;
  const signed = dataset.uint16("x00280103") === 1;
  const slope = Number(dataset.string("x00281053") ?? 1) || 1;
  const intercept = Number(dataset.string("x00281052") ?? 0) || 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset + pixels.dataOffset, pixels.length);
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) {
    const stored = bits === 8 ? view.getUint8(i) : signed ? view.getInt16(2 * i, true) : view.getUint16(2 * i, true);
    data[i] = stored * slope + intercept;
  }
  return { width, height, data };
}
