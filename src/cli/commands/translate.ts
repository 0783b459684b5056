import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { Encoding, type Image, type Quality } from "../../gen/medsynth/v1/translator_pb.js";
import { decodeImage, encodePng16, encodePng8 } from "../../imaging/codec.js";
import { axialLayout, extractSlice, insertSlice, type AxialLayout } from "../../volume/axial.js";
import { readNifti, writeNifti, type NiftiVolume } from "../../imaging/nifti.js";
import type { Raster } from "../../imaging/raster.js";
import { oneOf, parseCommand, parseInteger, UsageError, type CommandSpec, type OptionSpec } from "../args.js";
import { isSliceError, type SliceInit } from "../../client/client.js";
import { modalitiesOf, type DirectionName } from "../../contract/direction.js";
import { statusName } from "../../client/errors.js";
import { everyAnswer, indices } from "../answers.js";
import { progressBar } from "../progress.js";
import { csv, formatMeanStd, summarize } from "../report.js";
import { PNG_RESCALE, type Rescale } from "../../volume/png-rescale.js";
import { isNiftiPath, listSliceFiles, niftiStem, rawImage, readReferenceImage, readSliceImage, type SliceFile } from "../slice-files.js";
import { CONNECTION_OPTIONS, connect } from "./common.js";
import { DEFAULT_WINDOW } from "../../contract/limits.js";
import { DEFAULT_STOW_OPTIONS, StowSender, stowAuthorization, type StowOutcome } from "../../dicomweb/stow.js";

export const translateSpec = {
  name: "translate",
  summary: "Translate a folder of PNG or DICOM slices, or a NIfTI volume, to the other modality.",
  usage: "medsynth translate <input> --direction mr2ct|ct2mr --out <dir> [options]",
  details: [
    "<input> is a folder of PNG or DICOM slices (each frame of a multi-frame DICOM file is a slice,",
    "<name>-frame-001 and so on), or a .nii/.nii.gz volume (cut into axial slices and written back as",
    "a float32 NIfTI with the same header geometry; NaN voxels are set to its lowest value). With",
    "--reference (a folder whose files have the same names, or a NIfTI volume on the same voxel",
    "grid, in any orientation) each slice gets PSNR, SSIM, UQI,",
    "VIF and MAE from the service, written to <out>/metrics.csv. PNG slices are read and written with",
    "the project's convention (CT stored as HU + 1024, MR as is) unless --slope/--intercept say",
    "otherwise; a PNG whose values all fit in 0-255 is written with 8 bits, else 16. With",
    "--stow-url (and --format dicom) every synthetic instance is also stored in a PACS by DICOMweb",
    "STOW-RS as it arrives; a store that fails after its retries is counted and named, and the",
    "slice's files are written all the same. Exits 1 when any slice failed or could not be stored.",
    "NOT FOR CLINICAL USE.",
  ].join("\n"),
  options: {
    direction: { type: "string", short: "d", placeholder: "mr2ct|ct2mr", description: "translation direction (required)" },
    out: { type: "string", short: "o", placeholder: "dir", description: "output folder (required; created if missing)" },
    reference: { type: "string", short: "r", placeholder: "dir|file", description: "real images of the target modality, for metrics" },
    format: {
      type: "string",
      placeholder: "png|raw|dicom|nifti",
      description: "output format (default: the input's; raw = float32 little-endian in physical units)",
    },
    model: { type: "string", short: "m", placeholder: "name", description: "model to use (default: the direction's default)" },
    slope: { type: "string", placeholder: "n", description: "PNG input: physical = stored × slope + intercept (default 1)" },
    intercept: { type: "string", placeholder: "n", description: "PNG input intercept (default -1024 for CT, 0 for MR)" },
    "reference-slope": { type: "string", placeholder: "n", description: "PNG reference slope (default 1)" },
    "reference-intercept": { type: "string", placeholder: "n", description: "PNG reference intercept (default by modality)" },
    foreground: { type: "boolean", description: "also compute the metrics inside the head mask (fg_* columns)" },
    window: { type: "string", placeholder: "n", description: "slices in flight on the stream", default: String(DEFAULT_WINDOW) },
    quiet: { type: "boolean", short: "q", description: "no progress bar" },
    "stow-url": { type: "string", placeholder: "url", description: "DICOMweb base URL: store each synthetic instance there by STOW-RS (needs --format dicom)" },
    "stow-token": { type: "string", placeholder: "token", description: "bearer token for --stow-url (default: $MEDSYNTH_STOW_TOKEN)" },
    "stow-basic-auth-file": { type: "string", placeholder: "file", description: "first line user:password, for basic auth at --stow-url" },
    "stow-retries": { type: "string", placeholder: "n", description: "retries of a store that may pass (network, timeout, 408, 429, 5xx)", default: String(DEFAULT_STOW_OPTIONS.retries) },
    ...CONNECTION_OPTIONS,
  },
  positionals: { min: 1, max: 1 },
  examples: [
    "medsynth translate models/testdata/subject-101/mr -d mr2ct -r models/testdata/subject-101/ct -o out/ct",
    "medsynth translate head-ct.nii.gz -d ct2mr -o out --target 127.0.0.1:50051",
  ],
} satisfies CommandSpec<Record<string, OptionSpec>>;

