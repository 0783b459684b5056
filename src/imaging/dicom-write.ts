import dcmjs, { type NaturalDataset } from "dcmjs";
import { createDeidentifier, deidentify } from "./dicom-deidentify.js";
import type { DicomSource } from "./dicom-read.js";
import { TransferSyntax } from "./transfer-syntax.js";
import { checkUidRoot, DEFAULT_UID_ROOT, newUid } from "./dicom-uid.js";
import { quantize16, type Raster } from "./raster.js";

const { DicomDict, DicomMetaDictionary } = dcmjs.data;

/** Identifies medsynth as the writer of its files (a fixed UID under 2.25). */
const IMPLEMENTATION_CLASS_UID = "2.25.199696808942530581851462113490638161588";
const IMPLEMENTATION_VERSION_NAME = "MEDSYNTH";

/** Stored CT value = HU + 1024 as signed 16-bit, so air (−1024 HU) is 0 and the whole int16 range is usable. */
const CT_RESCALE_INTERCEPT = -1024;

export interface DerivedSeriesOptions {
  direction: "mr2ct" | "ct2mr";
  modelName: string;
  modelVersion: string;
  /** Root of every new UID (default "2.25", the UUID-derived root that needs no registration). */
  uidRoot?: string;
  /** Apply the PS3.15 Basic Application Level Confidentiality Profile (default false). */
  deidentify?: boolean;
  /** Series Number (default: the first source's Series Number + 1000, or 1000). */
  seriesNumber?: number;
  /** Clock for the dates and times written (default: the system clock). */
  now?: () => Date;
}

export interface DerivedSlice {
  /** The DICOM instance the slice was translated from; absent when the input was RAW or PNG. */
  source?: DicomSource;
  /** Instance Number (default, or when not a 32-bit integer: the source's, else the slice's position in the series, from 1). */
  instanceNumber?: number;
}

/** One derived series: a stream's synthetic slices as DICOM instances that share its SeriesInstanceUID. */
export interface DerivedSeries {
  readonly seriesInstanceUid: string;
  /** A Part-10 file (Explicit VR Little Endian) holding `raster` as a new instance of this series. */
  encode(raster: Raster, slice?: DerivedSlice): Uint8Array;
}

interface Target {
  sopClassUid: string;
  modality: "CT" | "MR";
  from: "MR" | "CT";
  pixelModule(raster: Raster): NaturalDataset;
}

const TARGETS: Record<DerivedSeriesOptions["direction"], Target> = {
  mr2ct: {
    sopClassUid: DicomMetaDictionary.sopClassUIDsByName.CTImage,
    modality: "CT",
    from: "MR",
    pixelModule: (raster) => {
      const stored = new Int16Array(raster.data.length);
      for (let i = 0; i < stored.length; i++) stored[i] = clamp(Math.round(raster.data[i]) - CT_RESCALE_INTERCEPT, -32768, 32767);
      return {
        ImageType: ["DERIVED", "SECONDARY", "AXIAL"],
        ...greyscale16(raster, stored, 1),
        RescaleIntercept: CT_RESCALE_INTERCEPT,
        RescaleSlope: 1,
        RescaleType: "HU",
        WindowCenter: [40, 400],
        WindowWidth: [80, 1800],
        WindowCenterWidthExplanation: ["BRAIN", "BONE"],
        KVP: "",
        AcquisitionNumber: "",
      };
    },
  },
  ct2mr: {
    sopClassUid: DicomMetaDictionary.sopClassUIDsByName.MRImage,
    modality: "MR",
    from: "CT",
    pixelModule: (raster) => {
      // MR Image Storage has no Modality LUT: the stored values are the
      // (relative) intensities, linearly fitted into 16 bits.
      const { stored } = quantize16(raster.data);
      let low = 65535;
      let high = 0;
      for (const value of stored) {
        low = Math.min(low, value);
        high = Math.max(high, value);
      }
      return {
        ImageType: ["DERIVED", "SECONDARY"],
        ...greyscale16(raster, stored, 0),
        WindowCenter: (low + high) / 2,
        WindowWidth: Math.max(1, high - low),
        ScanningSequence: "RM",
        SequenceVariant: "NONE",
        ScanOptions: "",
        MRAcquisitionType: "2D",
        RepetitionTime: "",
        EchoTime: "",
        EchoTrainLength: "",
      };
    },
  },
};

