import assert from "node:assert/strict";
import { describe, it } from "node:test";
import dcmjs, { type NaturalDataset } from "dcmjs";
import dicomParser from "dicom-parser";
import { decodeDicom, type DicomSource } from "../src/imaging/dicom-read.js";
import { createDerivedSeries } from "../src/imaging/dicom-write.js";
import { checkUidRoot, newUid, uidFromBytes } from "../src/imaging/dicom-uid.js";
import type { Raster } from "../src/imaging/raster.js";
import { makeInstance, PATIENT, pattern, SOP, TS } from "./dicom-fixtures.js";

const ROWS = 16;
const COLUMNS = 12;
const N = ROWS * COLUMNS;
const ROOT = "1.2.826.0.1.3680043.10.999";
const UID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/;
const MODEL = { modelName: "mr2ct-phantom", modelVersion: "1.0.0" };

/** Three MR slices of one series, decoded as the server would. */
async function mrSeries(transferSyntax: string = TS.explicitLittle): Promise<Array<{ source: DicomSource; file: Uint8Array }>> {
  return Promise.all(
    [0, 1, 2].map(async (k) => {
      const file = makeInstance({
        modality: "MR", rows: ROWS, columns: COLUMNS, pixels: Uint16Array.from(pattern(N, 0, 1200, k)), transferSyntax,
        attributes: {
          SOPInstanceUID: `1.2.826.0.1.3680043.10.1234.9.${100 + k}`,
          InstanceNumber: k + 1,
          ImagePositionPatient: [-120, -130, 15 + 2.5 * k],
          SliceLocation: 15 + 2.5 * k,
        },
      });
      return { file, source: (await decodeDicom(file, "slice.image")).source };
    }),
  );
}

/** A synthetic CT with fractional HU (to check rounding) spanning air to bone. */
function syntheticCt(seed: number, width = COLUMNS, height = ROWS): Raster {
  return { width, height, data: Float32Array.from(pattern(width * height, -1024, 3071, seed), (v, i) => v + ((i % 7) - 3) / 7) };
}

const readDcmjs = (file: Uint8Array): NaturalDataset =>
  dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(file.slice().buffer).dict);