type Format = "png" | "raw" | "dicom" | "nifti";

/** Where slices come from and where their answers go. */
interface Job {
  count: number;
  names: string[];
  slices(): AsyncGenerator<SliceInit>;
  /** Writes one answer's image; returns the written file (relative to --out) for the index. */
  write(index: number, image: Image): Promise<string>;
  /** Writes what is left (a NIfTI volume) after the last answer. */
  finish(): Promise<string[]>;
}

const QUALITY_KEYS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;

function rescaleOption(value: string | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || (option.endsWith("slope") && n === 0)) {
    throw new UsageError(`--${option} "${value}": expected a${option.endsWith("slope") ? " non-zero" : ""} number`);
  }
  return n;
}

/**
 * Physical values → the project's PNG convention (stored = value − intercept, clipped to 16 bits). Rounded
 * and stored as they are, whatever their range; a slice whose stored values all fit in 0–255 (a synthetic MR
 * in the nominal 8-bit range or an 8-bit reference's window) is written as an 8-bit PNG, which loses nothing
 * and reads back in those units with any tool, as the 8-bit T1 slices it is compared with do.
 */
async function pngBytes(raster: Raster, rescale: Rescale): Promise<Uint8Array> {
  const stored = new Uint16Array(raster.data.length);
  let top = 0;
  for (let i = 0; i < stored.length; i++) {
    stored[i] = Math.min(65535, Math.max(0, Math.round((raster.data[i] - rescale.intercept) / rescale.slope)));
    if (stored[i] > top) top = stored[i];
  }
  const { width, height } = raster;
  return top <= 255 ? encodePng8({ width, height, data: Uint8Array.from(stored) }) : encodePng16({ width, height, data: stored });
}

const EXTENSION: Record<Exclude<Format, "nifti">, string> = { png: ".png", raw: ".raw", dicom: ".dcm" };

/** Writes one slice file in `format` and returns its name. */
async function writeSliceFile(out: string, name: string, format: Exclude<Format, "nifti">, image: Image, rescale: Rescale): Promise<string> {
  const file = `${name}${EXTENSION[format]}`;
  const bytes = format === "png" ? await pngBytes((await decodeImage(image, "result.image")).raster, rescale) : image.data;
  await writeFile(join(out, file), bytes);
  return file;
}

async function folderJob(files: SliceFile[], reference: string | undefined, out: string, format: Exclude<Format, "nifti">, rescales: { input: Rescale; reference: Rescale; output: Rescale }): Promise<Job> {
  let references: Map<string, SliceFile> | undefined;
  if (reference !== undefined) {
    references = new Map((await listSliceFiles(reference)).map((f) => [f.name, f]));
    const missing = files.filter((f) => !references!.has(f.name)).map((f) => f.name);
    if (missing.length > 0) throw new UsageError(`--reference ${reference} has no slice named ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""}`);
  }
  return {
    count: files.length,
    names: files.map((f) => f.name),
    async *slices() {
      for (const [index, file] of files.entries()) {
        const ref = references?.get(file.name);
        yield {
          index: BigInt(index),
          image: await readSliceImage(file, rescales.input),
          ...(file.frame !== undefined ? { frame: file.frame } : {}),
          ...(ref ? { reference: await readReferenceImage(ref, rescales.reference) } : {}),
        };
      }
    },
    write: (index, image) => writeSliceFile(out, files[index].name, format, image, rescales.output),
    finish: async () => [],
  };
}

