import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { isSliceError, type SliceInit, type TranslatorClient } from "../src/client/client.js";
import { create } from "@bufbuild/protobuf";
import { Encoding, ImageSchema, PixelType, type Quality, type SliceResult } from "../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage, encodePng16 } from "../src/imaging/codec.js";
import { readNifti } from "../src/imaging/nifti.js";
import { axialLayout, extractSlice } from "../src/volume/axial.js";
import type { Raster } from "../src/imaging/raster.js";
import { readCsv, runCli } from "./helpers/cli.js";
import { nifti1, NIFTI_FLOAT32, NIFTI_INT16 } from "./helpers/nifti.js";
import { useTestServer } from "./helpers/service.js";
import { makeInstance } from "./dicom-fixtures.js";
import { useTempDir } from "./helpers/temp-dir.js";

const SUBJECT = "models/testdata/subject-101";
const RESCALE = { ct: -1024, mr: 0 }; // models/testdata/index.json: CT stored as HU + 1024
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
const DIRECTIONS = [
  { direction: "mr2ct", source: "mr", target: "ct" },
  { direction: "ct2mr", source: "ct", target: "mr" },
] as const;

const pngSlice = (modality: "ct" | "mr", dir: string, file: string) => ({
  encoding: Encoding.PNG,
  data: readFileSync(join(dir, file)),
  rescaleIntercept: RESCALE[modality],
});
const raw = (raster: Raster) => ({
  encoding: Encoding.RAW,
  pixelType: PixelType.FLOAT32,
  width: raster.width,
  height: raster.height,
  data: new Uint8Array(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength),
});
const physical = async (modality: "ct" | "mr", path: string) =>
  (await decodeImage(create(ImageSchema, pngSlice(modality, "", path)), "test")).raster;

/** What the service answers for these slices when asked directly (RAW output). */
async function answers(client: TranslatorClient, direction: "mr2ct" | "ct2mr", slices: SliceInit[]): Promise<SliceResult[]> {
  const results: SliceResult[] = [];
  for await (const answer of client.translate({ direction, outputEncoding: Encoding.RAW }, slices)) {
    assert.ok(!isSliceError(answer), `slice ${answer.index} failed`);
    results.push(answer);
  }
  return results;
}

function assertCsvMatches(csvPath: string, expected: { name: string; quality: Quality | undefined }[]): void {
  const rows = readCsv(csvPath);
  assert.equal(rows.length, expected.length);
  rows.forEach((row, n) => {
    assert.equal(row.index, String(n));
    assert.equal(row.name, expected[n].name);
    for (const metric of METRICS) assert.equal(Number(row[metric]), expected[n].quality![metric], `${row.name} ${metric}`);
  });
}

