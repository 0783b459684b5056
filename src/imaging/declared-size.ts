/**
 * What an image says it will decode to, read from its header without
 * decoding it: what the server's in-flight byte budget counts a slice by
 * before any decoding starts. RAW is its own size; PNG: width × height ×
 * channels × bytes per sample from IHDR (and a tRNS chunk's alpha); DICOM: Rows × Columns × Number of
 * Frames × Samples per Pixel × Bits Allocated / 8 from the data set (for the
 * deflated syntax, from its first inflated bytes). Where the header cannot
 * be read, an image counts as its own size, or, for a compressed DICOM data
 * set, as the most the DICOM reader lets one decode to. The budget counts
 * the larger of that and the message's own size (admittedBytes).
 */
import { constants, inflateRawSync } from "node:zlib";
import { Encoding, type Image } from "../gen/medsynth/v1/translator_pb.js";
import { PngColour, PNG_SAMPLES_PER_PIXEL } from "../volume/png-layout.js";
import { maxDecodedBytes } from "./raster.js";
import { TransferSyntax } from "./transfer-syntax.js";

/**
 * What a slice's image costs the in-flight budget: what it declares it decodes to, or the message's own
 * bytes where those are more (a 1×1 PNG or DICOM carrying megabytes of other chunks or elements is held
 * in memory all the same).
 */
export function admittedBytes(image: Image | undefined, maxDimension: number): number {
  return image ? Math.max(image.data.length, declaredBytes(image, maxDimension)) : 0;
}