async function niftiJob(input: string, reference: string | undefined, out: string, format: Exclude<Format, "dicom">, target: string, rescale: Rescale): Promise<Job> {
  const volume = finiteVolume(readNifti(await readFile(input), input), input);
  const layout: AxialLayout = axialLayout(volume.dims, volume.affine);
  let referenceVolume: NiftiVolume | undefined;
  let referenceLayout: AxialLayout | undefined;
  if (reference !== undefined) {
    referenceVolume = finiteVolume(readNifti(await readFile(reference), reference), reference);
    // Each volume is cut by its own orientation; the two must then put their voxels at the same places.
    referenceLayout = axialLayout(referenceVolume.dims, referenceVolume.affine);
    const apart = gridDistance(volume, layout, referenceVolume, referenceLayout);
    if (apart > GRID_TOLERANCE_MM) {
      throw new UsageError(
        `--reference ${reference} is not on the voxel grid of ${input} (${referenceVolume.dims.join("×")} against ` +
          `${volume.dims.join("×")} voxels; ${Number.isFinite(apart) ? `corresponding voxels up to ${apart.toFixed(2)} mm apart` : "other slice sizes"}): ` +
          "resample it onto the input's grid first",
      );
    }
  }
  const stem = niftiStem(input);
  const names = Array.from({ length: layout.count }, (_, k) => `${stem}-${String(k).padStart(3, "0")}`);
  // Slices that fail stay NaN, so they cannot pass for real values.
  const synthetic = format === "nifti" ? new Float32Array(volume.data.length).fill(NaN) : undefined;
  return {
    count: layout.count,
    names,
    async *slices() {
      for (let k = 0; k < layout.count; k++) {
        yield {
          index: BigInt(k),
          image: rawImage(extractSlice(volume.data, layout, k)),
          ...(referenceVolume ? { reference: rawImage(extractSlice(referenceVolume.data, referenceLayout!, k)) } : {}),
        };
      }
    },
    async write(index, image) {
      if (!synthetic) return writeSliceFile(out, names[index], format as "png" | "raw", image, rescale);
      insertSlice(synthetic, layout, index, (await decodeImage(image, "result.image")).raster);
      return `${stem}-synthetic-${target}.nii${input.toLowerCase().endsWith(".gz") ? ".gz" : ""}`;
    },
    async finish() {
      if (!synthetic) return [];
      const file = `${stem}-synthetic-${target}.nii${input.toLowerCase().endsWith(".gz") ? ".gz" : ""}`;
      const description = `medsynth synthetic ${target.toUpperCase()} - NOT FOR CLINICAL USE`;
      await writeFile(join(out, file), writeNifti(volume, synthetic, { gzip: file.endsWith(".gz"), description }));
      return [file];
    },
  };
}

/** How far apart two volumes' voxel grids may put the same pixel of their axial slices. */
const GRID_TOLERANCE_MM = 0.01;

/** World position (mm) of a voxel given by its index in the data. */
function worldOf(volume: NiftiVolume, voxel: number): number[] {
  const [nx, ny] = volume.dims;
  const ijk = [voxel % nx, Math.floor(voxel / nx) % ny, Math.floor(voxel / (nx * ny)), 1];
  return [0, 1, 2].map((row) => volume.affine[row].reduce((sum, value, col) => sum + value * ijk[col], 0));
}

/** Largest distance between the world positions of the same axial pixel in two volumes (Infinity: other slice shapes). */
function gridDistance(a: NiftiVolume, layoutA: AxialLayout, b: NiftiVolume, layoutB: AxialLayout): number {
  if (layoutA.width !== layoutB.width || layoutA.height !== layoutB.height || layoutA.count !== layoutB.count) return Infinity;
  let apart = 0;
  for (const slice of [0, layoutA.count - 1]) {
    for (const [row, column] of [[0, 0], [0, layoutA.width - 1], [layoutA.height - 1, 0], [layoutA.height - 1, layoutA.width - 1]]) {
      const p = worldOf(a, layoutA.voxel(slice, row, column));
      const q = worldOf(b, layoutB.voxel(slice, row, column));
      apart = Math.max(apart, Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]));
    }
  }
  return apart;
}

/**
 * The volume with its non-finite voxels (NaN outside a mask, say) set to its lowest finite value, the
 * background's, which the service needs: it refuses non-finite samples. Says so on stderr when it does.
 */
function finiteVolume(volume: NiftiVolume, path: string): NiftiVolume {
  let lowest = Infinity;
  let nonFinite = 0;
  for (const value of volume.data) {
    if (!Number.isFinite(value)) nonFinite++;
    else if (value < lowest) lowest = value;
  }
  if (nonFinite === 0) return volume;
  if (!Number.isFinite(lowest)) throw new UsageError(`${path}: no voxel has a finite value`);
  const data = Float32Array.from(volume.data, (value) => (Number.isFinite(value) ? value : lowest));
  process.stderr.write(`${path}: ${nonFinite} non-finite voxels (NaN or ±Infinity) set to the volume's lowest value, ${lowest}\n`);
  return { ...volume, data };
}

