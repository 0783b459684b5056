import { open, readdir, readFile, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Encoding, ImageSchema, PixelType } from "../gen/medsynth/v1/translator_pb.js";
import { decodeImage } from "../imaging/codec.js";
import dcmjs from "../imaging/dcmjs-silent.js";
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
  // The header is in the first MiB of nearly every file; the rest is read only for a longer header.
  const head = await headOf(path, HEADER_BYTES);
  const frames = framesIn(head) ?? (head.length < HEADER_BYTES ? undefined : framesIn(await readFile(path)));
  return frames !== undefined && Number.isInteger(frames) && frames > 1 ? frames : 1;
}

/** Number of Frames from a Part-10 file's header, or undefined where the bytes do not hold the header. */
function framesIn(bytes: Uint8Array): number | undefined {
  try {
    const { dict } = dcmjs.data.DicomMessage.readFile(new Uint8Array(bytes).buffer, { untilTag: "7FE00010" });
    return Number(dict["00280008"]?.Value?.[0] ?? 1);
  } catch {
    return undefined;
  }
}

const HEADER_BYTES = 1 << 20;

async function headOf(path: string, bytes: number): Promise<Buffer> {
  const file = await open(path, "r");
  try {
    const { bytesRead, buffer } = await file.read(Buffer.alloc(bytes), 0, bytes, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
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
  // Names pair slices with their references and name the outputs: two slices with one name would overwrite each other.
  const seen = new Map<string, string>();
  for (const file of files) {
    const other = seen.get(file.name);
    if (other !== undefined) {
      throw new Error(
        `${dir}: ${basename(other)} and ${basename(file.path)} both give the slice name "${file.name}" ` +
          "(a multi-frame file's frames are named <file>-frame-001 and so on); rename one",
      );
    }
    seen.set(file.name, file.path);
  }
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

/**
 * A reference slice file as an Image: one frame of a multi-frame file is decoded here (Slice.frame picks the
 * input's frame, not the reference's), as RAW in physical units; any other file as readSliceImage reads it.
 */
export async function readReferenceImage(file: SliceFile, rescale: Rescale): Promise<ImageInit> {
  const image = await readSliceImage(file, rescale);
  if (file.frame === undefined) return image;
  const { raster } = await decodeImage(create(ImageSchema, image), file.name, { frame: file.frame });
  return rawImage(raster);
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
