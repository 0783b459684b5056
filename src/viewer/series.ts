/**
 * A series opened in the browser: a NIfTI volume (cut into axial slices as
 * the CLI cuts it, src/volume/axial.ts) or a set of PNG or DICOM slices (DICOM
 * in the order of their positions along the slice normal, PNG in natural name
 * order). Each slice is kept as the bytes the service reads (the file itself,
 * or RAW float32 for NIfTI) and as physical values for display: CT in HU, MR
 * in scanner units; PNG with the project's convention (CT stored as HU + 1024,
 * axial slices shown as DICOM shows them).
 */
import dicomParser from "dicom-parser";
import { decompress, isCompressed } from "nifti-reader-js";
import { Encoding, PixelType, type Image } from "../gen/medsynth/v1/translator_pb.js";
import { greyOfRgb, PngColour, PNG_DEPTHS, PNG_SAMPLES_PER_PIXEL } from "../volume/png-layout.js";
import { AXIAL_DISPLAY, axialLayout, edgeLetters, extractSlice, type Direction3, type EdgeLetters } from "../volume/axial.js";
import { readNiftiVoxels } from "../volume/nifti-voxels.js";
import { PNG_RESCALE } from "../volume/png-rescale.js";

export type ImageInit = Partial<Omit<Image, "$typeName">>;

export interface Series {
  width: number;
  height: number;
  names: string[];
  /** Physical values, slice after slice (row-major, first row at the top). */
  values: Float32Array;
  /** Millimetres between columns and between rows (1 where the files do not say). */
  spacing: readonly [column: number, row: number];
  /** The patient directions at the slices' edges. */
  edges: EdgeLetters;
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
  const named = files.filter((f) => /\.(png|dcm|dicom|ima)$/i.test(f.name) && !f.name.startsWith(".")).sort((a, b) => collator.compare(a.name, b.name));
  if (named.length === 0) throw new SeriesError("no .nii, .nii.gz, .png or .dcm file among those opened");
  const kinds = new Set(named.map((f) => (/\.png$/i.test(f.name) ? "png" : "dicom")));
  if (kinds.size > 1) throw new SeriesError("the folder mixes PNG and DICOM files; open one series at a time");
  const decoded = await Promise.all(named.map(async (file) => ({ file, bytes: new Uint8Array(await file.arrayBuffer()) })));
  const read = await Promise.all(
    decoded.map(async ({ file, bytes }) => ({
      file,
      bytes,
      slice: kinds.has("png") ? await decodePng(bytes, file.name, PNG_RESCALE[modality].intercept) : decodeDicom(bytes, file.name),
    })),
  );
  const slices = kinds.has("png") ? read : inAnatomicalOrder(read);
  const { width, height } = slices[0].slice;
  const odd = slices.find(({ slice }) => slice.width !== width || slice.height !== height);
  if (odd) throw new SeriesError(`${odd.file.name} is ${odd.slice.width}×${odd.slice.height}, ${slices[0].file.name} is ${width}×${height}`);
  const values = new Float32Array(width * height * slices.length);
  slices.forEach(({ slice }, k) => values.set(slice.data, k * width * height));
  const { intercept } = PNG_RESCALE[modality];
  const { spacing = [1, 1], across = AXIAL_DISPLAY.across, down = AXIAL_DISPLAY.down } = slices[0].slice;
  return {
    width,
    height,
    names: slices.map(({ file }) => file.name.replace(/\.[^.]+$/, "")),
    values,
    spacing,
    edges: edgeLetters(across, down),
    image: (k) =>
      kinds.has("png")
        ? { encoding: Encoding.PNG, data: slices[k].bytes, rescaleSlope: 1, rescaleIntercept: intercept }
        : { encoding: Encoding.DICOM, data: slices[k].bytes },
  };
}

