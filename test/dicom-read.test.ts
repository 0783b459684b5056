import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { status } from "@grpc/grpc-js";
import dcmjs from "dcmjs";
import dicomParser from "dicom-parser";
import { SliceFault } from "../src/contract/slice-errors.js";
import { decodeDicom } from "../src/imaging/dicom-read.js";
import { compress, makeInstance, PATIENT, pattern, SOP, TS } from "./dicom-fixtures.js";

const FIELD = "slice.image";
const ROWS = 12;
const COLUMNS = 10;
const N = ROWS * COLUMNS;

/** Runs `work` and checks it fails with a SliceFault of `code` on `field` whose detail matches `detail`. */
async function assertFault(work: () => Promise<unknown>, code: status, field: string, detail: RegExp): Promise<void> {
  await assert.rejects(work, (error: unknown) => {
    assert.ok(error instanceof SliceFault, `expected a SliceFault, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.equal(error.field, field);
    assert.match(error.detail, detail);
    return true;
  });
}

const ctStored = Int16Array.from(pattern(N, -1024, 3000));

describe("decodeDicom: native transfer syntaxes", () => {
  it("a Rescale Slope of 0 means 1, as for RAW and PNG", async () => {
    const file = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, rescaleSlope: 0, rescaleIntercept: -1024 });
    const { raster } = await decodeDicom(file, FIELD);
    assert.deepEqual(Array.from(raster.data), Array.from(ctStored, (s) => s - 1024));
  });

  for (const [name, syntax] of [
    ["explicit VR little endian", TS.explicitLittle],
    ["implicit VR little endian", TS.implicitLittle],
    ["explicit VR big endian", TS.explicitBig],
    ["deflated explicit VR little endian", TS.deflatedLittle],
  ] as const) {
    it(`CT int16 with rescale, ${name}: HU = stored × slope + intercept exactly`, async () => {
      const file = makeInstance({
        modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, transferSyntax: syntax,
        rescaleSlope: 0.5, rescaleIntercept: -1000,
      });
      const { raster, source } = await decodeDicom(file, FIELD);
      assert.equal(raster.width, COLUMNS);
      assert.equal(raster.height, ROWS);
      assert.deepEqual(Array.from(raster.data), Array.from(ctStored, (s) => s * 0.5 - 1000));
      assert.equal(source.modality, "CT");
      assert.equal(source.sopClassUid, SOP.ct);
    });
  }

  it("the big-endian fixture is big-endian to an independent reader (dicom-parser)", () => {
    const file = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, transferSyntax: TS.explicitBig });
    const parsed = dicomParser.parseDicom(file);
    assert.equal(parsed.string("x00020010"), TS.explicitBig);
    assert.deepEqual(Array.from({ length: N }, (_, i) => parsed.int16("x7fe00010", i)), Array.from(ctStored));
  });

  it("MR uint16 without rescale keeps the stored values", async () => {
    const stored = Uint16Array.from(pattern(N, 0, 65535, 3));
    const file = makeInstance({ modality: "MR", rows: ROWS, columns: COLUMNS, pixels: stored, transferSyntax: TS.implicitLittle });
    const { raster, source } = await decodeDicom(file, FIELD);
    assert.deepEqual(Array.from(raster.data), Array.from(stored));
    assert.equal(source.sopClassUid, SOP.mr);
  });

  it("masks Bits Stored and sign-extends with Pixel Representation 1", async () => {
    const values = pattern(N, -2048, 2047, 5);
    // 12 bits stored in 16 allocated; the unused high bits carry junk (as overlays once did).
    const raw = Uint16Array.from(values, (v) => (v & 0x0fff) | 0xa000);
    const file = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: raw, bitsStored: 12,
      attributes: { PixelRepresentation: 1 }, rescaleSlope: 1, rescaleIntercept: 0,
    });
    const { raster } = await decodeDicom(file, FIELD);
    assert.deepEqual(Array.from(raster.data), values);
  });

  it("rescales MONOCHROME1 as any other: it changes only the display (PS3.3 C.7.6.3.1.2)", async () => {
    const stored = Int16Array.from(pattern(N, -1024, 2000, 7));
    const file = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: stored, photometric: "MONOCHROME1",
      rescaleSlope: 1, rescaleIntercept: -1024,
    });
    const { raster } = await decodeDicom(file, FIELD);
    assert.deepEqual(Array.from(raster.data), Array.from(stored, (s) => s - 1024));
  });

  it("reads 8-bit secondary capture", async () => {
    const stored = Uint8Array.from(pattern(N, 0, 255, 11));
    const file = makeInstance({ modality: "OT", sopClassUid: SOP.secondaryCapture, rows: ROWS, columns: COLUMNS, pixels: stored });
    const { raster } = await decodeDicom(file, FIELD);
    assert.deepEqual(Array.from(raster.data), Array.from(stored));
  });

  it("keeps the source's UIDs, patient/study attributes and geometry", async () => {
    const file = makeInstance({
      modality: "MR", rows: ROWS, columns: COLUMNS, pixels: new Uint16Array(N),
      attributes: { SOPInstanceUID: "1.2.826.0.1.3680043.10.1234.9.77", InstanceNumber: 7, SeriesNumber: 5 },
    });
    const { source } = await decodeDicom(file, FIELD);
    assert.equal(source.sopInstanceUid, "1.2.826.0.1.3680043.10.1234.9.77");
    assert.equal(source.instanceNumber, 7);
    assert.equal(source.seriesNumber, 5);
    assert.equal(source.rows, ROWS);
    assert.equal(source.columns, COLUMNS);
    assert.equal(source.frame, undefined);
    assert.equal(source.carried.StudyInstanceUID, PATIENT.StudyInstanceUID);
    assert.equal(source.carried.PatientID, PATIENT.PatientID);
    assert.deepEqual(source.carried.ImagePositionPatient, [-120, -130, 15]);
    assert.deepEqual(source.carried.PixelSpacing, [0.9, 0.8]);
    assert.equal(source.carried.SliceThickness, 2.5);
    assert.equal(source.carried.FrameOfReferenceUID, PATIENT.FrameOfReferenceUID);
  });
});

describe("decodeDicom: multi-frame", () => {
  const frames = 3;
  const stored = Int16Array.from(pattern(N * frames, -1000, 2000, 13));
  const file = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: stored, frames, rescaleSlope: 1, rescaleIntercept: -1024 });

  it("is rejected without a frame index", async () => {
    await assertFault(() => decodeDicom(file, FIELD), status.INVALID_ARGUMENT, "slice.frame", /3 frames; set the frame/);
  });

  it("is rejected with a frame out of range", async () => {
    await assertFault(() => decodeDicom(file, FIELD, { frame: 3 }), status.INVALID_ARGUMENT, "slice.frame", /out of range/);
  });

  it("decodes the chosen frame", async () => {
    const { raster, source } = await decodeDicom(file, FIELD, { frame: 2 });
    assert.deepEqual(Array.from(raster.data), Array.from(stored.subarray(2 * N), (s) => s - 1024));
    assert.equal(source.frame, 2);
  });

  it("takes rescale and geometry of the frame from the functional groups", async () => {
    const perFrame = [0, 1, 2].map((z) => ({
      PlanePositionSequence: [{ ImagePositionPatient: [-100, -100, 10 + 5 * z] }],
      PixelValueTransformationSequence: [{ RescaleSlope: z + 1, RescaleIntercept: -z, RescaleType: "US" }],
    }));
    const enhanced = makeInstance({
      modality: "MR", sopClassUid: SOP.enhancedMr, rows: ROWS, columns: COLUMNS, frames,
      pixels: Uint16Array.from(stored, (s) => s + 1000),
      attributes: {
        ImagePositionPatient: undefined, ImageOrientationPatient: undefined, PixelSpacing: undefined, SliceThickness: undefined,
        SharedFunctionalGroupsSequence: [{
          PlaneOrientationSequence: [{ ImageOrientationPatient: [0, 1, 0, 0, 0, -1] }],
          PixelMeasuresSequence: [{ PixelSpacing: [0.5, 0.5], SliceThickness: 5 }],
        }],
        PerFrameFunctionalGroupsSequence: perFrame,
      },
    });
    const { raster, source } = await decodeDicom(enhanced, FIELD, { frame: 1 });
    assert.deepEqual(Array.from(raster.data), Array.from(stored.subarray(N, 2 * N), (s) => (s + 1000) * 2 - 1));
    assert.deepEqual(source.carried.ImagePositionPatient, [-100, -100, 15]);
    assert.deepEqual(source.carried.ImageOrientationPatient, [0, 1, 0, 0, 0, -1]);
    assert.deepEqual(source.carried.PixelSpacing, [0.5, 0.5]);
    assert.equal(source.carried.SliceThickness, 5);
  });
});

describe("decodeDicom: compressed transfer syntaxes (dcmjs-codecs)", () => {
  const stored = Int16Array.from(pattern(N, -1024, 3000, 17));
  const native = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: stored, rescaleSlope: 1, rescaleIntercept: -1024 });
  for (const [name, syntax] of [
    ["RLE lossless", TS.rle],
    ["JPEG lossless SV1", TS.jpegLosslessSv1],
    ["JPEG-LS lossless", TS.jpegLsLossless],
    ["JPEG 2000 lossless", TS.jpeg2000Lossless],
  ] as const) {
    it(`${name} decodes to the exact HU`, async () => {
      const file = await compress(native, syntax);
      const { raster } = await decodeDicom(file, FIELD);
      assert.deepEqual(Array.from(raster.data), Array.from(stored, (s) => s - 1024));
    });
  }

  it("JPEG baseline (8-bit, lossy) decodes close to the original", async () => {
    const gradient = Uint8Array.from({ length: 64 * 64 }, (_, i) => 40 + ((i % 64) + Math.floor(i / 64)) * 1.5);
    const file = await compress(
      makeInstance({ modality: "OT", sopClassUid: SOP.secondaryCapture, rows: 64, columns: 64, pixels: gradient }),
      TS.jpegBaseline,
    );
    const { raster } = await decodeDicom(file, FIELD);
    let error = 0;
    for (let i = 0; i < gradient.length; i++) error += Math.abs(raster.data[i] - gradient[i]);
    assert.ok(error / gradient.length < 2, `mean absolute error ${error / gradient.length}`);
  });

  it("a syntax no codec here decodes is UNIMPLEMENTED and named", async () => {
    const file = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: new Int16Array(N), transferSyntax: TS.jpegExtended,
    });
    await assertFault(() => decodeDicom(file, FIELD), status.UNIMPLEMENTED, "slice.image.data", /1\.2\.840\.10008\.1\.2\.4\.51 \(JPEG Extended/);
  });

  it("prints nothing of a compressed file's attributes (the codecs' own dcmjs copy warns with their values)", async () => {
    const compressed = await compress(native, TS.jpegLsLossless);
    const read = dcmjs.data.DicomMessage.readFile(compressed.slice().buffer);
    read.dict["00090010"] = { vr: "LO", Value: ["ACME 1.0"] };
    read.dict["00091010"] = { vr: "LO", Value: ["Doe^Jane MRN 1234567"] };
    const file = new Uint8Array(read.write());
    const printed: string[] = [];
    const writes = [process.stdout.write, process.stderr.write] as const;
    const capture = (chunk: string | Uint8Array): boolean => (printed.push(String(chunk)), true);
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    try {
      await decodeDicom(file, FIELD);
    } finally {
      [process.stdout.write, process.stderr.write] = writes;
    }
    assert.deepEqual(printed, []);
  });

  it("a truncated compressed file is INVALID_ARGUMENT", async () => {
    const file = await compress(native, TS.jpegLsLossless);
    await assertFault(() => decodeDicom(file.subarray(0, file.length - 40), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /truncated/);
  });

  it("a truncated compressed file is INVALID_ARGUMENT even after an earlier sequence's delimiter", async () => {
    const withSequence = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: stored, rescaleSlope: 1, rescaleIntercept: -1024,
      attributes: { ReferencedImageSequence: [{ ReferencedSOPClassUID: SOP.ct, ReferencedSOPInstanceUID: "2.25.1" }] },
    });
    const file = await compress(withSequence, TS.jpegLsLossless);
    await assertFault(() => decodeDicom(file.subarray(0, file.length - 40), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /truncated/);
  });
});

describe("decodeDicom: bad files are INVALID_ARGUMENT naming the problem", () => {
  const good = () => makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, rescaleSlope: 1, rescaleIntercept: -1024 });

  it("no preamble and meta header", async () => {
    await assertFault(() => decodeDicom(good().subarray(132), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /no 128-byte preamble/);
  });

  it("a preamble and DICM, then the end of the file", async () => {
    await assertFault(() => decodeDicom(good().subarray(0, 140), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /140 bytes end inside the File Meta Information/);
  });

  it("a preamble but no File Meta Information", async () => {
    const file = good();
    const broken = Uint8Array.from(file);
    broken.fill(0x20, 132, 160);
    await assertFault(() => decodeDicom(broken, FIELD), status.INVALID_ARGUMENT, "slice.image.data", /unreadable DICOM|Transfer Syntax/);
  });

  for (const cut of [2, 100, 150]) {
    it(`truncated: ${cut} bytes missing`, async () => {
      const file = good();
      await assertFault(() => decodeDicom(file.subarray(0, file.length - cut), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /truncated/);
    });
  }

  it("truncated in the header", async () => {
    const file = good();
    await assertFault(() => decodeDicom(file.subarray(0, 300), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /truncated|no Pixel Data/);
  });

  it("truncated deflated data set", async () => {
    const file = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, transferSyntax: TS.deflatedLittle });
    await assertFault(() => decodeDicom(file.subarray(0, file.length - 20), FIELD), status.INVALID_ARGUMENT, "slice.image.data", /truncated/);
  });

  it("pixel data of the wrong length", async () => {
    const file = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored.subarray(0, N - COLUMNS) });
    await assertFault(() => decodeDicom(file, FIELD), status.INVALID_ARGUMENT, "slice.image.data", /Pixel Data has 220 bytes but .* = 240/);
  });

  for (const [name, sopClassUid, pattern] of [
    ["segmentation", SOP.segmentation, /1\.2\.840\.10008\.5\.1\.4\.1\.1\.66\.4 \(Segmentation\) is not a CT, MR or secondary-capture image/],
    ["RT dose", SOP.rtDose, /1\.2\.840\.10008\.5\.1\.4\.1\.1\.481\.2 is not a CT, MR/],
  ] as const) {
    it(`a non-image SOP class: ${name}`, async () => {
      const file = makeInstance({ modality: "RTDOSE", sopClassUid, rows: ROWS, columns: COLUMNS, pixels: new Uint16Array(N) });
      await assertFault(() => decodeDicom(file, FIELD), status.INVALID_ARGUMENT, "slice.image.data", pattern);
    });
  }

  it("a colour image", async () => {
    const file = makeInstance({
      modality: "OT", sopClassUid: SOP.secondaryCapture, rows: ROWS, columns: COLUMNS, pixels: new Uint8Array(3 * N),
      samplesPerPixel: 3, photometric: "RGB", attributes: { PlanarConfiguration: 0 },
    });
    await assertFault(() => decodeDicom(file, FIELD), status.INVALID_ARGUMENT, "slice.image.data", /colour image \(Photometric Interpretation RGB, 3 samples/);
  });

  it("a deflated data set that inflates past the limit (a zip bomb)", async () => {
    const file = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: ctStored, transferSyntax: TS.deflatedLittle,
      attributes: { DataSetTrailingPadding: [new ArrayBuffer(200_000)] },
    });
    assert.ok(file.length < 2000, `${file.length} bytes deflated`);
    await assertFault(() => decodeDicom(file, FIELD, { maxDimension: 16 }), status.INVALID_ARGUMENT, "slice.image.data", /inflates to more than 4096 bytes/);
  });

  it("a deflated data set that declares one pixel and carries megabytes stops near what it declares, not at the limit", async () => {
    const file = makeInstance({ modality: "CT", rows: 1, columns: 1, pixels: new Int16Array(16 << 20), transferSyntax: TS.deflatedLittle });
    assert.ok(file.length < 100_000, `${file.length} bytes deflated`);
    const declared = 2;
    const most = declared + 8 * 1024 * 1024;
    await assertFault(() => decodeDicom(file, FIELD), status.INVALID_ARGUMENT, "slice.image.data",
      new RegExp(`inflates to more than ${most} bytes: its header declares ${declared} bytes of pixel data`));
  });

  it("more frames than the decoded-size limit allows", async () => {
    const file = makeInstance({ modality: "CT", rows: 4, columns: 4, frames: 40, pixels: new Int16Array(4 * 4 * 40) });
    await assertFault(() => decodeDicom(file, FIELD, { maxDimension: 8, frame: 0 }), status.INVALID_ARGUMENT, "slice.image.data", /40 frames of 4 × 4 decode to 1280 bytes, more than the limit of 1024/);
  });

  it("too large for the configured limit", async () => {
    await assertFault(() => decodeDicom(good(), FIELD, { maxDimension: 8 }), status.INVALID_ARGUMENT, "slice.image.data", /Rows 12 exceeds the limit of 8/);
  });
});
