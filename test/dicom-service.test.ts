import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import dcmjs, { type NaturalDataset } from "dcmjs";
import dicomParser from "dicom-parser";
import {
  Direction,
  Encoding,
  ImageSchema,
  SliceSchema,
  TranslateRequestSchema,
  type Image,
  type SliceResult,
  type TranslateResponse,
} from "../src/gen/medsynth/v1/translator_pb.js";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import { decodeDicom } from "../src/imaging/dicom-read.js";
import { syntheticHead } from "../src/cli/synthetic-head.js";
import { compress, makeInstance, PATIENT, SOP, TS, type InstanceSpec } from "./dicom-fixtures.js";
import { collect, floats, mrImage, options, startTestServer, translatorClient, type TranslatorTestClient, useTestServer } from "./helpers/service.js";

const ROWS = 64;
const COLUMNS = 56;
const N = ROWS * COLUMNS;
const UID_ROOT = "1.2.826.0.1.3680043.10.4242";

interface Sent {
  image: Image;
  frame?: number;
}
interface Bad extends Sent {
  code: status;
  message: RegExp;
}

const dicomImage = (data: Uint8Array): Image => create(ImageSchema, { encoding: Encoding.DICOM, data });

/** MR slice k of the test series (uint16 scanner units, head-like). */
function mrSlice(k: number, spec: Partial<InstanceSpec> = {}): Uint8Array {
  return makeInstance({
    modality: "MR", rows: ROWS, columns: COLUMNS, pixels: Uint16Array.from(syntheticHead(COLUMNS, ROWS, { outside: 0, inside: 600 + 10 * k, core: 900 })),
    ...spec,
    attributes: {
      SOPInstanceUID: `1.2.826.0.1.3680043.10.1234.9.${500 + k}`,
      InstanceNumber: k + 1,
      ImagePositionPatient: [-120, -130, 10 + 3 * k],
      ...spec.attributes,
    },
  });
}

/** Sends the slices (index = position) on one Translate stream; the answers in order. */
async function translate(client: TranslatorTestClient, direction: Direction, outputEncoding: Encoding, slices: readonly Sent[]): Promise<TranslateResponse[]> {
  const call = client.translate();
  const done = collect(call);
  call.write(options(direction, { outputEncoding }));
  slices.forEach(({ image, frame }, index) =>
    call.write(create(TranslateRequestSchema, { kind: { case: "slice", value: create(SliceSchema, { index: BigInt(index), image, frame }) } })),
  );
  call.end();
  const { responses, error } = await done;
  assert.equal(error, undefined, error?.details);
  assert.equal(responses.length, slices.length);
  return responses;
}

const resultOf = (response: TranslateResponse): SliceResult => {
  if (response.kind.case !== "result") {
    assert.fail(`expected a result, got ${response.kind.case}: ${response.kind.case === "error" ? response.kind.value.message : ""}`);
  }
  return response.kind.value;
};

const dicomOf = (response: TranslateResponse): Uint8Array => {
  const image = resultOf(response).image;
  assert.equal(image?.encoding, Encoding.DICOM);
  return image!.data;
};

const readDcmjs = (file: Uint8Array): NaturalDataset =>
  dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(file.slice().buffer).dict);

