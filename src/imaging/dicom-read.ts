import { inflateRawSync } from "node:zlib";
import type { NaturalDataset } from "dcmjs";
import dcmjs from "./dcmjs-silent.js";
import { invalidArgument, unimplemented } from "../contract/slice-errors.js";
import { dicomPixelBytes, hasPart10Preamble, readFileMeta, type FileMeta } from "./declared-size.js";
import { decompressPart10, isNative } from "./dicom-codecs.js";
import { TransferSyntax } from "./transfer-syntax.js";
import { DEFAULT_MAX_DIMENSION, maxDecodedBytes as decodedLimit, rescale, type Raster } from "./raster.js";

const { DicomMessage, DicomMetaDictionary } = dcmjs.data;

/**
 * What a derived instance needs from the instance it was made from; plain
 * data (it crosses from the decoding worker). Holds patient identifiers:
 * never log it.
 */
export interface DicomSource {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  /** The source's series ("" when absent): each gets its own derived series. */
  readonly seriesInstanceUid: string;
  /** "CT", "MR", "OT", ... ("" when absent). */
  readonly modality: string;
  /** The frame used (0-based), for a multi-frame instance. */
  readonly frame?: number;
  readonly rows: number;
  readonly columns: number;
  readonly seriesNumber?: number;
  readonly instanceNumber?: number;
  /**
   * Patient, study, frame-of-reference and image-plane attributes (dcmjs
   * natural form, geometry resolved for the frame) to carry over as they are.
   */
  readonly carried: Readonly<NaturalDataset>;
}

export interface DicomDecodeOptions {
  /** Frame of a multi-frame instance (0-based); required for those, ignored otherwise. */
  frame?: number;
  /**
   * Largest accepted Rows or Columns (default 4096). It also bounds what a
   * file may decode to (a deflated data set, or all frames of its pixel
   * data): maxDecodedBytes(), 16 × maxDimension² bytes.
   */
  maxDimension?: number;
}

/** Attributes a derived instance carries over unchanged (PS3.3 Patient, General Study, Frame of Reference, Image Plane). */
const CARRIED_ATTRIBUTES = [
  "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge", "PatientSize",
  "PatientWeight", "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
  "LongitudinalTemporalInformationModified",
  "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber", "StudyDescription",
  "FrameOfReferenceUID", "PositionReferenceIndicator", "PatientPosition", "BodyPartExamined", "Laterality",
  "BurnedInAnnotation",
] as const;

/** Image-plane attributes, looked up in a multi-frame instance's functional groups too. */
const GEOMETRY: ReadonlyArray<readonly [keyword: string, macro: string]> = [
  ["ImagePositionPatient", "PlanePositionSequence"],
  ["ImageOrientationPatient", "PlaneOrientationSequence"],
  ["PixelSpacing", "PixelMeasuresSequence"],
  ["SliceThickness", "PixelMeasuresSequence"],
];

/** Single-plane greyscale image storage classes the models can take: CT, MR and secondary capture. */
const IMAGE_SOP_CLASSES = new Set([
  ...["CTImage", "EnhancedCTImage", "LegacyConvertedEnhancedCTImage", "MRImage", "EnhancedMRImage",
    "LegacyConvertedEnhancedMRImage", "SecondaryCaptureImage"].map((name) => DicomMetaDictionary.sopClassUIDsByName[name]),
  "1.2.840.10008.5.1.4.1.1.7.2", // Multi-frame Grayscale Byte Secondary Capture
  "1.2.840.10008.5.1.4.1.1.7.3", // Multi-frame Grayscale Word Secondary Capture
]);

/** The Slice field that picks a frame. */
const FRAME_FIELD = "slice.frame";
const PIXEL_DATA_TAG = [0xe0, 0x7f, 0x10, 0x00];
const SEQUENCE_DELIMITER = Uint8Array.of(0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0);

