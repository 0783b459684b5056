import { open, readdir, readFile, stat } from "node:fs/promises";
import dcmjs from "dcmjs";
import { basename, extname, join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Encoding, PixelType, type ImageSchema } from "../gen/medsynth/v1/translator_pb.js";
import type { Raster } from "../imaging/raster.js";
import type { Rescale } from "../volume/png-rescale.js";

export type ImageInit = MessageInitShape<typeof ImageSchema>;

/** One slice image on disk. `name` (the file name without extension) pairs it with its reference. */
export interface SliceFile {
  name: string;
  path: string;
  kind: "png" | "dicom";
  /** The frame of a multi-frame DICOM instance (0-based); its name ends in "-frame-001" and so on. */
  frame?: number;
}

// dcmjs warnings can quote attribute values (patient data), as in src/imaging/dicom-read.ts.
dcmjs.log.setLevel("silent");

const DICOM_EXTENSIONS = new Set([".dcm", ".dicom", ".ima"]);
const NIFTI = /\.nii(\.gz)?$/i;

export const isNiftiPath = (path: string) => NIFTI.test(path);

/** Name of a NIfTI file without .nii/.nii.gz. */
export const niftiStem = (path: string) => basename(path).replace(NIFTI, "");

async function hasDicomMagic(path: string): Promise<boolean> {
  const file = await open(path, "r");
  try {
    const { bytesRead, buffer } = await file.read(Buffer.alloc(4), 0, 4, 128);
    return bytesRead === 4 && buffer.toString("latin1") === "DICM";
  } finally {
    await file.close();
  }
}

/** Number of Frames of a DICOM file (1 when absent or unreadable: the service then names the problem). */
async function framesOf(path: string): Promise<number> {
  try {
    const bytes = await readFile(path);
    const { dict } = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), {
      untilTag: "7FE00010",
    });
    const frames = Number(dict["00280008"]?.Value?.[0] ?? 1);
    return Number.isInteger(frames) && frames > 1 ? frames : 1;
  } catch {
    return 1;
  }
}

/**
 * The PNG or DICOM slices of a folder (DICOM: .dcm/.dicom/.ima, or any file
 * with the Part-10 "DICM" marker), in natural name order (2 before 10); each
 * frame of a multi-frame DICOM instance is a slice of its own. Symbolic
 * links to files count as files. Hidden files and other files are skipped;
 * a folder mixing PNG and DICOM is refused.
 */
export async function listSliceFiles(dir: string): Promise<SliceFile[]> {
  const files: SliceFile[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name.startsWith(".")) continue;
    if (!entry.isFile() && !(entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isFile())) continue;
    const extension = extname(entry.name).toLowerCase();
    const name = basename(entry.name, extname(entry.name));
    if (extension === ".png") files.push({ name, path, kind: "png" });
    else if (DICOM_EXTENSIONS.has(extension) || (extension === "" && (await hasDicomMagic(path)))) {
      const frames = await framesOf(path);
      if (frames === 1) files.push({ name, path, kind: "dicom" });
      else for (let frame = 0; frame < frames; frame++) files.push({ name: `${name}-frame-${String(frame + 1).padStart(3, "0")}`, path, kind: "dicom", frame });
    }
  }
  if (files.length === 0) throw new Error(`${dir}: no PNG or DICOM slices found`);
  if (new Set(files.map((f) => f.kind)).size > 1) throw new Error(`${dir}: mixes PNG and DICOM files; put each series in its own folder`);
  const collator = new Intl.Collator("en", { numeric: true });
  return files.sort((a, b) => collator.compare(a.name, b.name));
}

/** The Image message for a slice file: PNG with its rescale, or a whole DICOM file (it carries its own). */
export async function readSliceImage(file: SliceFile, rescale: Rescale): Promise<ImageInit> {
  const data = await readFile(file.path);
  return file.kind === "png"
    ? { encoding: Encoding.PNG, data, rescaleSlope: rescale.slope, rescaleIntercept: rescale.intercept }
    : { encoding: Encoding.DICOM, data };
}

/** A raster as a RAW float32 Image in physical units. */
export function rawImage(raster: Raster): ImageInit {
  const { width, height, data } = raster;
  return {
    encoding: Encoding.RAW,
    pixelType: PixelType.FLOAT32,
    width,
    height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    rescaleSlope: 1,
  };
}