/**
 * Starts a derived series for one stream. Each encoded slice becomes a new
 * instance (new SOPInstanceUID under the root) that carries the source's
 * patient, study and geometry so it overlays the original, and references
 * it in the Source Image Sequence. Without a source, the series gets one
 * placeholder patient/study marked UNKNOWN and nominal 1 mm geometry.
 */
export function createDerivedSeries(options: DerivedSeriesOptions): DerivedSeries {
  const uidRoot = options.uidRoot ?? DEFAULT_UID_ROOT;
  checkUidRoot(uidRoot);
  const target = TARGETS[options.direction];
  const now = options.now ?? (() => new Date());
  const created = now();
  const seriesInstanceUid = newUid(uidRoot);
  const keys = options.deidentify ? createDeidentifier(uidRoot) : undefined;
  const model = `${options.modelName} ${options.modelVersion}`;
  let seriesNumber = options.seriesNumber;
  let placeholderStudy: NaturalDataset | undefined;
  let encoded = 0;

  return {
    seriesInstanceUid,
    encode(raster, slice = {}) {
      const { source } = slice;
      encoded += 1;
      seriesNumber ??= (source?.seriesNumber ?? 0) + 1000;
      const instanceNumber = [slice.instanceNumber, source?.instanceNumber].find(isInstanceNumber) ?? encoded;
      const sopInstanceUid = newUid(uidRoot);
      const instanceTime = now();

      const context = source
        ? { ...source.carried, ...planeOf(source, raster), SourceImageSequence: [sourceReference(source)] }
        : {
            ...(placeholderStudy ??= unknownStudy(uidRoot, created)),
            ImagePositionPatient: [0, 0, instanceNumber - 1],
            ImageOrientationPatient: [1, 0, 0, 0, 1, 0],
            PixelSpacing: [1, 1],
            SliceThickness: 1,
          };
      const identifying: NaturalDataset = {
        ...context,
        SeriesDate: dicomDate(created),
        SeriesTime: dicomTime(created),
        ContentDate: dicomDate(instanceTime),
        ContentTime: dicomTime(instanceTime),
        InstanceCreationDate: dicomDate(instanceTime),
        InstanceCreationTime: dicomTime(instanceTime),
        TimezoneOffsetFromUTC: "+0000",
      };
      const dataset: NaturalDataset = {
        ...(keys ? deidentify(identifying, keys) : identifying),
        SpecificCharacterSet: "ISO_IR 192",
        SOPClassUID: target.sopClassUid,
        SOPInstanceUID: sopInstanceUid,
        Modality: target.modality,
        SeriesInstanceUID: seriesInstanceUid,
        SeriesNumber: seriesNumber,
        InstanceNumber: instanceNumber,
        SeriesDescription: `Synthetic ${target.modality} (${model})`.slice(0, 64),
        DerivationDescription:
          `Synthetic ${target.modality} translated from ${source ? target.from : `a non-DICOM ${target.from} image`} ` +
          `by the medsynth model ${model} (CycleGAN generator). NOT FOR CLINICAL USE.`,
        ImageComments: `NOT FOR CLINICAL USE: synthetic image.${source ? "" : " Source geometry unknown: nominal 1 mm pixels and slices."}`,
        Manufacturer: "medsynth",
        ManufacturerModelName: options.modelName.slice(0, 64),
        SoftwareVersions: options.modelVersion.slice(0, 64),
        SyntheticData: "YES",
        BurnedInAnnotation: "NO",
        ...target.pixelModule(raster),
      };
      return writePart10(dataset, target.sopClassUid, sopInstanceUid);
    },
  };
}