/**
 * Decodes one frame of a DICOM Part-10 instance into physical units (Rescale
 * Slope/Intercept applied: HU for CT). Stored values are read per Bits
 * Allocated/Stored, High Bit and Pixel Representation. MONOCHROME1 changes
 * only how the values are displayed (PS3.3 C.7.6.3.1.2, after the Modality
 * and VOI LUTs), not the values, so it is not inverted. Every problem is a
 * SliceFault under `field`.
 */
export async function decodeDicom(
  bytes: Uint8Array,
  field: string,
  options: DicomDecodeOptions = {},
): Promise<{ raster: Raster; source: DicomSource }> {
  const dataField = `${field}.data`;
  const maxDimension = options.maxDimension ?? DEFAULT_MAX_DIMENSION;
  const maxDecodedBytes = decodedLimit(maxDimension);
  const meta = fileMetaOf(bytes, dataField);
  // A deflated data set is inflated here first, under the size limit, before dcmjs inflates it without one.
  const body = inflatedBody(bytes, meta, maxDecodedBytes, dataField);
  const { dataset, syntax } = readPart10(bytes, dataField);
  const image = checkImage(dataset, dataField, maxDimension, maxDecodedBytes);
  const frame = chooseFrame(image.frames, options.frame);

  let pixels: NaturalDataset = dataset;
  if (isNative(syntax)) {
    checkNativePixelDataComplete(body, syntax, pixelDataOf(dataset, dataField).byteLength, dataField);
  } else {
    checkEncapsulatedComplete(bytes, dataField);
    const decompressed = await decompressPart10(copyOf(bytes), syntax, dataField);
    pixels = readPart10(new Uint8Array(decompressed), dataField).dataset;
  }
  const samples = readFrame(pixelDataOf(pixels, dataField), image, frame, syntax === TransferSyntax.explicitBig, dataField);

  const slope = numberOf(inFrame(dataset, frame, "PixelValueTransformationSequence", "RescaleSlope")) ?? 1;
  const intercept = numberOf(inFrame(dataset, frame, "PixelValueTransformationSequence", "RescaleIntercept")) ?? 0;
  const data = rescale(samples, slope, intercept, dataField);

  return {
    raster: { width: image.columns, height: image.rows, data },
    source: sourceOf(dataset, image, frame),
  };
}

/** The File Meta Information's transfer syntax and end, or INVALID_ARGUMENT when the bytes are not a Part-10 file. */
function fileMetaOf(bytes: Uint8Array, field: string): FileMeta {
  const meta = readFileMeta(bytes);
  if (meta !== undefined) return meta;
  if (hasPart10Preamble(bytes)) {
    throw invalidArgument(field, `unreadable DICOM: ${bytes.length} bytes end inside the File Meta Information (truncated)`);
  }
  throw invalidArgument(
    field,
    "not a DICOM Part-10 file: no 128-byte preamble followed by \"DICM\"; send the file as stored, with its File Meta Information",
  );
}

/**
 * Room in a deflated data set for the elements besides Pixel Data (private
 * headers, overlays, icons: kilobytes in real files), on top of what its
 * header declares the pixels take.
 */
const DEFLATED_OTHER_ELEMENTS = 8 * 1024 * 1024;

/**
 * The data set's bytes: the file itself, or for the deflated syntax the
 * inflated data set, at most what its header declares the pixels take plus
 * room for the other elements (and never more than `limit`): a bomb that
 * declares one pixel stops there, not at the largest slice accepted.
 */
