// Builds DICOM Part-10 instances for the DICOM tests with dcmjs (and
// dcmjs-codecs for compressed transfer syntaxes). Patient data here is made up.
import { deflateRawSync } from "node:zlib";
import dcmjs, { type NaturalDataset } from "dcmjs";
import dcmjsCodecs from "dcmjs-codecs";

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

export const SOP = {
  ct: "1.2.840.10008.5.1.4.1.1.2",
  mr: "1.2.840.10008.5.1.4.1.1.4",
  enhancedMr: "1.2.840.10008.5.1.4.1.1.4.1",
  segmentation: "1.2.840.10008.5.1.4.1.1.66.4",
  rtDose: "1.2.840.10008.5.1.4.1.1.481.2",
  secondaryCapture: "1.2.840.10008.5.1.4.1.1.7",
} as const;

export const TS = {
  implicitLittle: "1.2.840.10008.1.2",
  explicitLittle: "1.2.840.10008.1.2.1",
  deflatedLittle: "1.2.840.10008.1.2.1.99",
  explicitBig: "1.2.840.10008.1.2.2",
  rle: "1.2.840.10008.1.2.5",
  jpegBaseline: "1.2.840.10008.1.2.4.50",
  jpegExtended: "1.2.840.10008.1.2.4.51",
  jpegLosslessSv1: "1.2.840.10008.1.2.4.70",
  jpegLsLossless: "1.2.840.10008.1.2.4.80",
  jpeg2000Lossless: "1.2.840.10008.1.2.4.90",
} as const;

export const PATIENT = {
  PatientName: "Phantom^Hermione",
  PatientID: "PHANTOM-0042",
  PatientBirthDate: "19700101",
  PatientSex: "F",
  PatientAge: "054Y",
  StudyInstanceUID: "1.2.826.0.1.3680043.10.1234.1",
  StudyDate: "20240102",
  StudyTime: "101500",
  StudyID: "S42",
  AccessionNumber: "ACC-77",
  ReferringPhysicianName: "House^Gregory",
  StudyDescription: "Head phantom",
  FrameOfReferenceUID: "1.2.826.0.1.3680043.10.1234.2",
  PositionReferenceIndicator: "",
  PatientPosition: "HFS",
};

export interface InstanceSpec {
  modality: "CT" | "MR" | "OT" | "RTDOSE" | "SEG";
  rows: number;
  columns: number;
  /** Stored values of every frame, in order. */
  pixels: Int16Array | Uint16Array | Uint8Array;
  frames?: number;
  sopClassUid?: string;
  transferSyntax?: string;
  bitsStored?: number;
  photometric?: string;
  samplesPerPixel?: number;
  rescaleSlope?: number;
  rescaleIntercept?: number;
  /** Extra or overriding attributes (dcmjs natural form). */
  attributes?: NaturalDataset;
}

export function makeInstance(spec: InstanceSpec): Uint8Array {
  const syntax = spec.transferSyntax ?? TS.explicitLittle;
  const sopClassUid = spec.sopClassUid ?? (spec.modality === "MR" ? SOP.mr : SOP.ct);
  const sopInstanceUid = (spec.attributes?.SOPInstanceUID as string | undefined) ?? `1.2.826.0.1.3680043.10.1234.9.${Math.floor(Math.random() * 1e9)}`;
  const bitsAllocated = spec.pixels.BYTES_PER_ELEMENT * 8;
  const dataset: NaturalDataset = {
    SpecificCharacterSet: "ISO_IR 192",
    SOPClassUID: sopClassUid,
    SOPInstanceUID: sopInstanceUid,
    Modality: spec.modality,
    ...PATIENT,
    SeriesInstanceUID: "1.2.826.0.1.3680043.10.1234.3",
    SeriesNumber: 4,
    InstanceNumber: 1,
    ImagePositionPatient: [-120, -130, 15],
    ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
    PixelSpacing: [0.9, 0.8],
    SliceThickness: 2.5,
    Rows: spec.rows,
    Columns: spec.columns,
    SamplesPerPixel: spec.samplesPerPixel ?? 1,
    PhotometricInterpretation: spec.photometric ?? "MONOCHROME2",
    BitsAllocated: bitsAllocated,
    BitsStored: spec.bitsStored ?? bitsAllocated,
    HighBit: (spec.bitsStored ?? bitsAllocated) - 1,
    PixelRepresentation: spec.pixels instanceof Int16Array ? 1 : 0,
    ...(spec.frames ? { NumberOfFrames: spec.frames } : {}),
    ...(spec.rescaleSlope !== undefined ? { RescaleSlope: spec.rescaleSlope, RescaleIntercept: spec.rescaleIntercept ?? 0 } : {}),
    ...spec.attributes,
    PixelData: [pixelBytes(spec.pixels, syntax === TS.explicitBig)],
    _vrMap: { PixelData: bitsAllocated === 8 ? "OB" : "OW" },
  };
  const dict = new DicomDict(
    DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: Uint8Array.of(0, 1).buffer,
      MediaStorageSOPClassUID: sopClassUid,
      MediaStorageSOPInstanceUID: sopInstanceUid,
      TransferSyntaxUID: syntax,
      ImplementationClassUID: "1.2.826.0.1.3680043.10.1234.100",
    }),
  );
  dict.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  const file = new Uint8Array(dict.write());
  return syntax === TS.deflatedLittle ? deflateDataset(file) : file;
}

/** dcmjs writes OW values as they lie in memory; a big-endian file needs them swapped first. */
function pixelBytes(pixels: Int16Array | Uint16Array | Uint8Array, bigEndian: boolean): ArrayBuffer {
  const bytes = new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength).slice();
  if (bigEndian && pixels.BYTES_PER_ELEMENT === 2) Buffer.from(bytes.buffer).swap16();
  return bytes.buffer;
}

/** dcmjs writes a deflated-syntax file's data set plainly; deflate it as PS3.5 A.5 says. */
function deflateDataset(file: Uint8Array): Uint8Array {
  const buffer = Buffer.from(file);
  const metaEnd = 144 + buffer.readUInt32LE(140);
  return new Uint8Array(Buffer.concat([buffer.subarray(0, metaEnd), deflateRawSync(buffer.subarray(metaEnd))]));
}

/** Re-encodes a Part-10 file in a compressed transfer syntax with dcmjs-codecs. */
export async function compress(file: Uint8Array, syntax: string): Promise<Uint8Array> {
  if (!dcmjsCodecs.NativeCodecs.isInitialized()) await dcmjsCodecs.NativeCodecs.initializeAsync();
  const transcoder = new dcmjsCodecs.Transcoder(file.slice().buffer);
  transcoder.transcode(syntax);
  return new Uint8Array(transcoder.getDicomPart10());
}

/** `count` deterministic integers spread over [low, high] (each value differs from its neighbours). */
export function pattern(count: number, low: number, high: number, seed = 1): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(low + ((i * 7919 + seed * 104729) % (high - low + 1)));
  return out;
}
