import type { NaturalDataset } from "dcmjs";
import dcmjs from "./dcmjs-silent.js";
import { createDeidentifier, deidentify, textOf } from "./dicom-deidentify.js";
import type { DicomSource } from "./dicom-read.js";
import { TransferSyntax } from "./transfer-syntax.js";
import { checkUidRoot, DEFAULT_UID_ROOT, newUid } from "./dicom-uid.js";
import { quantize16, type Raster } from "./raster.js";
import { fullRange } from "./window.js";

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

/**
 * A stream's synthetic slices as DICOM instances: one derived series per
 * source series (a series belongs to one study and patient, PS3.3 C.7.3.1),
 * and one for the slices that were not DICOM.
 */
export interface DerivedSeries {
  /** A Part-10 file (Explicit VR Little Endian) holding `raster` as a new instance of its source's derived series. */
  encode(raster: Raster, slice?: DerivedSlice): Uint8Array;
}

interface Target {
  /** The IOD for slices with a known image plane; those without one are Secondary Capture. */
  sopClassUid: string;
  modality: "CT" | "MR";
  from: "MR" | "CT";
  /** Image Type's value 3 in that IOD. */
  imageType3: string;
  /** The CT or MR Image module's attributes beyond the pixels (not part of Secondary Capture). */
  imageModule: NaturalDataset;
  /** Image Pixel module, rescale and windows: shared by both IODs. */
  pixels(raster: Raster): NaturalDataset;
}

const SECONDARY_CAPTURE = DicomMetaDictionary.sopClassUIDsByName.SecondaryCaptureImage;

const TARGETS: Record<DerivedSeriesOptions["direction"], Target> = {
  mr2ct: {
    sopClassUid: DicomMetaDictionary.sopClassUIDsByName.CTImage,
    modality: "CT",
    from: "MR",
    imageType3: "AXIAL",
    imageModule: { KVP: "", AcquisitionNumber: "" },
    pixels: (raster) => {
      const stored = new Int16Array(raster.data.length);
      for (let i = 0; i < stored.length; i++) stored[i] = clamp(Math.round(raster.data[i]) - CT_RESCALE_INTERCEPT, -32768, 32767);
      return {
        ...greyscale16(raster, stored, 1),
        RescaleIntercept: CT_RESCALE_INTERCEPT,
        RescaleSlope: 1,
        RescaleType: "HU",
        WindowCenter: [40, 400],
        WindowWidth: [80, 1800],
        WindowCenterWidthExplanation: ["BRAIN", "BONE"],
      };
    },
  },
  ct2mr: {
    sopClassUid: DicomMetaDictionary.sopClassUIDsByName.MRImage,
    modality: "MR",
    from: "CT",
    // Value 3 is required for MR images (PS3.3 C.8.3.1.1.1): none of the defined terms fits a synthetic image.
    imageType3: "OTHER",
    imageModule: {
      ScanningSequence: "RM",
      SequenceVariant: "NONE",
      ScanOptions: "",
      MRAcquisitionType: "2D",
      RepetitionTime: "",
      EchoTime: "",
      EchoTrainLength: "",
    },
    pixels: (raster) => {
      // MR Image Storage has no Modality LUT: the stored values are the intensities themselves, rounded, so
      // the slices of a series compare (0-255 without a reference, scanner units with a DICOM one). Only
      // intensities that rounding would destroy (relative units such as [0, 1] or z-scores: any below 0 or
      // above 65535, or all below MR_ROUNDED_FROM) are fitted into 16 bits, slice by slice, the fit recorded
      // in a Real World Value Mapping item.
      const { low, high } = fullRange(raster.data);
      const rounded = low >= 0 && high <= 65535 && high >= MR_ROUNDED_FROM;
      const fit = rounded ? { stored: Uint16Array.from(raster.data, Math.round), slope: 1, intercept: 0 } : quantize16(raster.data);
      const storedLow = Math.round((low - fit.intercept) / fit.slope);
      const storedHigh = Math.round((high - fit.intercept) / fit.slope);
      return {
        ...greyscale16(raster, fit.stored, 0),
        WindowCenter: (storedLow + storedHigh) / 2,
        WindowWidth: Math.max(1, storedHigh - storedLow),
        ...(rounded
          ? {}
          : {
              RealWorldValueMappingSequence: [
                {
                  LUTExplanation: "synthetic MR intensity (relative units), fitted into 16 bits for this slice",
                  LUTLabel: "MEDSYNTH",
                  RealWorldValueFirstValueMapped: 0,
                  RealWorldValueLastValueMapped: 65535,
                  RealWorldValueSlope: fit.slope,
                  RealWorldValueIntercept: fit.intercept,
                  MeasurementUnitsCodeSequence: [{ CodeValue: "1", CodingSchemeDesignator: "UCUM", CodeMeaning: "no units" }],
                },
              ],
            }),
      };
    },
  },
};