function inflatedBody(bytes: Uint8Array, meta: FileMeta, limit: number, field: string): Buffer {
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (meta.syntax !== TransferSyntax.deflatedLittle) return file;
  const pixels = dicomPixelBytes(bytes, meta);
  const most = pixels === undefined ? limit : Math.min(limit, pixels + DEFLATED_OTHER_ELEMENTS);
  try {
    return inflateRawSync(file.subarray(meta.dataSetStart), { maxOutputLength: most });
  } catch (error) {
    const detail = (error as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE"
      ? `is truncated or corrupt (${(error as Error).message})`
      : most < limit
        ? `inflates to more than ${most} bytes: its header declares ${pixels} bytes of pixel data, plus ${DEFLATED_OTHER_ELEMENTS} allowed for its other elements`
        : `inflates to more than ${limit} bytes (16 × the largest accepted dimension squared)`;
    throw invalidArgument(field, `the deflated data set ${detail}`);
  }
}

/** Parses a Part-10 file (preamble and "DICM" already checked); a missing meta header or an unreadable file is INVALID_ARGUMENT. */
function readPart10(bytes: Uint8Array, field: string): { dataset: NaturalDataset; syntax: string } {
  let meta: NaturalDataset;
  let dataset: NaturalDataset;
  try {
    const dict = DicomMessage.readFile(copyOf(bytes));
    meta = DicomMetaDictionary.naturalizeDataset(dict.meta);
    dataset = DicomMetaDictionary.naturalizeDataset(dict.dict);
  } catch (error) {
    throw invalidArgument(field, `unreadable DICOM, truncated or malformed (${(error as Error).message.slice(0, 160)})`);
  }
  const syntax = textOf(meta.TransferSyntaxUID);
  if (!syntax) throw invalidArgument(field, "the File Meta Information has no Transfer Syntax UID");
  return { dataset, syntax };
}

interface ImageLayout {
  rows: number;
  columns: number;
  frames: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  signed: boolean;
}

/** The SOP class and Image Pixel module checks that come before any pixel is read. */
function checkImage(dataset: NaturalDataset, field: string, maxDimension: number, maxDecodedBytes: number): ImageLayout {
  const sopClass = textOf(dataset.SOPClassUID) ?? "";
  if (!IMAGE_SOP_CLASSES.has(sopClass)) {
    const name = DicomMetaDictionary.sopClassNamesByUID[sopClass];
    throw invalidArgument(
      field,
      `SOP class ${sopClass || "(missing)"}${name ? ` (${name})` : ""} is not a CT, MR or secondary-capture image; send CT or MR image instances`,
    );
  }
  const samplesPerPixel = numberOf(dataset.SamplesPerPixel) ?? 1;
  const photometric = textOf(dataset.PhotometricInterpretation) ?? "";
  if (samplesPerPixel !== 1 || (photometric !== "MONOCHROME1" && photometric !== "MONOCHROME2")) {
    throw invalidArgument(
      field,
      `colour image (Photometric Interpretation ${photometric || "missing"}, ${samplesPerPixel} samples per pixel); the models take greyscale (MONOCHROME1/2) slices`,
    );
  }
  const rows = numberOf(dataset.Rows) ?? 0;
  const columns = numberOf(dataset.Columns) ?? 0;
  for (const [name, value] of [["Rows", rows], ["Columns", columns]] as const) {
    if (!Number.isInteger(value) || value <= 0) throw invalidArgument(field, `${name} is missing or 0`);
    if (value > maxDimension) throw invalidArgument(field, `${name} ${value} exceeds the limit of ${maxDimension}`);
  }
  if (dataset.PixelData === undefined) {
    throw invalidArgument(field, "no Pixel Data element (the file is truncated, or it holds no image)");
  }
  if (dataset.ModalityLUTSequence !== undefined) {
    throw unimplemented(field, "a Modality LUT Sequence is not supported; send instances that use Rescale Slope/Intercept");
  }
  const bitsAllocated = numberOf(dataset.BitsAllocated) ?? 0;
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) {
    throw unimplemented(field, `Bits Allocated ${bitsAllocated} is not supported; use 8, 16 or 32`);
  }
  const bitsStored = numberOf(dataset.BitsStored) ?? bitsAllocated;
  const highBit = numberOf(dataset.HighBit) ?? bitsStored - 1;
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw invalidArgument(field, `inconsistent Bits Stored ${bitsStored} / High Bit ${highBit} for Bits Allocated ${bitsAllocated}`);
  }
  const frames = numberOf(dataset.NumberOfFrames) ?? 1;
  if (!Number.isInteger(frames) || frames < 1) throw invalidArgument(field, `Number of Frames ${frames} is not a positive integer`);
  const decodedBytes = rows * columns * frames * (bitsAllocated / 8);
  if (decodedBytes > maxDecodedBytes) {
    throw invalidArgument(field, `${frames} frames of ${rows} × ${columns} decode to ${decodedBytes} bytes, more than the limit of ${maxDecodedBytes}`);
  }
  return {
    rows, columns, frames, bitsAllocated, bitsStored, highBit,
    signed: numberOf(dataset.PixelRepresentation) === 1,
  };
}