describe("createDerivedSeries: MR → CT", async () => {
  const slices = await mrSeries();
  const series = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT });
  const rasters = slices.map((_, k) => syntheticCt(k));
  const files = slices.map(({ source }, k) => series.encode(rasters[k], { source }));

  it("writes CT Image Storage instances of one new series, a new SOPInstanceUID each, under the root", () => {
    const sopInstanceUids = new Set<string>();
    const seriesInstanceUid = dicomParser.parseDicom(files[0]).string("x0020000e") ?? "";
    assert.notEqual(seriesInstanceUid, slices[0].source.seriesInstanceUid);
    for (const file of files) {
      const parsed = dicomParser.parseDicom(file);
      assert.equal(parsed.string("x00020010"), TS.explicitLittle);
      assert.equal(parsed.string("x00080016"), SOP.ct);
      assert.equal(parsed.string("x00020002"), SOP.ct);
      assert.equal(parsed.string("x00080060"), "CT");
      assert.equal(parsed.string("x0020000e"), seriesInstanceUid);
      const sopInstanceUid = parsed.string("x00080018") ?? "";
      assert.equal(parsed.string("x00020003"), sopInstanceUid);
      for (const uid of [sopInstanceUid, seriesInstanceUid]) {
        assert.match(uid, UID);
        assert.ok(uid.startsWith(`${ROOT}.`) && uid.length <= 64, uid);
      }
      sopInstanceUids.add(sopInstanceUid);
    }
    assert.equal(sopInstanceUids.size, files.length);
    for (const { source } of slices) assert.ok(!sopInstanceUids.has(source.sopInstanceUid));
  });

  it("carries patient, study and geometry over, so the series overlays the original", () => {
    files.forEach((file, k) => {
      const parsed = dicomParser.parseDicom(file);
      assert.equal(parsed.string("x00100010"), PATIENT.PatientName);
      assert.equal(parsed.string("x00100020"), PATIENT.PatientID);
      assert.equal(parsed.string("x00100030"), PATIENT.PatientBirthDate);
      assert.equal(parsed.string("x0020000d"), PATIENT.StudyInstanceUID);
      assert.equal(parsed.string("x00080050"), PATIENT.AccessionNumber);
      assert.equal(parsed.string("x00200052"), PATIENT.FrameOfReferenceUID);
      assert.deepEqual([0, 1, 2].map((i) => parsed.floatString("x00200032", i)), [-120, -130, 15 + 2.5 * k]);
      assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => parsed.floatString("x00200037", i)), [1, 0, 0, 0, 1, 0]);
      assert.deepEqual([0, 1].map((i) => parsed.floatString("x00280030", i)), [0.9, 0.8]);
      assert.equal(parsed.floatString("x00180050"), 2.5);
      assert.equal(parsed.intString("x00200013"), k + 1);
      assert.equal(parsed.intString("x00200011"), 1004);
    });
  });

  it("marks the instances derived and synthetic, names the model and references the source", () => {
    files.forEach((file, k) => {
      const dataset = readDcmjs(file);
      assert.deepEqual((dataset.ImageType as string[]).slice(0, 2), ["DERIVED", "SECONDARY"]);
      assert.match(String(dataset.SeriesDescription), /mr2ct-phantom 1\.0\.0/);
      assert.match(String(dataset.DerivationDescription), /translated from MR by the medsynth model mr2ct-phantom 1\.0\.0/);
      assert.equal(dataset.SyntheticData, "YES");
      const [reference] = dataset.SourceImageSequence as NaturalDataset[];
      assert.equal(reference.ReferencedSOPClassUID, SOP.mr);
      assert.equal(reference.ReferencedSOPInstanceUID, slices[k].source.sopInstanceUid);
      const parsed = dicomParser.parseDicom(file);
      const item = parsed.elements.x00082112.items?.[0]?.dataSet;
      assert.equal(item?.string("x00081155"), slices[k].source.sopInstanceUid);
    });
  });

  it("stores int16 HU with intercept −1024, slope 1, a brain window, and HU agree with the raster to rounding", async () => {
    for (const [k, file] of files.entries()) {
      const parsed = dicomParser.parseDicom(file);
      assert.equal(parsed.uint16("x00280103"), 1);
      assert.equal(parsed.uint16("x00280100"), 16);
      assert.equal(parsed.floatString("x00281052"), -1024);
      assert.equal(parsed.floatString("x00281053"), 1);
      assert.equal(parsed.floatString("x00281050"), 40);
      assert.equal(parsed.floatString("x00281051"), 80);
      const raster = rasters[k];
      for (let i = 0; i < N; i++) {
        const hu = (parsed.int16("x7fe00010", i) ?? NaN) - 1024;
        assert.ok(Math.abs(hu - raster.data[i]) <= 0.5, `pixel ${i}: ${hu} HU written for ${raster.data[i]}`);
      }
      const decoded = await decodeDicom(file, "slice.image");
      assert.deepEqual(Array.from(decoded.raster.data), Array.from(raster.data, (v) => Math.round(v)));
    }
  });

  it("clamps HU outside the int16 range instead of wrapping", async () => {
    const extreme: Raster = { width: 2, height: 1, data: Float32Array.of(-40000, 40000) };
    const { raster } = await decodeDicom(series.encode(extreme), "slice.image");
    assert.deepEqual(Array.from(raster.data), [-32768 - 1024, 32767 - 1024]);
  });
});