/** DICOM slices along their normal (Image Position Patient), else by Instance Number, else as named. */
function inAnatomicalOrder<T extends { slice: Slice }>(slices: T[]): T[] {
  const key = (s: Slice): number | undefined => {
    if (s.position && s.across && s.down) {
      const [a, d] = [s.across, s.down];
      const normal = [a[1] * d[2] - a[2] * d[1], a[2] * d[0] - a[0] * d[2], a[0] * d[1] - a[1] * d[0]];
      return normal[0] * s.position[0] + normal[1] * s.position[1] + normal[2] * s.position[2];
    }
    return undefined;
  };
  const byPosition = slices.map((s) => key(s.slice));
  if (byPosition.every((p) => p !== undefined)) return slices.map((s, n) => ({ s, p: byPosition[n]! })).sort((x, y) => x.p - y.p).map(({ s }) => s);
  if (slices.every((s) => s.slice.instance !== undefined)) return [...slices].sort((x, y) => x.slice.instance! - y.slice.instance!);
  return slices;
}

/** One decoded slice; DICOM also says where it lies (world directions and position in RAS+, mm). */
interface Slice {
  width: number;
  height: number;
  data: Float32Array;
  spacing?: readonly [column: number, row: number];
  across?: Direction3;
  down?: Direction3;
  position?: Direction3;
  instance?: number;
}

async function readNiftiSeries(file: File): Promise<Series> {
  let buffer: ArrayBuffer = await file.arrayBuffer();
  if (isCompressed(buffer)) buffer = decompress(buffer) as ArrayBuffer;
  let volume;
  try {
    volume = readNiftiVoxels(buffer, file.name);
  } catch (error) {
    throw new SeriesError((error as Error).message);
  }
  // The CLI's axial cut: the axis nearest superior is the slice axis, anterior up, the patient's right on the left.
  const layout = axialLayout(volume.dims, volume.header.affine);
  const size = layout.width * layout.height;
  const values = new Float32Array(size * layout.count);
  for (let k = 0; k < layout.count; k++) values.set(extractSlice(volume.data, layout, k).data, k * size);
  const stem = file.name.replace(/\.nii(\.gz)?$/i, "");
  return {
    width: layout.width,
    height: layout.height,
    names: Array.from({ length: layout.count }, (_, k) => `${stem}-${String(k).padStart(3, "0")}`),
    values,
    spacing: [layout.spacing[0], layout.spacing[1]],
    edges: edgeLetters(layout.across, layout.down),
    image: (k) => ({
      encoding: Encoding.RAW,
      pixelType: PixelType.FLOAT32,
      width: layout.width,
      height: layout.height,
      data: new Uint8Array(values.slice(k * size, (k + 1) * size).buffer),
      rescaleSlope: 1,
    }),
  };
}

/**
 * A non-interlaced PNG as the service reads it, stored × 1 + intercept: greyscale at any depth (1/2/4-bit
 * keep their stored values), grey stored as RGB(A) or a palette (the channels' mean; alpha is not a value).
 * The service refuses real colour, with the reason, per slice; the viewer shows its mean.
 */
async function decodePng(bytes: Uint8Array, name: string, intercept: number): Promise<Slice> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 33 || view.getUint32(0) !== 0x89504e47) throw new SeriesError(`${name}: not a PNG file`);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const [depth, colour, , , interlace] = bytes.subarray(24, 29);
  const channels = PNG_SAMPLES_PER_PIXEL[colour];
  if (channels === undefined || !PNG_DEPTHS[colour]?.includes(depth) || interlace !== 0) {
    throw new SeriesError(`${name}: the viewer shows non-interlaced greyscale, RGB(A) or palette PNG (colour type ${colour}, ${depth} bits, interlace ${interlace})`);
  }
  const idat: Uint8Array[] = [];
  let palette: Uint8Array | undefined;
  for (let at = 8; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (type === "IDAT") idat.push(bytes.subarray(at + 8, at + 8 + length));
    if (type === "PLTE") palette = bytes.subarray(at + 8, at + 8 + length);
    if (type === "IEND") break;
    at += 12 + length;
  }
  const inflated = new Uint8Array(await new Response(new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"))).arrayBuffer());
  const bitsPerPixel = channels * depth;
  // Filters work on whole bytes: the byte to the left is one pixel back, or one byte below 8 bits a pixel.
  const bpp = Math.max(1, bitsPerPixel / 8);
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = inflated[y * (stride + 1)];
    if (!(filter <= 4)) throw new SeriesError(`${name}: corrupt PNG (${filter === undefined ? "image data ends early" : `row filter ${filter}`})`);
    const line = inflated.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = rows.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? rows.subarray((y - 1) * stride, y * stride) : new Uint8Array(stride);
    // The filter is the row's: chosen once, not per byte (a 512² 16-bit slice has half a million bytes).
    const predict = PREDICTORS[filter];
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[x - bpp] : 0;
      const c = x >= bpp ? up[x - bpp] : 0;
      out[x] = (line[x] + predict(a, up[x], c)) & 0xff;
    }
  }
  const sample = sampleReader(rows, depth, stride, width);
  const greyAt = colour === PngColour.palette ? paletteGrey(palette, sample, name) : (i: number) => {
    const first = i * channels; // the pixel's first sample
    return channels < 3 ? sample(first) : greyOfRgb(sample(first), sample(first + 1), sample(first + 2));
  };
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = greyAt(i) + intercept;
  return { width, height, data };
}