export async function translateCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(translateSpec, argv);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  const input = positionals[0];
  if (!values.direction) throw new UsageError("--direction is required (mr2ct or ct2mr)");
  if (!values.out) throw new UsageError("--out is required");
  const direction = oneOf(values.direction, ["mr2ct", "ct2mr"] as const, "direction") as DirectionName;
  const { source, target } = modalitiesOf(direction);
  const nifti = isNiftiPath(input);
  const inputStat = await stat(input).catch(() => undefined);
  if (nifti ? !inputStat?.isFile() : !inputStat?.isDirectory()) {
    throw new UsageError(`${input}: ${inputStat ? "" : "does not exist; "}expected a folder of PNG/DICOM slices or a .nii/.nii.gz file`);
  }
  if (values.reference !== undefined && !(await stat(values.reference).catch(() => undefined))) {
    throw new UsageError(`--reference ${values.reference} does not exist`);
  }
  const allowed: readonly Format[] = nifti ? ["nifti", "png", "raw"] : ["png", "raw", "dicom"];
  // Listed once: a DICOM file's header is read to count its frames.
  const sliceFiles = nifti ? [] : await listSliceFiles(input);
  const defaultFormat: Format = nifti ? "nifti" : sliceFiles[0].kind;
  const format = values.format === undefined ? defaultFormat : oneOf(values.format as Format, allowed, "format");
  const out = values.out;
  if (!nifti && resolve(out) === resolve(input)) throw new UsageError("--out must not be the input folder");
  if (!nifti && values.reference !== undefined && resolve(out) === resolve(values.reference)) {
    throw new UsageError("--out must not be the --reference folder: the synthetic slices would overwrite the real ones");
  }
  const window = parseInteger(values.window, "window");
  const rescales = {
    input: { slope: rescaleOption(values.slope, 1, "slope"), intercept: rescaleOption(values.intercept, PNG_RESCALE[source].intercept, "intercept") },
    reference: {
      slope: rescaleOption(values["reference-slope"], 1, "reference-slope"),
      intercept: rescaleOption(values["reference-intercept"], PNG_RESCALE[target].intercept, "reference-intercept"),
    },
    output: PNG_RESCALE[target],
  };

  const stowUrl = values["stow-url"];
  if (stowUrl !== undefined && format !== "dicom") {
    throw new UsageError("--stow-url stores DICOM instances: translate a folder of PNG or DICOM slices with --format dicom");
  }
  const stowed: StowOutcome[] = [];
  let stow: StowSender | undefined;
  if (stowUrl !== undefined) {
    if (!/^https?:\/\/[^\s/]+/.test(stowUrl)) throw new UsageError(`--stow-url ${stowUrl}: expected an http:// or https:// URL`);
    let authorization: string | undefined;
    try {
      authorization = stowAuthorization({ token: values["stow-token"] ?? process.env.MEDSYNTH_STOW_TOKEN, basicAuthFile: values["stow-basic-auth-file"] });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    stow = new StowSender({ url: stowUrl, authorization, retries: parseInteger(values["stow-retries"], "stow-retries", 0) }, (outcome) => stowed.push(outcome));
  }

  if ((await stat(out).catch(() => undefined))?.isDirectory() === false) throw new UsageError(`--out ${out} is a file; name a folder`);
  await mkdir(out, { recursive: true });
  const job = nifti
    ? await niftiJob(input, values.reference, out, format as Exclude<Format, "dicom">, target, rescales.output)
    : await folderJob(sliceFiles, values.reference, out, format as Exclude<Format, "nifti">, rescales);

  const service = await connect(values);
  const progress = progressBar(job.count, `${direction}`, !values.quiet && process.stderr.isTTY === true);
  const started = performance.now();
  const failures: { index: number; code: number; message: string }[] = [];
  const rows: (string | number)[][] = [];
  const written: { index: number; name: string; file: string; width?: number; height?: number }[] = [];
  const qualities: Quality[] = [];
  let model = values.model ?? "";
  let answered = 0;
  try {
    const answers = service.client.translate(
      {
        direction,
        model: values.model,
        outputEncoding: format === "dicom" ? Encoding.DICOM : Encoding.RAW,
        foregroundMetrics: values.foreground,
        window,
      },
      job.slices(),
    );
    for await (const answer of everyAnswer(answers, () => indices(answered, job.count))) {
      const index = Number(answer.index);
      answered++;
      progress.tick();
      if (isSliceError(answer)) {
        failures.push({ index, code: answer.code, message: answer.message });
        continue;
      }
      model = answer.model;
      if (stow && answer.image) stow.store(answer.image.data, job.names[index]);
      const file = answer.image ? await job.write(index, answer.image) : "";
      // RAW files carry no header: their size is here (and for every format, to check against the input).
      written.push({ index, name: job.names[index], file, ...(answer.image?.width ? { width: answer.image.width, height: answer.image.height } : {}) });
      if (answer.quality) {
        qualities.push(answer.quality);
        const fg = answer.foregroundQuality;
        // A metric the service could not compute for the slice (Quality.unavailable) is an empty cell.
        rows.push([index, job.names[index], answer.model, ...QUALITY_KEYS.map((k) => answer.quality![k] ?? ""), ...(values.foreground ? QUALITY_KEYS.map((k) => fg?.[k] ?? "") : [])]);
      }
    }
  } finally {
    progress.stop();
    await service.close();
    await stow?.flush();
    stow?.close();
  }
  const elapsed = (performance.now() - started) / 1000;
  const files = await job.finish();

  const print = (line: string) => process.stdout.write(`${line}\n`);
  print(
    `translated ${written.length}/${job.count} slices ${direction} with ${model || "the default model"} ` +
      `in ${elapsed.toFixed(1)} s (${(written.length / Math.max(elapsed, 1e-3)).toFixed(1)} slices/s) -> ${out} (${format})`,
  );
  for (const file of files) print(`wrote ${join(out, file)}`);
  if (rows.length > 0) {
    const columns = ["index", "name", "model", ...QUALITY_KEYS, ...(values.foreground ? QUALITY_KEYS.map((k) => `fg_${k}`) : [])];
    await writeFile(join(out, "metrics.csv"), csv(columns, rows));
    const digits: Record<(typeof QUALITY_KEYS)[number], number> = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };
    print(
      `metrics over ${qualities.length} slices (mean ± std): ` +
        QUALITY_KEYS.map((k) => `${k.toUpperCase()} ${formatMeanStd(summarize(qualities.map((q) => q[k])), digits[k])}`).join(", "),
    );
    print(`wrote ${join(out, "metrics.csv")}`);
  } else {
    // A metrics.csv from an earlier run into the same folder would pass for this one's.
    await rm(join(out, "metrics.csv"), { force: true });
  }
  await writeFile(
    join(out, "index.json"),
    JSON.stringify(
      {
        description: `medsynth synthetic ${target.toUpperCase()} from ${input}. NOT FOR CLINICAL USE.`,
        direction,
        model,
        format,
        ...(format === "png" ? { png: { rescale_slope: rescales.output.slope, rescale_intercept: rescales.output.intercept } } : {}),
        ...(format === "raw" ? { raw: { pixel_type: "float32", byte_order: "little-endian" } } : {}),
        units: target === "ct" ? "HU" : "scanner units",
        slices: written.sort((a, b) => a.index - b.index),
        failed: failures.map(({ index, code, message }) => ({ index, name: job.names[index], status: statusName(code), message })),
        ...(stowUrl !== undefined
          ? { stow: { stored: stowed.filter((o) => o.ok).length, failed: stowed.filter((o) => !o.ok).map(({ label, status, reason, attempts }) => ({ name: label, status, reason, attempts })) } }
          : {}),
      },
      null,
      2,
    ) + "\n",
  );
  const storeFailures = stowed.filter((o) => !o.ok);
  if (stowUrl !== undefined) {
    print(`stored ${stowed.length - storeFailures.length}/${stowed.length} instances by STOW-RS`);
    for (const status of new Set(storeFailures.map((o) => o.status))) {
      const group = storeFailures.filter((o) => o.status === status);
      process.stderr.write(`STOW-RS ${status} x${group.length}, e.g. ${group[0].label} after ${group[0].attempts} attempt(s): ${group[0].reason}\n`);
    }
  }
  if (failures.length === 0) return storeFailures.length === 0 ? 0 : 1;
  process.stderr.write(`${failures.length} of ${job.count} slices failed:\n`);
  for (const code of new Set(failures.map((f) => f.code))) {
    const group = failures.filter((f) => f.code === code);
    process.stderr.write(`  ${statusName(code)} x${group.length}, e.g. ${job.names[group[0].index]}: ${group[0].message}\n`);
  }
  return 1;
}