describe("createDerivedSeries: CT → MR", () => {
  it("writes MR Image Storage, uint16 intensities, a window over the data", async () => {
    const ct = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: Int16Array.from(pattern(N, 0, 3000)), rescaleSlope: 1, rescaleIntercept: -1024,
      transferSyntax: TS.implicitLittle,
    });
    const { source } = await decodeDicom(ct, "slice.image");
    const series = createDerivedSeries({ direction: "ct2mr", modelName: "ct2mr-phantom", modelVersion: "2.0.0", uidRoot: ROOT, seriesNumber: 77 });
    const raster: Raster = { width: COLUMNS, height: ROWS, data: Float32Array.from(pattern(N, 100, 900), (v) => v + 0.25) };
    const file = series.encode(raster, { source });
    const parsed = dicomParser.parseDicom(file);
    assert.equal(parsed.string("x00080016"), SOP.mr);
    assert.equal(parsed.string("x00080060"), "MR");
    assert.equal(parsed.uint16("x00280103"), 0);
    assert.equal(parsed.intString("x00200011"), 77);
    assert.equal(parsed.floatString("x00281050"), 500);
    assert.equal(parsed.floatString("x00281051"), 800);
    assert.deepEqual(Array.from({ length: N }, (_, i) => parsed.uint16("x7fe00010", i)), Array.from(raster.data, (v) => Math.round(v)));
    assert.equal(readDcmjs(file).ScanningSequence, "RM");
    assert.deepEqual(readDcmjs(file).ImageType, ["DERIVED", "SECONDARY", "OTHER"]);
  });

  it("stores intensities as they are, rounded, so the slices compare; relative units are fitted per slice, the fit recorded", async () => {
    const ct = makeInstance({ modality: "CT", rows: ROWS, columns: COLUMNS, pixels: new Int16Array(N), rescaleSlope: 1, rescaleIntercept: -1024 });
    const { source } = await decodeDicom(ct, "slice.image");
    const series = createDerivedSeries({ direction: "ct2mr", modelName: "ct2mr-phantom", modelVersion: "2.0.0" });
    const storedOf = (file: Uint8Array) => Array.from({ length: N }, (_, i) => dicomParser.parseDicom(file).uint16("x7fe00010", i));
    for (const top of [255, 40, 3000]) {
      const raster: Raster = { width: COLUMNS, height: ROWS, data: Float32Array.from(pattern(N, 0, top)) };
      const file = series.encode(raster, { source });
      assert.deepEqual(storedOf(file), Array.from(raster.data, (v) => Math.round(v)), `top ${top}`);
      assert.equal(readDcmjs(file).RealWorldValueMappingSequence, undefined);
    }
    for (const [low, high] of [[0, 1], [-1.5, 2.5]]) {
      const raster: Raster = { width: COLUMNS, height: ROWS, data: Float32Array.from(pattern(N, low, high)) };
      const file = series.encode(raster, { source });
      const [mapping] = readDcmjs(file).RealWorldValueMappingSequence as NaturalDataset[];
      const [slope, intercept] = [Number(mapping.RealWorldValueSlope), Number(mapping.RealWorldValueIntercept)];
      storedOf(file).forEach((stored, i) => assert.ok(Math.abs(stored! * slope + intercept - raster.data[i]) <= slope, `[${low}, ${high}] pixel ${i}: ${stored} × ${slope} + ${intercept} vs ${raster.data[i]}`));
      assert.equal(new Set(storedOf(file)).size, new Set(raster.data).size, "every level kept, not rounded to a few");
    }
  });
});

describe("createDerivedSeries: what the source lacks or writes in retired forms", () => {
  it("rewrites ACR-NEMA dates and times, empties unreadable ones, and fills Type 2 and the Frame of Reference", async () => {
    const [{ source }] = await mrSeries();
    const carried: NaturalDataset = { ...source.carried, StudyDate: "1999.05.05", PatientBirthDate: "1961.03.04", StudyTime: "10:52:34.530000" };
    delete carried.FrameOfReferenceUID;
    delete carried.ReferringPhysicianName;
    const retired = { ...source, carried };
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT });
    const [first, second] = [0, 1].map((k) => readDcmjs(series.encode(syntheticCt(k), { source: retired })));
    assert.equal(first.StudyDate, "19990505");
    assert.equal(first.PatientBirthDate, "19610304");
    assert.equal(first.StudyTime, "105234.530000");
    assert.ok(first.ReferringPhysicianName !== undefined, "Referring Physician's Name present (Type 2)");
    assert.match(String(first.FrameOfReferenceUID), UID);
    assert.equal(second.FrameOfReferenceUID, first.FrameOfReferenceUID);
    assert.equal(first.TimezoneOffsetFromUTC, undefined);
    const unreadable = { ...source, carried: { ...source.carried, StudyDate: "May 5th" } };
    assert.equal(readDcmjs(series.encode(syntheticCt(2), { source: unreadable })).StudyDate, "");
    const fine = { ...source, carried: { ...source.carried, StudyTime: "10:52:34.1234567" } };
    assert.equal(readDcmjs(series.encode(syntheticCt(3), { source: fine })).StudyTime, "105234.123456");
  });

  it("keeps one derived series per source series, so no series spans two studies or patients", async () => {
    const [{ source }] = await mrSeries();
    const otherStudy = { ...source, seriesInstanceUid: "1.2.826.0.1.3680043.10.1234.77", carried: { ...source.carried, StudyInstanceUID: "1.2.826.0.1.3680043.10.1234.78", PatientID: "OTHER" } };
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT });
    const uids = [source, otherStudy, source, undefined].map((from) => readDcmjs(series.encode(syntheticCt(0), { source: from })).SeriesInstanceUID);
    assert.equal(uids[0], uids[2]);
    assert.equal(new Set(uids).size, 3);
  });

  it("says Burned In Annotation YES when the source does", async () => {
    const [{ source }] = await mrSeries();
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL });
    assert.equal(readDcmjs(series.encode(syntheticCt(0), { source })).BurnedInAnnotation, "NO");
    const annotated = { ...source, carried: { ...source.carried, BurnedInAnnotation: "YES" } };
    assert.equal(readDcmjs(series.encode(syntheticCt(0), { source: annotated })).BurnedInAnnotation, "YES");
  });

  it("makes a DICOM source without an image plane Secondary Capture, still referencing it", async () => {
    const file = makeInstance({ modality: "OT", sopClassUid: SOP.secondaryCapture, rows: ROWS, columns: COLUMNS, pixels: new Uint16Array(N) });
    const { source } = await decodeDicom(file, "slice.image");
    const stripped = { ...source, carried: Object.fromEntries(Object.entries(source.carried).filter(([k]) => k !== "ImagePositionPatient")) };
    const dataset = readDcmjs(createDerivedSeries({ direction: "mr2ct", ...MODEL }).encode(syntheticCt(0), { source: stripped }));
    assert.equal(dataset.SOPClassUID, SOP.secondaryCapture);
    assert.equal(dataset.PatientID, PATIENT.PatientID);
    assert.equal(dataset.PixelSpacing, undefined);
    assert.equal(dataset.FrameOfReferenceUID, undefined);
    assert.equal((dataset.SourceImageSequence as NaturalDataset[])[0].ReferencedSOPInstanceUID, source.sopInstanceUid);
    assert.equal(dataset.RescaleType, "HU");
  });

  it("numbers a multi-frame source's slices by their frame", async () => {
    const file = makeInstance({ modality: "MR", rows: ROWS, columns: COLUMNS, frames: 3, pixels: new Uint16Array(3 * N), attributes: { InstanceNumber: 5 } });
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL });
    const numbers = [];
    for (const frame of [0, 1, 2]) {
      const { source } = await decodeDicom(file, "slice.image", { frame });
      numbers.push(readDcmjs(series.encode(syntheticCt(frame), { source })).InstanceNumber);
    }
    assert.deepEqual(numbers, [1, 2, 3]);
  });
});

