import sharp, { type Metadata } from "sharp";
import { create } from "@bufbuild/protobuf";
import { invalidArgument, unimplemented } from "../contract/slice-errors.js";
import { Encoding, ImageSchema, PixelType, type Image } from "../gen/medsynth/v1/translator_pb.js";
import type { DerivedSeries, DerivedSlice, DicomSource } from "./dicom.js";
import { greyOfRgb } from "../volume/png-layout.js";
import { DEFAULT_MAX_DIMENSION, quantize16, rescale, type Raster } from "./raster.js";


export interface DecodeOptions {
  /** Largest accepted width or height (default 4096). */
  maxDimension?: number;
  /** Frame of a multi-frame DICOM instance. */
  frame?: number;
}

export interface DecodedImage {
  raster: Raster;
  /** Which encoding the image came in, so the answer can default to it. */
  encoding: Encoding;
  /** For ENCODING_DICOM: what a derived instance needs from the source. Holds patient data: never log it. */
  dicom?: DicomSource;
}

const BYTES_PER_SAMPLE: Partial<Record<PixelType, number>> = {
  [PixelType.UINT8]: 1,
  [PixelType.UINT16]: 2,
  [PixelType.INT16]: 2,
  [PixelType.FLOAT32]: 4,
};

/**
 * Decodes an Image into physical units. Every problem is a SliceFault naming
 * the field under `field` (e.g. "slice.image.width"), so the stream can answer
 * that one slice with an error and go on.
 */
export async function decodeImage(
  image: Image | undefined,
  field: string,
  options: DecodeOptions = {},
): Promise<DecodedImage> {
  if (!image) throw invalidArgument(field, "missing; set the image to translate");
  const maxDimension = options.maxDimension ?? DEFAULT_MAX_DIMENSION;
  if (image.data.length === 0) throw invalidArgument(`${field}.data`, "empty");
  switch (image.encoding) {
    case Encoding.RAW:
      return { raster: decodeRaw(image, field, maxDimension), encoding: Encoding.RAW };
    case Encoding.PNG:
      return { raster: await decodePng(image, field, maxDimension), encoding: Encoding.PNG };
    case Encoding.DICOM: {
      // Loaded on first use: dcmjs and its codecs are most of a worker's memory, and many deployments never see DICOM.
      const { decodeDicom } = await import("./dicom.js");
      const { raster, source } = await decodeDicom(image.data, field, { frame: options.frame, maxDimension });
      return { raster, encoding: Encoding.DICOM, dicom: source };
    }
    default:
      throw invalidArgument(
        `${field}.encoding`,
        `unknown encoding ${image.encoding}; use ENCODING_RAW, ENCODING_PNG or ENCODING_DICOM`,
      );
  }
}

function checkDimensions(width: number, height: number, field: string, maxDimension: number): void {
  for (const [name, value] of [["width", width], ["height", height]] as const) {
    if (value === 0) throw invalidArgument(`${field}.${name}`, "must be greater than 0");
    if (value > maxDimension) {
      throw invalidArgument(`${field}.${name}`, `${value} exceeds the limit of ${maxDimension}`);
    }
  }
}

/** The image's rescale, checked; `rescale()` applies it. */
function rescaleOf(image: Image, field: string): { slope: number; intercept: number } {
  if (!Number.isFinite(image.rescaleSlope)) throw invalidArgument(`${field}.rescale_slope`, "must be finite");
  if (!Number.isFinite(image.rescaleIntercept)) {
    throw invalidArgument(`${field}.rescale_intercept`, "must be finite");
  }
  return { slope: image.rescaleSlope, intercept: image.rescaleIntercept };
}