function greyscale16(raster: Raster, stored: Int16Array | Uint16Array, pixelRepresentation: 0 | 1): NaturalDataset {
  return {
    SamplesPerPixel: 1,
    PhotometricInterpretation: "MONOCHROME2",
    Rows: raster.height,
    Columns: raster.width,
    BitsAllocated: 16,
    BitsStored: 16,
    HighBit: 15,
    PixelRepresentation: pixelRepresentation,
    PixelData: [stored.buffer],
    _vrMap: { PixelData: "OW" },
  };
}

/** The source's image plane, adjusted when the raster was resampled to another size over the same field of view. */
function planeOf(source: DicomSource, raster: Raster): NaturalDataset {
  const { ImagePositionPatient: position, ImageOrientationPatient: orientation, PixelSpacing: spacing } = source.carried;
  if ((raster.width === source.columns && raster.height === source.rows) || !isNumbers(spacing, 2)) return {};
  const [rowSpacing, columnSpacing] = spacing;
  const newRowSpacing = (rowSpacing * source.rows) / raster.height;
  const newColumnSpacing = (columnSpacing * source.columns) / raster.width;
  const plane: NaturalDataset = { PixelSpacing: [newRowSpacing, newColumnSpacing] };
  if (isNumbers(position, 3) && isNumbers(orientation, 6)) {
    // The first pixel's centre moves with the half-pixel change along the row and column directions.
    const alongRow = (newColumnSpacing - columnSpacing) / 2;
    const alongColumn = (newRowSpacing - rowSpacing) / 2;
    plane.ImagePositionPatient = [0, 1, 2].map((axis) => position[axis] + orientation[axis] * alongRow + orientation[axis + 3] * alongColumn);
  }
  return plane;
}

function sourceReference(source: DicomSource): NaturalDataset {
  return {
    ReferencedSOPClassUID: source.sopClassUid,
    ReferencedSOPInstanceUID: source.sopInstanceUid,
    ...(source.frame !== undefined ? { ReferencedFrameNumber: source.frame + 1 } : {}),
    PurposeOfReferenceCodeSequence: [
      { CodeValue: "121322", CodingSchemeDesignator: "DCM", CodeMeaning: "Source image for image processing operation" },
    ],
  };
}

function unknownStudy(uidRoot: string, created: Date): NaturalDataset {
  return {
    PatientName: "UNKNOWN",
    PatientID: "UNKNOWN",
    PatientBirthDate: "",
    PatientSex: "",
    StudyInstanceUID: newUid(uidRoot),
    StudyDate: dicomDate(created),
    StudyTime: dicomTime(created),
    StudyID: "",
    AccessionNumber: "",
    ReferringPhysicianName: "",
    StudyDescription: "medsynth synthetic series from non-DICOM input",
    FrameOfReferenceUID: newUid(uidRoot),
    PositionReferenceIndicator: "",
  };
}

function writePart10(dataset: NaturalDataset, sopClassUid: string, sopInstanceUid: string): Uint8Array {
  const file = new DicomDict(
    DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: Uint8Array.of(0, 1).buffer,
      MediaStorageSOPClassUID: sopClassUid,
      MediaStorageSOPInstanceUID: sopInstanceUid,
      TransferSyntaxUID: TransferSyntax.explicitLittle,
      ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
      ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
    }),
  );
  file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return new Uint8Array(file.write());
}

/** Instance Number is IS: a 32-bit signed integer. */
const isInstanceNumber = (value: number | undefined): value is number =>
  value !== undefined && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;

const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

const isNumbers = (value: unknown, count: number): value is number[] =>
  Array.isArray(value) && value.length === count && value.every((v) => typeof v === "number" && Number.isFinite(v));

/** DICOM DA and TM in UTC (TimezoneOffsetFromUTC says so). */
const dicomDate = (date: Date): string => date.toISOString().slice(0, 10).replaceAll("-", "");
const dicomTime = (date: Date): string => date.toISOString().slice(11, 23).replaceAll(":", "");