describe("createDerivedSeries: geometry", () => {
  it("scales Pixel Spacing and moves the first pixel when the raster was resampled", async () => {
    const [{ source }] = await mrSeries();
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL });
    const parsed = dicomParser.parseDicom(series.encode(syntheticCt(1, COLUMNS / 2, ROWS / 2), { source }));
    assert.deepEqual([0, 1].map((i) => parsed.floatString("x00280030", i)), [1.8, 1.6]);
    // Same field of view: the first pixel's centre moves half the spacing change along the row and the column.
    assert.deepEqual([0, 1, 2].map((i) => parsed.floatString("x00200032", i)), [-120 + 0.4, -130 + 0.45, 15]);
  });
});

describe("createDerivedSeries: input that was not DICOM", () => {
  it("writes Secondary Capture (synthetic), claiming no position in the patient", () => {
    const series = createDerivedSeries({ direction: "ct2mr", modelName: "m", modelVersion: "1" });
    const dataset = readDcmjs(series.encode({ width: COLUMNS, height: ROWS, data: Float32Array.from(pattern(N, 0, 255)) }));
    assert.equal(dataset.SOPClassUID, SOP.secondaryCapture);
    assert.equal(dataset.ConversionType, "SYN");
    assert.equal(dataset.Modality, "MR");
    assert.deepEqual(dataset.ImageType, ["DERIVED", "SECONDARY"]);
    for (const keyword of ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "FrameOfReferenceUID", "ScanningSequence"]) {
      assert.equal(dataset[keyword], undefined, keyword);
    }
  });

  it("gives each series one placeholder patient and study marked UNKNOWN", () => {
    const series = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT });
    const files = [0, 1].map((k) => dicomParser.parseDicom(series.encode(syntheticCt(k))));
    const other = dicomParser.parseDicom(createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT }).encode(syntheticCt(2)));
    for (const [k, parsed] of files.entries()) {
      assert.equal(parsed.string("x00100010"), "UNKNOWN");
      assert.match(parsed.string("x00100020") ?? "", /^UNKNOWN-\d{12}$/);
      assert.equal(parsed.string("x00100020"), files[0].string("x00100020"));
      assert.equal(parsed.string("x0020000d"), files[0].string("x0020000d"));
      assert.equal(parsed.intString("x00200013"), k + 1);
      assert.equal(parsed.elements.x00082112, undefined);
      assert.match(parsed.string("x00204000") ?? "", /position in the patient is not known/);
    }
    assert.notEqual(other.string("x0020000d"), files[0].string("x0020000d"));
    assert.notEqual(other.string("x00100020"), files[0].string("x00100020"));
    // An index too large for Instance Number (IS, 32-bit) falls back to the position in the series.
    assert.equal(dicomParser.parseDicom(series.encode(syntheticCt(3), { instanceNumber: 2 ** 40 })).intString("x00200013"), 3);
    assert.ok(files[0].string("x0020000d")?.startsWith(`${ROOT}.`));
  });
});