function decodeRaw(image: Image, field: string, maxDimension: number): Raster {
  const { width, height } = image;
  checkDimensions(width, height, field, maxDimension);
  const bytesPerSample = BYTES_PER_SAMPLE[image.pixelType];
  if (bytesPerSample === undefined) {
    throw invalidArgument(
      `${field}.pixel_type`,
      `unknown pixel type ${image.pixelType}; RAW needs UINT8, UINT16, INT16 or FLOAT32`,
    );
  }
  const expected = width * height * bytesPerSample;
  if (image.data.length !== expected) {
    throw invalidArgument(
      `${field}.data`,
      `${image.data.length} bytes, expected ${expected} (${width}×${height}×${bytesPerSample})`,
    );
  }
  const { slope, intercept } = rescaleOf(image, field);
  const samples = littleEndianSamples(image);
  // Float32 samples are already a fresh copy: rescale them in place.
  const out = samples instanceof Float32Array ? samples : undefined;
  return { width, height, data: rescale(samples, slope, intercept, `${field}.data`, out) };
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * A RAW image's stored samples (little-endian on the wire) as a typed array:
 * on a little-endian host a copy of the bytes into an aligned buffer, viewed
 * as the pixel type (a memcpy instead of a DataView read per sample). UINT8
 * is the message's own bytes; every other type is a fresh array.
 */
function littleEndianSamples(image: Image): Uint8Array | Uint16Array | Int16Array | Float32Array {
  const n = image.width * image.height;
  const bytes = image.data;
  if (image.pixelType === PixelType.UINT8) return bytes;
  if (LITTLE_ENDIAN_HOST) {
    const aligned = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    if (image.pixelType === PixelType.UINT16) return new Uint16Array(aligned);
    if (image.pixelType === PixelType.INT16) return new Int16Array(aligned);
    return new Float32Array(aligned);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (image.pixelType) {
    case PixelType.UINT16:
      return Uint16Array.from({ length: n }, (_, i) => view.getUint16(2 * i, true));
    case PixelType.INT16:
      return Int16Array.from({ length: n }, (_, i) => view.getInt16(2 * i, true));
    default:
      return Float32Array.from({ length: n }, (_, i) => view.getFloat32(4 * i, true));
  }
}

async function decodePng(image: Image, field: string, maxDimension: number): Promise<Raster> {
  // ignoreIcc: an embedded colour profile must not remap the stored intensities (sharp would convert to sRGB).
  const input = sharp(image.data, { limitInputPixels: maxDimension * maxDimension, ignoreIcc: true });
  let meta: Metadata;
  try {
    meta = await input.metadata();
  } catch (error) {
    throw invalidArgument(`${field}.data`, `not a readable PNG (${(error as Error).message.trim()})`);
  }
  if (meta.format !== "png") {
    throw invalidArgument(`${field}.data`, `expected PNG data, found ${meta.format ?? "unknown"}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  checkDimensions(width, height, field, maxDimension);
  if (image.width !== 0 && image.width !== width) {
    throw invalidArgument(`${field}.width`, `${image.width} but the PNG is ${width} wide`);
  }
  if (image.height !== 0 && image.height !== height) {
    throw invalidArgument(`${field}.height`, `${image.height} but the PNG is ${height} high`);
  }
  const colour = meta.space !== "b-w" && meta.space !== "grey16";
  const sixteen = meta.depth === "ushort";
  const stored = sixteen ? PixelType.UINT16 : PixelType.UINT8;
  if (image.pixelType && image.pixelType !== stored) { // unset (0, UNSPECIFIED) reads it from the file
    throw invalidArgument(
      `${field}.pixel_type`,
      `${PixelType[image.pixelType]} but the PNG stores ${PixelType[stored]} samples; leave it unset for PNG`,
    );
  }
  const { slope, intercept } = rescaleOf(image, field);
  let samples: Uint8Array | Uint16Array;
  try {
    // The stored values (alpha dropped: a slice has no transparency).
    const pipeline = colour
      ? input.removeAlpha().toColourspace(sixteen ? "rgb16" : "srgb")
      : input.extractChannel(0).toColourspace(sixteen ? "grey16" : "b-w");
    const { data } = await pipeline.raw(sixteen ? { depth: "ushort" } : {}).toBuffer({ resolveWithObject: true });
    samples = sixteen ? new Uint16Array(data.buffer, data.byteOffset, data.length / 2) : data;
  } catch (error) {
    throw invalidArgument(`${field}.data`, `corrupt PNG (${(error as Error).message.trim()})`);
  }
  if (colour) samples = greyOfColour(samples, width * height, sixteen ? 65535 : 255, `${field}.data`);
  else if (samples instanceof Uint8Array && (meta.bitsPerSample ?? 8) < 8) samples = storedLowBitGrey(samples, meta.bitsPerSample!);
  return { width, height, data: rescale(samples, slope, intercept, `${field}.data`) };
}

/**
 * A 1-, 2- or 4-bit greyscale PNG's stored values: the decoder scales them to 0-255 for display (15 -> 255 at
 * 4 bits), by 255 / (2^bits - 1), an integer, so dividing it back is exact.
 */
function storedLowBitGrey(scaled: Uint8Array, bits: number): Uint8Array {
  const step = 255 / (2 ** bits - 1);
  return scaled.map((v) => v / step);
}

/** How far apart a pixel's red, green and blue may lie, as a share of full scale, and still be grey (JPEG-made greys differ by a level or two). */
const GREY_TOLERANCE = 2 / 255;

/**
 * The grey of an RGB (or palette) PNG whose pixels are grey: many exports store a greyscale slice as
 * colour. The mean of the three channels, exact when they are equal. A slice with real colour (an
 * overlay, a colour map) is refused rather than guessed at: the models take intensities, not hues.
 */
function greyOfColour(rgb: Uint8Array | Uint16Array, pixels: number, fullScale: number, field: string): Uint8Array | Uint16Array {
  const grey = rgb instanceof Uint16Array ? new Uint16Array(pixels) : new Uint8Array(pixels);
  const tolerance = Math.round(GREY_TOLERANCE * fullScale);
  let coloured = 0;
  let widest = 0;
  for (let i = 0, j = 0; i < pixels; i++, j += 3) {
    const r = rgb[j], g = rgb[j + 1], b = rgb[j + 2];
    const spread = Math.max(r, g, b) - Math.min(r, g, b);
    if (spread > tolerance) {
      coloured++;
      if (spread > widest) widest = spread;
    }
    grey[i] = greyOfRgb(r, g, b);
  }
  if (coloured > 0) {
    throw invalidArgument(
      field,
      `PNG is a colour image (red, green and blue differ by up to ${widest} of ${fullScale} at ${coloured} pixels); ` +
        "the models take greyscale slices: send a greyscale PNG (8- or 16-bit; grey stored as RGB is accepted)",
    );
  }
  return grey;
}

/** A 16-bit greyscale PNG of samples stored as they are (no rescale: the caller owns the convention). */
export function encodePng16(samples: { width: number; height: number; data: Uint16Array }): Promise<Buffer> {
  const { width, height, data } = samples;
  return sharp(data, { raw: { width, height, channels: 1 } }).toColourspace("grey16").png().toBuffer();
}

/** An 8-bit greyscale PNG of samples stored as they are. */
export function encodePng8(samples: { width: number; height: number; data: Uint8Array }): Promise<Buffer> {
  const { width, height, data } = samples;
  return sharp(data, { raw: { width, height, channels: 1 } }).toColourspace("b-w").png().toBuffer();
}

/**
 * Encodes a synthetic slice. RAW is float32 in physical units, its data a
 * view of the raster's pixels (so the raster must not change, or move to
 * another thread, while the Image is in use). PNG is 16-bit greyscale with
 * its rescale in the Image (see quantize16).
 */
export async function encodeImage(
  raster: Raster,
  encoding: Encoding,
  dicom?: { series: DerivedSeries; slice: DerivedSlice },
): Promise<Image> {
  const { width, height, data } = raster;
  switch (encoding) {
    case Encoding.RAW: {
      // The pixels' own bytes, not a copy: the Image aliases the raster.
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return create(ImageSchema, {
        encoding, data: bytes, width, height, pixelType: PixelType.FLOAT32, rescaleSlope: 1, rescaleIntercept: 0,
      });
    }
    case Encoding.PNG: {
      const { stored, slope, intercept } = quantize16(data);
      const png = await encodePng16({ width, height, data: stored });
      return create(ImageSchema, {
        encoding, data: png, width, height, pixelType: PixelType.UINT16, rescaleSlope: slope, rescaleIntercept: intercept,
      });
    }
    case Encoding.DICOM:
      // The instance carries its own pixel description and rescale.
      if (!dicom) throw unimplemented("options.output_encoding", "ENCODING_DICOM output is only made by the service");
      return create(ImageSchema, { encoding, data: dicom.series.encode(raster, dicom.slice), width, height });
    default:
      throw invalidArgument("options.output_encoding", `unknown encoding ${encoding}`);
  }
}