/** Bytes `image` declares it decodes to; `maxDimension` bounds what an unreadable header counts as. */
export function declaredBytes(image: Image | undefined, maxDimension: number): number {
  if (!image) return 0;
  const { data } = image;
  switch (image.encoding) {
    case Encoding.PNG:
      return pngBytes(data) ?? data.length;
    case Encoding.DICOM:
      return dicomBytes(data, maxDimension);
    default:
      return data.length;
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** Width × height × samples × bytes per sample, as decoded: a palette expands to RGB, a tRNS chunk adds alpha. */
function pngBytes(data: Uint8Array): number | undefined {
  if (data.length < 26 || PNG_SIGNATURE.some((byte, i) => data[i] !== byte)) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (view.getUint32(12) !== CHUNK.IHDR) return undefined;
  const colour = data[25];
  const stored = PNG_SAMPLES_PER_PIXEL[colour];
  if (stored === undefined) return undefined;
  const decoded = colour === PngColour.palette ? 3 : stored;
  const alpha = colour !== PngColour.greyAlpha && colour !== PngColour.rgba && mayHaveTransparency(view) ? 1 : 0;
  return view.getUint32(16) * view.getUint32(20) * (decoded + alpha) * Math.ceil(data[24] / 8);
}

/** Chunk types as big-endian numbers. */
const CHUNK = { IHDR: 0x49484452, tRNS: 0x74524e53, IDAT: 0x49444154, IEND: 0x49454e44 } as const;
/**
 * Chunks looked at before IDAT: real files have a handful (tRNS follows IHDR, PLTE and a few others). This
 * runs on the event loop, and a file of nothing but tiny chunks would otherwise be walked for hundreds of
 * milliseconds; past the cap the slice counts as having alpha (a budget errs high).
 */
const MAX_CHUNKS_BEFORE_IMAGE_DATA = 64;

/** A tRNS chunk before the image data, or more chunks before it than a real file has. */
function mayHaveTransparency(view: DataView): boolean {
  let at = 8;
  for (let chunk = 0; chunk < MAX_CHUNKS_BEFORE_IMAGE_DATA && at + 8 <= view.byteLength; chunk++) {
    const type = view.getUint32(at + 4);
    if (type === CHUNK.tRNS) return true;
    if (type === CHUNK.IDAT || type === CHUNK.IEND) return false;
    at += 12 + view.getUint32(at);
  }
  return at + 8 <= view.byteLength;
}

const { implicitLittle: IMPLICIT_LITTLE, explicitBig: EXPLICIT_BIG, deflatedLittle: DEFLATED } = TransferSyntax;
/** Explicit VRs whose length takes 4 bytes (after 2 reserved). */
const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"]);
const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_END = 0xfffee00d;
const SEQUENCE_END = 0xfffee0dd;
const TAGS = { samples: 0x00280002, frames: 0x00280008, rows: 0x00280010, columns: 0x00280011, bitsAllocated: 0x00280100 };
/** Nested sequences walked at most this deep: deeper is not a header this reads. */
const MAX_DEPTH = 16;
/** Compressed bytes inflated to find a deflated data set's header, tried in turn. */
const DEFLATED_PREFIXES = [1024, 16_384];
/**
 * This runs on the event loop, so at most this much is inflated: 1 KiB of
 * deflate makes up to ~1 MiB (1–2 ms here); a 16 KiB bomb stops at the cap
 * (0.5 ms, where 16 MiB took 6). A header that needs more counts as the most
 * the reader lets a slice decode to.
 */
const MAX_INFLATED_HEADER = 2 << 20;

interface Element {
  tag: number;
  vr: string | undefined;
  /** Where the value starts. */
  at: number;
  length: number;
}

/** Reads data-set elements of one transfer syntax (explicit or implicit VR, either byte order). */
class Reader {
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly explicit: boolean,
    private readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get end(): number {
    return this.bytes.length;
  }

  element(at: number): Element | undefined {
    if (at + 8 > this.end) return undefined;
    const tag = ((this.view.getUint16(at, this.little) << 16) | this.view.getUint16(at + 2, this.little)) >>> 0;
    // Items and delimiters have no VR, whatever the syntax.
    if (!this.explicit || tag >>> 16 === 0xfffe) return { tag, vr: undefined, at: at + 8, length: this.view.getUint32(at + 4, this.little) };
    const vr = String.fromCharCode(this.bytes[at + 4], this.bytes[at + 5]);
    if (!LONG_VRS.has(vr)) return { tag, vr, at: at + 8, length: this.view.getUint16(at + 6, this.little) };
    if (at + 12 > this.end) return undefined;
    return { tag, vr, at: at + 12, length: this.view.getUint32(at + 8, this.little) };
  }

  number(element: Element): number | undefined {
    if (element.at + element.length > this.end) return undefined;
    // Number of Frames is an Integer String; the others are US.
    if (element.tag === TAGS.frames) return Number.parseInt(String.fromCharCode(...this.bytes.subarray(element.at, element.at + element.length)), 10);
    return element.length === 2 ? this.view.getUint16(element.at, this.little) : undefined;
  }

  /** Where an undefined-length value (a sequence, or encapsulated data) ends; undefined if it does not. */
  skipUndefined(at: number, depth: number): number | undefined {
    if (depth > MAX_DEPTH) return undefined;
    while (at < this.end) {
      const item = this.element(at);
      if (item === undefined) return undefined;
      if (item.tag === SEQUENCE_END) return item.at;
      if (item.tag !== ITEM) return undefined;
      if (item.length !== UNDEFINED_LENGTH) {
        at = item.at + item.length;
        continue;
      }
      // An item of undefined length: its elements, up to the item delimiter.
      at = item.at;
      for (;;) {
        const element = this.element(at);
        if (element === undefined) return undefined;
        if (element.tag === ITEM_END) {
          at = element.at;
          break;
        }
        const next = element.length === UNDEFINED_LENGTH ? this.skipUndefined(element.at, depth + 1) : element.at + element.length;
        if (next === undefined) return undefined;
        at = next;
      }
    }
    return undefined;
  }
}

const NATIVE = new Set<string>([IMPLICIT_LITTLE, TransferSyntax.explicitLittle, EXPLICIT_BIG]);

/** A Part-10 file's File Meta Information, as far as reading its data set needs. */
export interface FileMeta {
  /** (0002,0010) Transfer Syntax UID; "" when absent. */
  syntax: string;
  /** Where the data set starts: the first byte after group 0002. */
  dataSetStart: number;
}

/** The 128-byte preamble followed by "DICM" that starts every Part-10 file. */
export function hasPart10Preamble(file: Uint8Array): boolean {
  return file.length >= 132 && String.fromCharCode(...file.subarray(128, 132)) === "DICM";
}

/**
 * The File Meta Information (group 0002, explicit VR little endian) of a
 * Part-10 file, read element by element without dcmjs (which would inflate
 * a deflated data set while parsing, with no limit); undefined when the
 * file has no 128-byte preamble and "DICM".
 */
export function readFileMeta(file: Uint8Array): FileMeta | undefined {
  if (file.length < 144 || !hasPart10Preamble(file)) return undefined;
  const meta = new Reader(file, true, true);
  let at = 132;
  let syntax = "";
  for (let element = meta.element(at); element && element.tag >>> 16 === 0x0002; element = meta.element(at)) {
    if (element.tag === 0x00020010) syntax = String.fromCharCode(...file.subarray(element.at, element.at + element.length)).replace(/[\0 ]+$/, "");
    at = element.at + element.length;
  }
  return { syntax, dataSetStart: at };
}

/** The pixel bytes a Part-10 file declares. */
function dicomBytes(file: Uint8Array, maxDimension: number): number {
  const meta = readFileMeta(file);
  // Not Part 10: the reader refuses it before it reads anything.
  if (meta === undefined) return file.length;
  // Uncompressed pixel data is in the file itself.
  return dicomPixelBytes(file, meta) ?? (NATIVE.has(meta.syntax) ? file.length : Math.max(file.length, maxDecodedBytes(maxDimension)));
}

/**
 * Rows × Columns × Number of Frames × Samples per Pixel × Bits Allocated / 8
 * as a Part-10 file's data set declares them (for the deflated syntax, read
 * from its first inflated bytes); undefined where they cannot be read there.
 */
export function dicomPixelBytes(file: Uint8Array, { syntax, dataSetStart: at }: FileMeta): number | undefined {
  return syntax === DEFLATED ? deflatedBytes(file.subarray(at)) : pixelBytes(new Reader(file, syntax !== IMPLICIT_LITTLE, syntax !== EXPLICIT_BIG), at);
}

function deflatedBytes(compressed: Uint8Array): number | undefined {
  for (const prefix of DEFLATED_PREFIXES) {
    let header: Buffer;
    try {
      header = inflateRawSync(compressed.subarray(0, prefix), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: MAX_INFLATED_HEADER });
    } catch {
      return undefined;
    }
    const bytes = pixelBytes(new Reader(header, true, true), 0);
    if (bytes !== undefined || prefix >= compressed.length) return bytes;
  }
  return undefined;
}

/** Walks the top-level elements up to group 0028's end, for the pixel layout. */
function pixelBytes(reader: Reader, at: number): number | undefined {
  const found: Partial<Record<keyof typeof TAGS, number>> = {};
  const wanted = new Map(Object.entries(TAGS).map(([name, tag]) => [tag, name as keyof typeof TAGS]));
  while (at < reader.end) {
    const element = reader.element(at);
    if (element === undefined || element.tag > 0x0028ffff) break;
    const name = wanted.get(element.tag);
    if (name !== undefined) found[name] = reader.number(element);
    const next = element.length === UNDEFINED_LENGTH ? reader.skipUndefined(element.at, 0) : element.at + element.length;
    if (next === undefined) return undefined;
    at = next;
  }
  const { rows, columns, bitsAllocated } = found;
  if (!rows || !columns || !bitsAllocated) return undefined;
  const frames = found.frames !== undefined && found.frames > 0 ? found.frames : 1;
  return rows * columns * frames * (found.samples ?? 1) * Math.ceil(bitsAllocated / 8);
}