describe("createDerivedSeries: de-identification (PS3.15 basic profile)", async () => {
  const slices = await mrSeries(TS.explicitBig);
  const series = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT, deidentify: true });
  const files = slices.map(({ source }, k) => series.encode(syntheticCt(k), { source }));
  const parsed = files.map((file) => dicomParser.parseDicom(file));

  it("leaves no identifying value of the source anywhere in the files", () => {
    const identifying = [
      PATIENT.PatientName, PATIENT.PatientID, PATIENT.PatientBirthDate, PATIENT.StudyInstanceUID, PATIENT.FrameOfReferenceUID,
      PATIENT.AccessionNumber, PATIENT.ReferringPhysicianName, PATIENT.StudyDescription, PATIENT.StudyDate, "054Y",
      ...slices.map(({ source }) => source.sopInstanceUid),
    ];
    for (const file of files) {
      const text = Buffer.from(file).toString("latin1");
      for (const value of identifying) assert.ok(!text.includes(value), `found ${value}`);
    }
  });

  it("replaces names, IDs and UIDs consistently within the series, and says it did", () => {
    for (const [k, dataset] of parsed.entries()) {
      assert.equal(dataset.string("x00100010"), parsed[0].string("x00100010"));
      assert.match(dataset.string("x00100020") ?? "", /^ANON-[0-9A-F]{16}$/);
      assert.equal(dataset.string("x00100020"), parsed[0].string("x00100020"));
      assert.equal(dataset.string("x0020000d"), parsed[0].string("x0020000d"));
      assert.equal(dataset.string("x00200052"), parsed[0].string("x00200052"));
      assert.ok(dataset.string("x0020000d")?.startsWith(`${ROOT}.`));
      assert.equal(dataset.elements.x00100030?.length, 0, "Patient Birth Date emptied");
      assert.equal(dataset.elements.x00080020?.length, 0, "Study Date emptied");
      assert.equal(dataset.elements.x00101010, undefined, "Patient Age removed");
      assert.equal(dataset.elements.x00081030, undefined, "Study Description removed");
      assert.equal(dataset.string("x00120062"), "YES");
      assert.match(dataset.string("x00120063") ?? "", /Basic Application Level Confidentiality Profile/);
      const reference = dataset.elements.x00082112.items?.[0]?.dataSet?.string("x00081155") ?? "";
      assert.match(reference, UID);
      assert.ok(reference.startsWith(`${ROOT}.`));
      // Geometry is not identifying and still overlays the original.
      assert.equal(dataset.floatString("x00200032", 2), 15 + 2.5 * k);
    }
    const references = new Set(parsed.map((d) => d.elements.x00082112.items?.[0]?.dataSet?.string("x00081155")));
    assert.equal(references.size, 3);
  });

  it("uses different replacements in another series", () => {
    const again = createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: ROOT, deidentify: true });
    const other = dicomParser.parseDicom(again.encode(syntheticCt(0), { source: slices[0].source }));
    assert.notEqual(other.string("x0020000d"), parsed[0].string("x0020000d"));
    assert.notEqual(other.string("x00100020"), parsed[0].string("x00100020"));
  });
});

describe("newUid", () => {
  it("makes unique, valid UIDs of at most 64 characters under the root", () => {
    const uids = new Set(Array.from({ length: 200 }, () => newUid(ROOT)));
    assert.equal(uids.size, 200);
    for (const uid of uids) {
      assert.match(uid, UID);
      assert.ok(uid.startsWith(`${ROOT}.`) && uid.length <= 64, uid);
    }
    assert.match(newUid(), /^2\.25\.[1-9][0-9]*$/);
  });

  it("keeps a hashed replacement under 2.25 below 2^128, as a UUID must be (PS3.5 B.2)", () => {
    const uid = uidFromBytes("2.25", new Uint8Array(32).fill(0xff));
    assert.match(uid, UID);
    assert.ok(BigInt(uid.slice("2.25.".length)) < 2n ** 128n, uid);
  });

  it("rejects a root that is not a UID or leaves too little room", () => {
    assert.throws(() => checkUidRoot("1.2.03"), /not a valid UID/);
    assert.throws(() => checkUidRoot("1.2.x"), /not a valid UID/);
    assert.throws(() => checkUidRoot(`1.${"2".repeat(50)}`), /leave room/);
    assert.throws(() => createDerivedSeries({ direction: "mr2ct", ...MODEL, uidRoot: "1..2" }), /not a valid UID/);
  });
});