/** Pixel i of a palette image as grey: its PLTE entry's mean (as for RGB). */
function paletteGrey(palette: Uint8Array | undefined, index: (i: number) => number, name: string): (i: number) => number {
  if (!palette) throw new SeriesError(`${name}: corrupt PNG (a palette image without a PLTE chunk)`);
  return (i) => {
    const entry = 3 * index(i);
    if (entry + 2 >= palette.length) throw new SeriesError(`${name}: corrupt PNG (palette index ${index(i)} past the ${palette.length / 3} entries of PLTE)`);
    return greyOfRgb(palette[entry], palette[entry + 1], palette[entry + 2]);
  };
}

/**
 * Sample k of an unfiltered image, counted row after row. At 8 and 16 bits rows hold no padding; below 8
 * bits a pixel is one sample (grey or a palette index) and each row starts on a fresh byte.
 */
function sampleReader(rows: Uint8Array, depth: number, stride: number, width: number): (k: number) => number {
  if (depth === 16) return (k) => (rows[2 * k] << 8) | rows[2 * k + 1];
  if (depth === 8) return (k) => rows[k];
  const mask = (1 << depth) - 1;
  return (k) => {
    const y = Math.floor(k / width);
    const bit = (k - y * width) * depth;
    return (rows[y * stride + (bit >> 3)] >> (8 - depth - (bit & 7))) & mask;
  };
}

/** PNG row filters 0-4 (None, Sub, Up, Average, Paeth): the predictor from left (a), up (b) and up-left (c). */
const PREDICTORS: readonly ((a: number, b: number, c: number) => number)[] = [
  () => 0,
  (a) => a,
  (_a, b) => b,
  (a, b) => (a + b) >> 1,
  paeth,
];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Uncompressed greyscale DICOM, with its rescale and geometry; other transfer syntaxes are sent as they are but not shown here. */
function decodeDicom(bytes: Uint8Array, name: string): Slice {
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
  const numbers = (tag: string, count: number) => {
    const values = (dataset.string(tag) ?? "").split("\\").map(Number);
    return values.length === count && values.every(Number.isFinite) ? values : undefined;
  };
  // DICOM's patient frame is LPS+; the viewer's is RAS+ (NIfTI's).
  const ras = (x: number, y: number, z: number): Direction3 => [-x || 0, -y || 0, z];
  const orientation = numbers("x00200037", 6);
  const position = numbers("x00200032", 3);
  const pixelSpacing = numbers("x00280030", 2); // between rows, then between columns
  const instance = Number(dataset.string("x00200013"));
  return {
    width,
    height,
    data,
    spacing: pixelSpacing && [pixelSpacing[1], pixelSpacing[0]],
    across: orientation && ras(orientation[0], orientation[1], orientation[2]),
    down: orientation && ras(orientation[3], orientation[4], orientation[5]),
    position: position && ras(position[0], position[1], position[2]),
    instance: Number.isFinite(instance) ? instance : undefined,
  };
}