function chooseFrame(frames: number, frame: number | undefined): number {
  const field = FRAME_FIELD;
  if (frames === 1) return 0;
  if (frame === undefined) {
    throw invalidArgument(field, `the instance has ${frames} frames; set the frame (0 to ${frames - 1}) to translate one`);
  }
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) {
    throw invalidArgument(field, `frame ${frame} is out of range: the instance has ${frames} frames (0 to ${frames - 1})`);
  }
  return frame;
}

function pixelDataOf(dataset: NaturalDataset, field: string): ArrayBuffer {
  const value = dataset.PixelData;
  const buffer = Array.isArray(value) ? value[0] : value;
  if (!(buffer instanceof ArrayBuffer)) throw invalidArgument(field, "Pixel Data has no value");
  return buffer;
}

/**
 * dcmjs zero-fills a value cut short by the end of the file, so a truncated
 * native file is found here: the Pixel Data element (tag, VR, declared length)
 * must be followed by all of its bytes.
 */
function checkNativePixelDataComplete(body: Buffer, syntax: string, length: number, field: string): void {
  const big = syntax === TransferSyntax.explicitBig;
  const tag = big ? [0x7f, 0xe0, 0x00, 0x10] : PIXEL_DATA_TAG;
  const declared = Buffer.alloc(4);
  if (big) declared.writeUInt32BE(length);
  else declared.writeUInt32LE(length);
  const headers = syntax === TransferSyntax.implicitLittle
    ? [Buffer.from([...tag, ...declared])]
    : ["OW", "OB", "UN"].map((vr) => Buffer.concat([Buffer.from(tag), Buffer.from(vr, "latin1"), Buffer.alloc(2), declared]));
  for (const header of headers) {
    const at = body.lastIndexOf(header);
    if (at < 0) continue;
    const missing = at + header.length + length - body.length;
    if (missing > 0) {
      throw invalidArgument(field, `truncated file: the Pixel Data element lacks its last ${missing} of ${length} bytes`);
    }
    return;
  }
}

/**
 * Encapsulated pixel data ends with a Sequence Delimitation Item; a file cut
 * short lacks it. Only a delimiter after the last Pixel Data tag counts: every
 * earlier undefined-length sequence ends with the same eight bytes.
 */
function checkEncapsulatedComplete(bytes: Uint8Array, field: string): void {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.lastIndexOf(SEQUENCE_DELIMITER) < buffer.lastIndexOf(Uint8Array.from(PIXEL_DATA_TAG))) {
    throw invalidArgument(field, "truncated file: the encapsulated Pixel Data has no sequence delimiter");
  }
}