describe("DICOM through the service", () => {
  const served = useTestServer({ dicomUidRoot: UID_ROOT });

  it("MR → CT: a series in assorted encodings comes back as one derived CT series; bad files get their own errors", async () => {
    const multiFrame = makeInstance({
      modality: "MR", rows: ROWS, columns: COLUMNS, frames: 2,
      pixels: Uint16Array.from([...syntheticHead(COLUMNS, ROWS, { outside: 0, inside: 500, core: 800 }), ...syntheticHead(COLUMNS, ROWS, { outside: 0, inside: 700, core: 950 })]),
      attributes: { SOPInstanceUID: "1.2.826.0.1.3680043.10.1234.9.600", InstanceNumber: 9, ImagePositionPatient: [-120, -130, 40] },
    });
    const good: Sent[] = [
      { image: dicomImage(mrSlice(0)) },
      { image: dicomImage(mrSlice(1, { transferSyntax: TS.implicitLittle })) },
      { image: dicomImage(mrSlice(2, { transferSyntax: TS.explicitBig })) },
      {
        image: dicomImage(mrSlice(3, {
          bitsStored: 12, photometric: "MONOCHROME1", pixels: Uint16Array.from(syntheticHead(COLUMNS, ROWS, { outside: 0, inside: 600, core: 900 })),
        })),
      },
      { image: dicomImage(await compress(mrSlice(4), TS.jpegLsLossless)) },
      { image: dicomImage(multiFrame), frame: 1 },
    ];
    const bad: Bad[] = [
      { image: dicomImage(mrSlice(5).subarray(132)), code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: not a DICOM Part-10 file/ },
      { image: dicomImage(mrSlice(6).subarray(0, 1000)), code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: truncated/ },
      {
        image: dicomImage(mrSlice(7, { pixels: new Uint16Array(N - 3 * COLUMNS) })),
        code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: Pixel Data has \d+ bytes but/,
      },
      {
        image: dicomImage(mrSlice(8, { sopClassUid: SOP.segmentation })),
        code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.66\.4 \(Segmentation\)/,
      },
      {
        image: dicomImage(mrSlice(9, { sopClassUid: SOP.secondaryCapture, samplesPerPixel: 3, photometric: "RGB", pixels: new Uint8Array(3 * N) })),
        code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: colour image/,
      },
      {
        image: dicomImage(mrSlice(10, { transferSyntax: TS.jpegExtended })),
        code: status.UNIMPLEMENTED, message: /^slice\.image\.data: transfer syntax 1\.2\.840\.10008\.1\.2\.4\.51/,
      },
      { image: dicomImage(multiFrame), code: status.INVALID_ARGUMENT, message: /^slice\.frame: the instance has 2 frames/ },
      {
        image: dicomImage(mrSlice(11, { modality: "CT" })),
        code: status.INVALID_ARGUMENT, message: /^slice\.image\.data: is a CT instance \(Modality CT\), but the model \S+ reads MR; .*direction ct2mr/,
      },
    ];
    // Bad slices between good ones: each gets its own error and the stream goes on.
    const sent: Array<Sent | Bad> = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], bad[4], good[3], bad[5], bad[6], good[4], good[5], bad[7]];
    const responses = await translate(served.client, Direction.MR_TO_CT, Encoding.UNSPECIFIED, sent);
    const raw = await translate(served.client, Direction.MR_TO_CT, Encoding.RAW, sent);

    const seriesUids = new Set<string>();
    const sopInstanceUids = new Set<string>();
    for (const [index, item] of sent.entries()) {
      const response = responses[index];
      if ("code" in item) {
        assert.equal(response.kind.case, "error", `slice ${index}`);
        if (response.kind.case !== "error") continue;
        assert.equal(response.kind.value.index, BigInt(index));
        assert.equal(response.kind.value.code, item.code, response.kind.value.message);
        assert.match(response.kind.value.message, item.message);
        continue;
      }
      assert.equal(resultOf(response).index, BigInt(index));
      const file = dicomOf(response);
      const { source } = await decodeDicom(item.image.data, "slice.image", { frame: item.frame });
      const parsed = dicomParser.parseDicom(file);
      const dataset = readDcmjs(file);
      // Both readers agree on the new instance's identity.
      assert.equal(parsed.string("x00080016"), SOP.ct);
      assert.equal(dataset.SOPClassUID, SOP.ct);
      assert.equal(dataset.Modality, "CT");
      assert.equal(parsed.string("x0020000e"), dataset.SeriesInstanceUID);
      assert.equal(parsed.string("x00080018"), dataset.SOPInstanceUID);
      seriesUids.add(String(dataset.SeriesInstanceUID));
      sopInstanceUids.add(String(dataset.SOPInstanceUID));
      assert.ok(String(dataset.SOPInstanceUID).startsWith(`${UID_ROOT}.`));
      assert.deepEqual((dataset.ImageType as string[]).slice(0, 2), ["DERIVED", "SECONDARY"]);
      assert.match(String(dataset.SeriesDescription), /tiny-mr2ct/);
      // Patient, study and geometry carried over, the source referenced.
      assert.equal(parsed.string("x00100020"), PATIENT.PatientID);
      assert.equal(parsed.string("x0020000d"), PATIENT.StudyInstanceUID);
      assert.equal(parsed.string("x00200052"), PATIENT.FrameOfReferenceUID);
      assert.deepEqual([0, 1, 2].map((i) => parsed.floatString("x00200032", i)), source.carried.ImagePositionPatient);
      assert.deepEqual([0, 1].map((i) => parsed.floatString("x00280030", i)), source.carried.PixelSpacing);
      // A frame of a multi-frame source is numbered by its frame.
      assert.equal(parsed.intString("x00200013"), item.frame === undefined ? source.instanceNumber : item.frame + 1);
      const reference = parsed.elements.x00082112.items?.[0]?.dataSet;
      assert.equal(reference?.string("x00081155"), source.sopInstanceUid);
      assert.equal(reference?.intString("x00081160"), item.frame === undefined ? undefined : item.frame + 1);
      // HU: int16 stored + intercept −1024 agree with the RAW answer to the int16 rounding.
      assert.equal(parsed.uint16("x00280010"), ROWS);
      assert.equal(parsed.uint16("x00280011"), COLUMNS);
      assert.equal(parsed.floatString("x00281052"), -1024);
      const hu = floats(resultOf(raw[index]).image!);
      for (let i = 0; i < N; i++) {
        const stored = parsed.int16("x7fe00010", i) ?? NaN;
        assert.ok(Math.abs(stored - 1024 - hu[i]) <= 0.5 + 1e-3, `slice ${index} pixel ${i}: ${stored - 1024} HU vs RAW ${hu[i]}`);
      }
    }
    assert.equal(seriesUids.size, 1, "one SeriesInstanceUID for the stream");
    assert.equal(sopInstanceUids.size, good.length);

    const [again] = await translate(served.client, Direction.MR_TO_CT, Encoding.UNSPECIFIED, [good[0]]);
    assert.ok(!seriesUids.has(String(readDcmjs(dicomOf(again)).SeriesInstanceUID)), "a new series for a new stream");
  });

  it("CT → MR: int16 CT with rescale comes back as MR Image Storage", async () => {
    const ct = makeInstance({
      modality: "CT", rows: ROWS, columns: COLUMNS, pixels: Int16Array.from(syntheticHead(COLUMNS, ROWS, { outside: 0, inside: 1024 + 35, core: 1024 + 900 })),
      rescaleSlope: 1, rescaleIntercept: -1024, transferSyntax: TS.implicitLittle,
    });
    const [response] = await translate(served.client, Direction.CT_TO_MR, Encoding.UNSPECIFIED, [{ image: dicomImage(ct) }]);
    const parsed = dicomParser.parseDicom(dicomOf(response));
    assert.equal(parsed.string("x00080016"), SOP.mr);
    assert.equal(parsed.string("x00080060"), "MR");
    assert.equal(parsed.uint16("x00280103"), 0);
    assert.equal(parsed.string("x00100010"), PATIENT.PatientName);
    assert.match(parsed.string("x0008103e") ?? "", /tiny-ct2mr/);
  });

  it("DICOM output for RAW input: one placeholder patient and study, slices numbered by index", async () => {
    const responses = await translate(served.client, Direction.MR_TO_CT, Encoding.DICOM, [{ image: mrImage() }, { image: mrImage() }]);
    const parsed = responses.map((r) => dicomParser.parseDicom(dicomOf(r)));
    for (const [index, dataset] of parsed.entries()) {
      assert.equal(dataset.string("x00100010"), "UNKNOWN");
      assert.equal(dataset.string("x0020000d"), parsed[0].string("x0020000d"));
      assert.equal(dataset.intString("x00200013"), index + 1);
    }
  });
});