describe("medsynth translate against a real server", () => {
  // One slice per batch, so the CLI's answers and the test's own answers are computed identically.
  const served = useTestServer({ maxBatch: 1 });
  const work = useTempDir("cli");

  for (const { direction, source, target } of DIRECTIONS) {
    it(`translates a PNG folder ${direction} with references: PNG out, CSV values are the service's`, async () => {
      const out = join(work.path, `png-${direction}`);
      const run = await runCli(["translate", `${SUBJECT}/${source}`, "-d", direction, "-r", `${SUBJECT}/${target}`, "-o", out, "--target", served.server.address]);
      assert.equal(run.code, 0, run.stderr);
      const files = readdirSync(`${SUBJECT}/${source}`).sort();
      const n = files.length;
      assert.match(run.stdout, new RegExp(`translated ${n}/${n} slices ${direction} with tiny-${direction}`));
      assert.match(run.stdout, new RegExp(`metrics over ${n} slices \\(mean ± std\\): PSNR`));

      const expected = await answers(
        served.library,
        direction,
        files.map((file, n) => ({
          index: BigInt(n),
          image: pngSlice(source, `${SUBJECT}/${source}`, file),
          reference: pngSlice(target, `${SUBJECT}/${target}`, file),
        })),
      );
      assertCsvMatches(join(out, "metrics.csv"), expected.map((r, n) => ({ name: files[n].replace(".png", ""), quality: r.quality })));

      // Written with the project's PNG convention: stored = round(physical − intercept).
      const written = await physical(target, join(out, files[5]));
      const answer = new Float32Array(expected[5].image!.data.slice().buffer);
      assert.equal(written.data.length, 256 * 256);
      for (let i = 0; i < answer.length; i += 97) {
        const stored = Math.min(65535, Math.max(0, Math.round(answer[i] - RESCALE[target])));
        assert.equal(written.data[i], stored + RESCALE[target]);
      }
      const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
      assert.equal(index.slices.length, n);
      assert.deepEqual(index.failed, []);
      assert.deepEqual(index.png, { rescale_slope: 1, rescale_intercept: RESCALE[target] });
      // 8 bits when every stored value fits in them (never for CT's HU + 1024), else 16.
      const fits = written.data.every((v) => v - RESCALE[target] <= 255);
      assert.equal((await sharp(join(out, files[5])).metadata()).depth, fits ? "uchar" : "ushort", `${target} PNG depth`);
    });
  }

  it("writes RAW float32 slices that are exactly the service's images", async () => {
    const out = join(work.path, "raw");
    const run = await runCli(["translate", `${SUBJECT}/ct`, "-d", "ct2mr", "-o", out, "--format", "raw", "--target", served.server.address, "-q"]);
    assert.equal(run.code, 0, run.stderr);
    const files = readdirSync(`${SUBJECT}/ct`).sort().slice(0, 3);
    const expected = await answers(served.library, "ct2mr", files.map((file, n) => ({ index: BigInt(n), image: pngSlice("ct", `${SUBJECT}/ct`, file) })));
    files.forEach((file, n) => assert.deepEqual(new Uint8Array(readFileSync(join(out, file.replace(".png", ".raw")))), expected[n].image!.data));
    assert.equal(readdirSync(out).filter((f) => f.endsWith(".csv")).length, 0, "no references, no metrics CSV");
  });

  it("writes PNG values as they are when the answer spans under 255 units (an 8-bit reference's window)", async () => {
    const files = readdirSync(`${SUBJECT}/ct`).sort().slice(10, 12);
    const input = join(work.path, "ct-two");
    const reference = join(work.path, "mr-8bit");
    mkdirSync(input, { recursive: true });
    mkdirSync(reference, { recursive: true });
    const eightBit: Raster[] = [];
    for (const file of files) {
      copyFileSync(`${SUBJECT}/ct/${file}`, join(input, file));
      const mr = await physical("mr", `${SUBJECT}/mr/${file}`);
      let max = 0;
      for (const v of mr.data) max = Math.max(max, v);
      const data = mr.data.map((v) => Math.round((v / max) * 200));
      eightBit.push({ ...mr, data });
      writeFileSync(join(reference, file), await encodePng16({ width: mr.width, height: mr.height, data: Uint16Array.from(data) }));
    }
    const out = join(work.path, "png-8bit");
    const run = await runCli(["translate", input, "-d", "ct2mr", "-r", reference, "-o", out, "--target", served.server.address, "-q"]);
    assert.equal(run.code, 0, run.stderr);
    const expected = await answers(
      served.library,
      "ct2mr",
      files.map((file, n) => ({ index: BigInt(n), image: pngSlice("ct", `${SUBJECT}/ct`, file), reference: raw(eightBit[n]) })),
    );
    for (const [n, file] of files.entries()) {
      const answer = new Float32Array(expected[n].image!.data.slice().buffer);
      const written = await physical("mr", join(out, file));
      let top = 0;
      for (let i = 0; i < answer.length; i++) {
        assert.equal(written.data[i], Math.min(65535, Math.max(0, Math.round(answer[i]))), `${file} pixel ${i}`);
        top = Math.max(top, written.data[i]);
      }
      assert.ok(top <= 255, `${file}: the answer stays in the reference's 8-bit window (max ${top})`);
      assert.equal((await sharp(join(out, file)).metadata()).depth, "uchar", `${file}: written as an 8-bit PNG`);
    }
  });

  for (const { direction, source, target } of DIRECTIONS) {
    it(`translates a NIfTI volume ${direction} with a reference volume, keeping the header geometry`, async () => {
      const files = readdirSync(`${SUBJECT}/mr`).sort().slice(8, 14);
      // RAS+ volume whose axial view is the PNG slices: voxel (i, j, k) = pixel (255 − j, 255 − i) of slice k.
      const volume = async (modality: "ct" | "mr") => {
        const values = new Array<number>(256 * 256 * files.length);
        for (const [k, file] of files.entries()) {
          const slice = await physical(modality, `${SUBJECT}/${modality}/${file}`);
          for (let j = 0; j < 256; j++) {
            for (let i = 0; i < 256; i++) values[i + 256 * (j + 256 * k)] = slice.data[(255 - j) * 256 + (255 - i)] - RESCALE[modality];
          }
        }
        const srow = [[0.9, 0, 0, -115], [0, 0.9, 0, -115], [0, 0, 4.3, -40]];
        return gzipSync(nifti1({ dims: [256, 256, files.length], datatype: NIFTI_INT16, values, slope: 1, inter: RESCALE[modality], srow }));
      };
      const input = join(work.path, `${source}-${direction}.nii.gz`);
      const reference = join(work.path, `${target}-${direction}.nii.gz`);
      writeFileSync(input, await volume(source));
      writeFileSync(reference, await volume(target));
      const out = join(work.path, `nifti-${direction}`);

      const run = await runCli(["translate", input, "-d", direction, "-r", reference, "-o", out, "--target", served.server.address]);
      assert.equal(run.code, 0, run.stderr);
      const outputPath = join(out, `${source}-${direction}-synthetic-${target}.nii.gz`);
      assert.match(run.stdout, new RegExp(`wrote ${outputPath.replace(/[.]/g, "\\.")}`));

      const expected = await answers(
        served.library,
        direction,
        await Promise.all(
          files.map(async (file, k) => ({
            index: BigInt(k),
            image: raw(await physical(source, `${SUBJECT}/${source}/${file}`)),
            reference: raw(await physical(target, `${SUBJECT}/${target}/${file}`)),
          })),
        ),
      );
      const stem = `${source}-${direction}`;
      assertCsvMatches(join(out, "metrics.csv"), expected.map((r, k) => ({ name: `${stem}-${String(k).padStart(3, "0")}`, quality: r.quality })));

      const original = readNifti(readFileSync(input));
      const synthetic = readNifti(readFileSync(outputPath));
      assert.deepEqual(synthetic.dims, original.dims);
      assert.deepEqual(synthetic.affine, original.affine);
      const layout = axialLayout(synthetic.dims, synthetic.affine);
      for (const [k, answer] of expected.entries()) {
        assert.deepEqual(extractSlice(synthetic.data, layout, k).data, new Float32Array(answer.image!.data.slice().buffer), `slice ${k}`);
      }
    });
  }

  it("translates a DICOM folder (files found by extension or by their DICM marker) to derived DICOM instances", async () => {
    const files = readdirSync(`${SUBJECT}/mr`).sort().slice(10, 13);
    const mrDir = join(work.path, "dicom-mr");
    const ctDir = join(work.path, "dicom-ct");
    mkdirSync(mrDir);
    mkdirSync(ctDir);
    for (const [n, file] of files.entries()) {
      const mr = await physical("mr", `${SUBJECT}/mr/${file}`);
      const ct = await physical("ct", `${SUBJECT}/ct/${file}`);
      const instance = (modality: "MR" | "CT", pixels: Uint16Array | Int16Array) =>
        makeInstance({ modality, rows: 256, columns: 256, pixels, ...(modality === "CT" ? { rescaleSlope: 1, rescaleIntercept: -1024 } : {}), attributes: { InstanceNumber: n + 1 } });
      writeFileSync(join(mrDir, `IM${n + 1}`), instance("MR", Uint16Array.from(mr.data)));
      writeFileSync(join(ctDir, `IM${n + 1}.dcm`), instance("CT", Int16Array.from(ct.data, (hu) => hu + 1024)));
    }
    const out = join(work.path, "dicom-out");
    const run = await runCli(["translate", mrDir, "-d", "mr2ct", "-r", ctDir, "-o", out, "--target", served.server.address]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /translated 3\/3 slices mr2ct .*\(dicom\)/);
    const names = ["IM1", "IM2", "IM3"];
    for (const name of names) assert.equal(readFileSync(join(out, `${name}.dcm`)).subarray(128, 132).toString("latin1"), "DICM");
    const expected = await answers(
      served.library,
      "mr2ct",
      names.map((name, n) => ({
        index: BigInt(n),
        image: { encoding: Encoding.DICOM, data: readFileSync(join(mrDir, name)) },
        reference: { encoding: Encoding.DICOM, data: readFileSync(join(ctDir, `${name}.dcm`)) },
      })),
    );
    assertCsvMatches(join(out, "metrics.csv"), expected.map((r, n) => ({ name: names[n], quality: r.quality })));
  });

  it("exits 1 with a summary when a slice fails, and still writes the good ones", async () => {
    const input = join(work.path, "mixed");
    mkdirSync(input);
    copyFileSync(`${SUBJECT}/mr/000.png`, join(input, "a.png"));
    writeFileSync(join(input, "b.png"), Buffer.from("not a png at all"));
    copyFileSync(`${SUBJECT}/mr/001.png`, join(input, "c.png"));
    const out = join(work.path, "mixed-out");
    const run = await runCli(["translate", input, "-d", "mr2ct", "-o", out, "--target", served.server.address]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, /translated 2\/3 slices/);
    assert.match(run.stderr, /1 of 3 slices failed:\n {2}INVALID_ARGUMENT x1, e\.g\. b: slice\.image\.data/);
    assert.deepEqual(readdirSync(out).sort(), ["a.png", "c.png", "index.json"]);
    assert.equal(JSON.parse(readFileSync(join(out, "index.json"), "utf8")).failed[0].name, "b");
  });

  it("follows symbolic links, records each slice's size, never writes over the references, and leaves no stale metrics.csv", async () => {
    const [mrLinks, ctLinks] = ["mr", "ct"].map((modality) => join(work.path, `links-${modality}`));
    for (const [dir, modality] of [[mrLinks, "mr"], [ctLinks, "ct"]] as const) {
      mkdirSync(dir);
      for (const file of ["000.png", "001.png"]) symlinkSync(resolve(`${SUBJECT}/${modality}/${file}`), join(dir, file));
    }
    const out = join(work.path, "links-out");
    const target = ["--target", served.server.address];
    const withReference = await runCli(["translate", mrLinks, "-d", "mr2ct", "-r", ctLinks, "-o", out, ...target]);
    assert.equal(withReference.code, 0, withReference.stderr);
    assert.match(withReference.stdout, /translated 2\/2 slices/);
    const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
    assert.deepEqual(index.slices.map((slice: { width: number; height: number }) => [slice.width, slice.height]), [[256, 256], [256, 256]]);
    const again = await runCli(["translate", mrLinks, "-d", "mr2ct", "-o", out, ...target]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(!readdirSync(out).includes("metrics.csv"), "the first run's metrics.csv is gone");
    const clobber = await runCli(["translate", mrLinks, "-d", "mr2ct", "-r", ctLinks, "-o", ctLinks, ...target]);
    assert.equal(clobber.code, 2);
    assert.match(clobber.stderr, /--out must not be the --reference folder/);
  });

  it("translates each frame of a multi-frame DICOM instance as a slice of its own", async () => {
    const dir = join(work.path, "multi-frame");
    mkdirSync(dir);
    const frame = (await physical("mr", `${SUBJECT}/mr/012.png`)).data;
    writeFileSync(join(dir, "enhanced.dcm"), makeInstance({ modality: "MR", rows: 256, columns: 256, frames: 2, pixels: Uint16Array.from([...frame, ...frame]) }));
    const out = join(work.path, "multi-frame-out");
    const run = await runCli(["translate", dir, "-d", "mr2ct", "--format", "raw", "-o", out, "--target", served.server.address]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(readdirSync(out).sort(), ["enhanced-frame-001.raw", "enhanced-frame-002.raw", "index.json"]);
    assert.deepEqual(readFileSync(join(out, "enhanced-frame-001.raw")), readFileSync(join(out, "enhanced-frame-002.raw")));

    // Single-frame inputs paired with the frames of one multi-frame reference: each frame decoded for its slice.
    const singles = join(work.path, "single-frames");
    const references = join(work.path, "multi-frame-reference");
    mkdirSync(singles);
    mkdirSync(references);
    const ct = Int16Array.from((await physical("ct", `${SUBJECT}/ct/012.png`)).data, (hu) => hu + 1024);
    for (const name of ["enhanced-frame-001", "enhanced-frame-002"]) {
      writeFileSync(join(singles, `${name}.dcm`), makeInstance({ modality: "MR", rows: 256, columns: 256, pixels: Uint16Array.from(frame) }));
    }
    writeFileSync(join(references, "enhanced.dcm"), makeInstance({ modality: "CT", rows: 256, columns: 256, frames: 2, pixels: Int16Array.from([...ct, ...ct]), rescaleSlope: 1, rescaleIntercept: -1024 }));
    const paired = await runCli(["translate", singles, "-d", "mr2ct", "-r", references, "--format", "raw", "-o", join(work.path, "paired-out"), "--target", served.server.address]);
    assert.equal(paired.code, 0, paired.stderr);
    const rows = readCsv(join(work.path, "paired-out", "metrics.csv"));
    assert.equal(rows.length, 2);
    assert.equal(rows[0].psnr, rows[1].psnr);

    // A file whose name a frame also takes would overwrite it: refused, naming both.
    writeFileSync(join(dir, "enhanced-frame-001.dcm"), makeInstance({ modality: "MR", rows: 256, columns: 256, pixels: Uint16Array.from(frame) }));
    const clash = await runCli(["translate", dir, "-d", "mr2ct", "-o", join(work.path, "clash-out"), "--target", served.server.address]);
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /enhanced(-frame-001)?\.dcm and enhanced(-frame-001)?\.dcm both give the slice name "enhanced-frame-001"/);
  });

  it("cuts a NIfTI reference by its own orientation, refuses one on another grid, and sets NaN voxels to the background", async () => {
    const [n, slices] = [64, 2];
    const values = Array.from({ length: n * n * slices }, (_, v) => 200 + 50 * Math.sin(v / 97) + (v % n));
    // The same volume stored LPS: voxel (i, j) holds RAS voxel (n-1-i, n-1-j), and the affine says so.
    const lps = values.map((_, v) => {
      const [i, j, k] = [v % n, Math.floor(v / n) % n, Math.floor(v / (n * n))];
      return values[n - 1 - i + n * (n - 1 - j + n * k)];
    });
    const ras = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 3, 0]];
    const write = (name: string, data: number[], srow: number[][]) => {
      const path = join(work.path, name);
      writeFileSync(path, nifti1({ dims: [n, n, slices], datatype: NIFTI_FLOAT32, values: data, srow }));
      return path;
    };
    const input = write("nan-mr.nii", values.map((v, i) => (i === 5 ? NaN : v)), ras);
    const referenceRas = write("ref-ras.nii", values, ras);
    const referenceLps = write("ref-lps.nii", lps, [[-1, 0, 0, n - 1], [0, -1, 0, n - 1], [0, 0, 3, 0]]);
    const referenceShifted = write("ref-shifted.nii", values, [[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, 3, 0]]);
    const target = ["-d", "ct2mr", "--format", "raw", "--target", served.server.address];
    const metrics = [];
    for (const reference of [referenceRas, referenceLps]) {
      const out = join(work.path, `orientation-${metrics.length}`);
      const run = await runCli(["translate", input, "-r", reference, "-o", out, ...target]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /nan-mr\.nii: 1 non-finite voxels \(NaN or ±Infinity\) set to the volume's lowest value/);
      metrics.push(readCsv(join(out, "metrics.csv")).map((row) => METRICS.map((metric) => row[metric])));
    }
    assert.deepEqual(metrics[1], metrics[0]);
    const shifted = await runCli(["translate", input, "-r", referenceShifted, "-o", join(work.path, "orientation-x"), ...target]);
    assert.equal(shifted.code, 2);
    assert.match(shifted.stderr, /is not on the voxel grid of .* up to 5\.00 mm apart\): resample it onto the input's grid first/);
  });

  it("exits 2 with the problem and a pointer to --help on a usage error", async () => {
    const run = await runCli(["translate", `${SUBJECT}/mr`, "-o", join(work.path, "x")]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--direction is required/);
    assert.match(run.stderr, /medsynth translate --help/);
    const missing = await runCli(["translate", join(work.path, "absent.nii.gz"), "-d", "mr2ct", "-o", join(work.path, "y")]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.nii\.gz: does not exist; expected a folder/);
    const file = join(work.path, "a-file");
    writeFileSync(file, "");
    const intoFile = await runCli(["translate", `${SUBJECT}/mr`, "-d", "mr2ct", "-o", file]);
    assert.equal(intoFile.code, 2);
    assert.match(intoFile.stderr, /--out .*a-file is a file; name a folder/);
    const help = await runCli(["translate", "--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: medsynth translate <input>/);
  });
});