/** The stored values of one frame, masked to Bits Stored and sign-extended. */
function readFrame(pixelData: ArrayBuffer, image: ImageLayout, frame: number, bigEndian: boolean, field: string): Float64Array {
  const bytesPerSample = image.bitsAllocated / 8;
  const perFrame = image.rows * image.columns;
  const expected = perFrame * image.frames * bytesPerSample;
  const actual = pixelData.byteLength;
  if (actual !== expected && !(expected % 2 === 1 && actual === expected + 1)) {
    throw invalidArgument(
      field,
      `Pixel Data has ${actual} bytes but Rows × Columns × Number of Frames × Bits Allocated/8 = ` +
        `${image.rows} × ${image.columns} × ${image.frames} × ${bytesPerSample} = ${expected}`,
    );
  }
  const view = new DataView(pixelData, frame * perFrame * bytesPerSample, perFrame * bytesPerSample);
  const little = !bigEndian;
  const read =
    bytesPerSample === 1 ? (i: number) => view.getUint8(i)
    : bytesPerSample === 2 ? (i: number) => view.getUint16(2 * i, little)
    : (i: number) => view.getUint32(4 * i, little);
  // Arithmetic rather than bit operators, which are 32-bit signed in JavaScript.
  const shift = 2 ** (image.highBit + 1 - image.bitsStored);
  const range = 2 ** image.bitsStored;
  const half = range / 2;
  const out = new Float64Array(perFrame);
  for (let i = 0; i < perFrame; i++) {
    let value = Math.floor(read(i) / shift) % range;
    if (image.signed && value >= half) value -= range;
    out[i] = value;
  }
  return out;
}

/** An attribute of one frame: per-frame functional group, then shared, then the top level. */
function inFrame(dataset: NaturalDataset, frame: number, macro: string, keyword: string): unknown {
  for (const [groups, index] of [[dataset.PerFrameFunctionalGroupsSequence, frame], [dataset.SharedFunctionalGroupsSequence, 0]] as const) {
    const group = itemOf(groups, index);
    const value = itemOf(group?.[macro], 0)?.[keyword];
    if (value !== undefined) return value;
  }
  return dataset[keyword];
}

function itemOf(sequence: unknown, index: number): NaturalDataset | undefined {
  return Array.isArray(sequence) ? (sequence[index] as NaturalDataset | undefined) : undefined;
}

/**
 * `value` as plain arrays and objects: dcmjs hangs accessor functions on
 * Person Name arrays, which the structured clone that takes a DicomSource
 * back from its worker refuses.
 */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
  }
  return value;
}

function sourceOf(dataset: NaturalDataset, image: ImageLayout, frame: number): DicomSource {
  const carried: NaturalDataset = {};
  for (const keyword of CARRIED_ATTRIBUTES) {
    if (dataset[keyword] !== undefined) carried[keyword] = plain(dataset[keyword]);
  }
  for (const [keyword, macro] of GEOMETRY) {
    const value = inFrame(dataset, frame, macro, keyword);
    if (value !== undefined) carried[keyword] = plain(value);
  }
  return {
    sopClassUid: textOf(dataset.SOPClassUID) ?? "",
    sopInstanceUid: textOf(dataset.SOPInstanceUID) ?? "",
    seriesInstanceUid: textOf(dataset.SeriesInstanceUID) ?? "",
    modality: textOf(dataset.Modality) ?? "",
    ...(image.frames > 1 ? { frame } : {}),
    rows: image.rows,
    columns: image.columns,
    seriesNumber: numberOf(dataset.SeriesNumber),
    instanceNumber: numberOf(dataset.InstanceNumber),
    // Plain data (dcmjs hangs accessor functions on person names), so the source can cross to another thread.
    carried: JSON.parse(JSON.stringify(carried)) as NaturalDataset,
  };
}

const firstOf = (value: unknown): unknown => (Array.isArray(value) ? value[0] : value);

function numberOf(value: unknown): number | undefined {
  const first = firstOf(value);
  if (first === undefined || first === null || first === "") return undefined;
  const number = Number(first);
  return Number.isFinite(number) ? number : undefined;
}

function textOf(value: unknown): string | undefined {
  const first = firstOf(value);
  return typeof first === "string" ? first.trim() : undefined;
}

/** A standalone ArrayBuffer of exactly these bytes (dcmjs and the codecs take whole buffers). */
function copyOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}