describe("DICOM through the service, de-identified", () => {
  it("replaces the patient and study identity (deidentify basic-profile)", async () => {
    const server = await startTestServer({ dicomUidRoot: UID_ROOT, deidentify: "basic-profile" });
    const client = translatorClient(server.address);
    try {
      const responses = await translate(client, Direction.MR_TO_CT, Encoding.UNSPECIFIED, [{ image: dicomImage(mrSlice(0)) }, { image: dicomImage(mrSlice(1)) }]);
      const files = responses.map(dicomOf);
      for (const file of files) {
        const text = Buffer.from(file).toString("latin1");
        for (const value of [PATIENT.PatientName, PATIENT.PatientID, PATIENT.StudyInstanceUID, PATIENT.AccessionNumber]) {
          assert.ok(!text.includes(value), `found ${value}`);
        }
        const parsed = dicomParser.parseDicom(file);
        assert.equal(parsed.string("x00120062"), "YES");
        assert.equal(parsed.string("x0020000d"), dicomParser.parseDicom(files[0]).string("x0020000d"));
      }
    } finally {
      client.close();
      await server.close();
    }
  });
});

describe("expensive DICOM decodes", () => {
  const served = useTestServer({ maxDelayMs: 0 });

  it("run off the event loop: a deflated data set that inflates to 96 MiB leaves health checks answered at once", async () => {
    // ~100 KB on the wire, 96 MiB inflated: 48 frames of 1024² zeros (the 2.4 s of main-thread CPU per slice).
    const bomb = makeInstance({ modality: "MR", rows: 1024, columns: 1024, frames: 48, pixels: new Uint16Array(1024 * 1024 * 48), transferSyntax: TS.deflatedLittle });
    assert.ok(bomb.length < 400_000, `${bomb.length} bytes`);
    const answers = translate(served.client, Direction.MR_TO_CT, Encoding.UNSPECIFIED, [{ image: dicomImage(bomb), frame: 1 }]);
    const since = performance.eventLoopUtilization();
    // A probe every 50 ms while it decodes.
    let checks = 0;
    let slowest = 0;
    const probes: Promise<void>[] = [];
    const probing = setInterval(() => {
      const started = performance.now();
      probes.push(
        checkHealth(served.server.address).then((serving) => {
          assert.equal(serving, ServingStatus.SERVING);
          slowest = Math.max(slowest, performance.now() - started);
          checks++;
        }),
      );
    }, 50);
    await answers.finally(() => clearInterval(probing));
    await Promise.all(probes);
    // This process hosts the server: decoded here, the event loop would have been busy for the whole decode.
    const { utilization } = performance.eventLoopUtilization(since);
    const [answer] = await answers;
    assert.equal(answer.kind.case, "result", answer.kind.case === "error" ? answer.kind.value.message : "");
    assert.ok(checks >= 3, `${checks} health checks while it decoded`);
    assert.ok(utilization < 0.5, `the event loop was busy ${(100 * utilization).toFixed(0)}% of the decode`);
    assert.ok(slowest < 1000, `slowest health check ${slowest.toFixed(0)} ms`);
  });
});