/** Synthetic MR intensities that reach this are stored as they are, rounded; below it they are relative units. */
const MR_ROUNDED_FROM = 16;

/** One derived series: its UID and number, and what its instances share. */
interface SeriesState {
  uid: string;
  number: number;
  /** The placeholder patient and study of non-DICOM input. */
  shared: NaturalDataset;
  /** A Frame of Reference for slices whose source had an image plane but none. */
  frameOfReference?: string;
}

/**
 * Starts the derived series of one stream. Each encoded slice becomes a new
 * instance (new SOPInstanceUID under the root) of the derived series of its
 * source's series; it carries the source's patient, study and geometry so it
 * overlays the original, and references it in the Source Image Sequence.
 * Slices that were not DICOM share one series with a placeholder patient
 * and study of their own. Slices whose position in the patient is not known
 * (not DICOM, or a source without an image plane) are Secondary Capture
 * (Conversion Type SYN, synthetic), not CT or MR images.
 */
export function createDerivedSeries(options: DerivedSeriesOptions): DerivedSeries {
  const uidRoot = options.uidRoot ?? DEFAULT_UID_ROOT;
  checkUidRoot(uidRoot);
  const target = TARGETS[options.direction];
  const now = options.now ?? (() => new Date());
  const created = now();
  const keys = options.deidentify ? createDeidentifier(uidRoot) : undefined;
  const model = `${options.modelName} ${options.modelVersion}`;
  const series = new Map<string, SeriesState>();
  let encoded = 0;

  const seriesOf = (source: DicomSource | undefined): SeriesState => {
    const key = source ? `${textOf(source.carried.StudyInstanceUID)}\\${source.seriesInstanceUid}` : "";
    let state = series.get(key);
    if (!state) {
      const number = [options.seriesNumber, (source?.seriesNumber ?? 0) + 1000].find(isIntegerString) ?? 1000;
      state = { uid: newUid(uidRoot), number, shared: source ? {} : unknownStudy(uidRoot, created) };
      series.set(key, state);
    }
    return state;
  };

  return {
    encode(raster, slice = {}) {
      const { source } = slice;
      encoded += 1;
      const derived = seriesOf(source);
      // A frame of a multi-frame source is numbered by its frame (all share the instance's number).
      const fromSource = source?.frame !== undefined ? source.frame + 1 : source?.instanceNumber;
      const instanceNumber = [slice.instanceNumber, fromSource].find(isIntegerString) ?? encoded;
      const sopInstanceUid = newUid(uidRoot);
      const instanceTime = now();
      // Where the source's image plane is not known (not DICOM, or a DICOM image without it), the instance is
      // Secondary Capture, which claims no position in the patient, rather than a CT or MR image with made-up geometry.
      const placed = source !== undefined && hasImagePlane(source.carried);
      const sopClassUid = placed ? target.sopClassUid : SECONDARY_CAPTURE;

      const context = source
        ? {
            ...TYPE_2_EMPTY,
            ...conformingDates(placed ? source.carried : withoutPlane(source.carried)),
            ...(placed
              ? {
                  PositionReferenceIndicator: source.carried.PositionReferenceIndicator ?? "",
                  // A Frame of Reference the source lacked: one for the derived series.
                  FrameOfReferenceUID: source.carried.FrameOfReferenceUID ?? (derived.frameOfReference ??= newUid(uidRoot)),
                  ...planeOf(source, raster),
                }
              : {}),
            SourceImageSequence: [sourceReference(source)],
          }
        : derived.shared;
      // No Timezone Offset From UTC: it would apply to the source's dates and times too, which are the site's own.
      const identifying: NaturalDataset = {
        ...context,
        SeriesDate: dicomDate(created),
        SeriesTime: dicomTime(created),
        ContentDate: dicomDate(instanceTime),
        ContentTime: dicomTime(instanceTime),
        InstanceCreationDate: dicomDate(instanceTime),
        InstanceCreationTime: dicomTime(instanceTime),
      };
      const dataset: NaturalDataset = {
        ...(keys ? deidentify(identifying, keys) : identifying),
        SpecificCharacterSet: "ISO_IR 192",
        SOPClassUID: sopClassUid,
        SOPInstanceUID: sopInstanceUid,
        Modality: target.modality,
        SeriesInstanceUID: derived.uid,
        SeriesNumber: derived.number,
        InstanceNumber: instanceNumber,
        SeriesDescription: `Synthetic ${target.modality} (${model})`.slice(0, 64),
        DerivationDescription:
          `Synthetic ${target.modality} translated from ${source ? target.from : `a non-DICOM ${target.from} image`} ` +
          `by the medsynth model ${model} (CycleGAN generator). NOT FOR CLINICAL USE.`,
        ImageComments: `NOT FOR CLINICAL USE: synthetic image.${placed ? "" : " Secondary Capture: its position in the patient is not known."}`,
        Manufacturer: "medsynth",
        ManufacturerModelName: options.modelName.slice(0, 64),
        SoftwareVersions: options.modelVersion.slice(0, 64),
        SyntheticData: "YES",
        // Text burned into the source's pixels may come through, blurred, in the synthetic ones.
        BurnedInAnnotation: source?.carried.BurnedInAnnotation === "YES" ? "YES" : "NO",
        ...(placed
          ? { ImageType: ["DERIVED", "SECONDARY", target.imageType3], ...target.imageModule }
          : { ImageType: ["DERIVED", "SECONDARY"], ConversionType: "SYN" }),
        ...target.pixels(raster),
      };
      return writePart10(dataset, sopClassUid, sopInstanceUid);
    },
  };
}

/** The Image Plane module's attributes and the Frame of Reference module's. */
const PLANE_KEYWORDS = [
  "ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness", "FrameOfReferenceUID", "PositionReferenceIndicator",
];

const hasImagePlane = (carried: Readonly<NaturalDataset>): boolean =>
  isNumbers(carried.ImagePositionPatient, 3) && isNumbers(carried.ImageOrientationPatient, 6) && isNumbers(carried.PixelSpacing, 2);

const withoutPlane = (carried: Readonly<NaturalDataset>): NaturalDataset =>
  Object.fromEntries(Object.entries(carried).filter(([keyword]) => !PLANE_KEYWORDS.includes(keyword)));

/** Type 2 attributes of the Patient and General Study modules: present, if empty, when the source lacks them. */
const TYPE_2_EMPTY: NaturalDataset = {
  PatientName: "", PatientID: "", PatientBirthDate: "", PatientSex: "", StudyDate: "", StudyTime: "",
  ReferringPhysicianName: "", StudyID: "", AccessionNumber: "",
};

/**
 * The source's carried attributes with its dates and times in the form
 * PS3.5 allows writing: the retired ACR-NEMA forms ("1999.05.05",
 * "10:52:34.53") rewritten, anything else unreadable emptied.
 */
function conformingDates(carried: Readonly<NaturalDataset>): NaturalDataset {
  const out: NaturalDataset = { ...carried };
  for (const keyword of ["PatientBirthDate", "StudyDate"]) {
    if (carried[keyword] === undefined) continue;
    const value = textOf(carried[keyword]).replaceAll(".", "").replaceAll("-", "");
    out[keyword] = /^\d{8}$/.test(value) ? value : "";
  }
  if (carried.StudyTime !== undefined) {
    // Colons go (ACR-NEMA), and a fraction past the 6 digits TM allows is cut.
    const value = textOf(carried.StudyTime).replaceAll(":", "").replace(/^(\d{6}\.\d{6})\d+$/, "$1");
    out.StudyTime = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/.test(value) ? value : "";
  }
  return out;
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
  const studyInstanceUid = newUid(uidRoot);
  return {
    PatientName: "UNKNOWN",
    // Its own patient in a PACS: a shared "UNKNOWN" would gather every such series under one patient.
    PatientID: `UNKNOWN-${studyInstanceUid.slice(-12)}`,
    PatientBirthDate: "",
    PatientSex: "",
    StudyInstanceUID: studyInstanceUid,
    StudyDate: dicomDate(created),
    StudyTime: dicomTime(created),
    StudyID: "",
    AccessionNumber: "",
    ReferringPhysicianName: "",
    StudyDescription: "medsynth synthetic series from non-DICOM input",
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
  try {
    file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
    return new Uint8Array(file.write());
  } catch (error) {
    // dcmjs quotes the offending value, which may be patient data; this message reaches the server log.
    const message = (error as Error).message.replace(/value:[\s\S]*$/, "value withheld");
    throw new Error(`writing the derived DICOM instance failed: ${message}`);
  }
}

/** Series and Instance Number are IS: a 32-bit signed integer. */
const isIntegerString = (value: number | undefined): value is number =>
  value !== undefined && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;

const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

const isNumbers = (value: unknown, count: number): value is number[] =>
  Array.isArray(value) && value.length === count && value.every((v) => typeof v === "number" && Number.isFinite(v));

/** DICOM DA and TM in the server's local time, as DICOM reads them without a Timezone Offset From UTC. */
const dicomDate = (date: Date): string =>
  `${date.getFullYear()}${pad(date.getMonth() + 1)}${pad(date.getDate())}`;
const dicomTime = (date: Date): string =>
  `${pad(date.getHours())}${pad(date.getMinutes())}${pad(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`;
const pad = (value: number): string => String(value).padStart(2, "0");
