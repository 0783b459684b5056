// STOW-RS against a real Orthanc (Debian's orthanc + orthanc-dicomweb, see
// test/helpers/orthanc.ts): a synthetic DICOM MR series (test/dicom-fixtures)
// is translated by the CLI and by the server with --stow-url, and read back
// through Orthanc's REST API; wrong credentials, a PACS that is down, and a
// PACS that fails the first attempt show that every slice is still answered
// and each failure counted.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import dcmjs from "dcmjs";
import { Encoding, type SliceResult } from "../../src/gen/medsynth/v1/translator_pb.js";
import { createClient } from "../../src/client/client.js";
import { isSliceError } from "../../src/contract/slice-errors.js";
import { decodeImage } from "../../src/imaging/codec.js";
import { syntheticHead } from "../../src/cli/synthetic-head.js";
import type { RunningServer } from "../../src/server/server.js";
import { makeInstance, SOP } from "../dicom-fixtures.js";
import { runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/net.js";
import { startOrthanc, type TestOrthanc } from "../helpers/orthanc.js";
import { recordingLogger, startTestServer, TINY_MODELS } from "../helpers/service.js";
import { useTempDir } from "../helpers/temp-dir.js";

const SLICES = 5;
const SIZE = 64;
const SOURCE_SERIES = "1.2.826.0.1.3680043.10.1234.3";

/** A synthetic MR series, one Part-10 file per slice, with its SOP Instance UIDs. */
function writeMrSeries(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const uids: string[] = [];
  for (let k = 0; k < SLICES; k++) {
    const uid = `1.2.826.0.1.3680043.10.1234.77.${k + 1}`;
    uids.push(uid);
    const pixels = Uint16Array.from(syntheticHead(SIZE, SIZE, { outside: 0, inside: 500 + 40 * k, core: 900 - 30 * k }));
    const file = makeInstance({
      modality: "MR",
      rows: SIZE,
      columns: SIZE,
      pixels,
      attributes: { SOPInstanceUID: uid, InstanceNumber: k + 1, ImagePositionPatient: [-120, -130, 15 + 2.5 * k] },
    });
    writeFileSync(join(dir, `slice-${String(k).padStart(2, "0")}.dcm`), file);
  }
  return uids;
}

interface OrthancSeries {
  ID: string;
  Instances: string[];
  MainDicomTags: { SeriesInstanceUID: string; Modality: string };
}

const seriesIds = (orthanc: TestOrthanc) => orthanc.get<string[]>("/series");

/** The series Orthanc has now that it did not have in `before`. */
async function newSeries(orthanc: TestOrthanc, before: string[]): Promise<OrthancSeries[]> {
  const ids = (await seriesIds(orthanc)).filter((id) => !before.includes(id));
  return Promise.all(ids.map((id) => orthanc.get<OrthancSeries>(`/series/${id}`)));
}

/** Each stored instance of a series as Orthanc gives it back: its Part-10 file and dcmjs' natural data set. */
async function instancesOf(orthanc: TestOrthanc, series: OrthancSeries) {
  return Promise.all(
    series.Instances.map(async (id) => {
      const file = await orthanc.bytes(`/instances/${id}/file`);
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- read as DICOM says, checked below
      const dataset = dcmjs.data.DicomMetaDictionary.naturalizeDataset(dcmjs.data.DicomMessage.readFile(file.slice().buffer).dict) as Record<string, any>;
      return { file, dataset };
    }),
  );
}

/** medsynth_stow_total by status, from the server's /metrics. */
async function stowCounts(server: RunningServer): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`)).text();
  return Object.fromEntries([...text.matchAll(/^medsynth_stow_total\{status="([^"]+)"[^}]*\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
}

describe("STOW-RS to a real Orthanc", () => {
  const dir = useTempDir("orthanc");
  let orthanc: TestOrthanc;
  let sourceUids: string[];
  let series: string;
  let authFile: string;
  let wrongAuthFile: string;

  before(async () => {
    orthanc = await startOrthanc(join(dir.path, "orthanc"));
    series = join(dir.path, "mr");
    sourceUids = writeMrSeries(series);
    authFile = join(dir.path, "stow-auth");
    writeFileSync(authFile, `${orthanc.user}:${orthanc.password}\n`);
    wrongAuthFile = join(dir.path, "stow-auth-wrong");
    writeFileSync(wrongAuthFile, `${orthanc.user}:not-the-password\n`);
  });
  after(() => orthanc?.stop());

  it("the server stores every answered slice as one new CT series: derived attributes, Source Image Sequence, HU = the RAW answer to int16 rounding", async () => {
    const before = await seriesIds(orthanc);
    const server = await startTestServer({ stowUrl: orthanc.dicomWebUrl, stowBasicAuthFile: authFile, metricsPort: await freePort() });
    const client = createClient(server.address);
    const answers: SliceResult[] = [];
    try {
      const files = sourceUids.map((_, k) => readFileSync(join(series, `slice-${String(k).padStart(2, "0")}.dcm`)));
      for await (const answer of client.translate({ direction: "mr2ct", outputEncoding: Encoding.RAW }, files.map((data, k) => ({ index: BigInt(k), image: { encoding: Encoding.DICOM, data } })))) {
        assert.ok(!isSliceError(answer), isSliceError(answer) ? answer.message : "");
        answers.push(answer);
      }
      await server.flushStores();
      assert.deepEqual(await stowCounts(server), { "200": SLICES });
    } finally {
      client.close();
      await server.close();
    }

    const [stored, ...others] = await newSeries(orthanc, before);
    assert.equal(others.length, 0, "one new series");
    assert.equal(stored.MainDicomTags.Modality, "CT");
    assert.equal(stored.Instances.length, SLICES, "one instance per slice");
    const instances = await instancesOf(orthanc, stored);
    for (const { file, dataset } of instances) {
      assert.equal(dataset.SOPClassUID, SOP.ct);
      assert.deepEqual(dataset.ImageType.slice(0, 2), ["DERIVED", "SECONDARY"]);
      assert.match(dataset.DerivationDescription, /NOT FOR CLINICAL USE/);
      assert.equal(dataset.StudyInstanceUID, "1.2.826.0.1.3680043.10.1234.1", "the source's study, so it overlays");
      assert.notEqual(dataset.SeriesInstanceUID, SOURCE_SERIES);
      const source = dataset.SourceImageSequence;
      const reference = Array.isArray(source) ? source[0] : source;
      const k = sourceUids.indexOf(reference.ReferencedSOPInstanceUID);
      assert.ok(k >= 0, "Source Image Sequence names the slice it came from");
      assert.equal(reference.ReferencedSOPClassUID, SOP.mr);
      const hu = (await decodeImage({ encoding: Encoding.DICOM, data: file } as never, "stored")).raster.data;
      const raw = answers[k].image!.data;
      const expected = new Float32Array(raw.slice().buffer);
      assert.equal(hu.length, expected.length);
      let worst = 0;
      for (let i = 0; i < hu.length; i++) worst = Math.max(worst, Math.abs(hu[i] - expected[i]));
      assert.ok(worst <= 0.5 + 1e-3, `slice ${k}: stored HU within int16 rounding of the RAW answer (worst ${worst})`);
    }
  });

  it("the CLI's translate --stow-url stores the series from the client side", async () => {
    const before = await seriesIds(orthanc);
    const out = join(dir.path, "cli-out");
    const run = await runCli(["translate", series, "-d", "mr2ct", "--format", "dicom", "-o", out, "-q", "--models-dir", TINY_MODELS, "--stow-url", orthanc.dicomWebUrl, "--stow-basic-auth-file", authFile]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`stored ${SLICES}/${SLICES} instances by STOW-RS`));
    const [stored, ...others] = await newSeries(orthanc, before);
    assert.equal(others.length, 0);
    assert.equal(stored.MainDicomTags.Modality, "CT");
    assert.equal(stored.Instances.length, SLICES);
    const index = JSON.parse(readFileSync(join(out, "index.json"), "utf8"));
    assert.deepEqual(index.stow, { stored: SLICES, failed: [] });
    assert.ok(!run.stdout.includes(orthanc.password) && !run.stderr.includes(orthanc.password));
  });

  it("refused (wrong credentials): every slice is answered, each failure logged with Orthanc's status and counted, the password never logged", async () => {
    const before = await seriesIds(orthanc);
    const { log, lines } = recordingLogger();
    const server = await startTestServer({ stowUrl: orthanc.dicomWebUrl, stowBasicAuthFile: wrongAuthFile, metricsPort: await freePort() }, { log });
    const client = createClient(server.address);
    let answered = 0;
    try {
      const files = sourceUids.map((_, k) => readFileSync(join(series, `slice-${String(k).padStart(2, "0")}.dcm`)));
      for await (const answer of client.translate({ direction: "mr2ct", outputEncoding: Encoding.DICOM }, files.map((data, k) => ({ index: BigInt(k), image: { encoding: Encoding.DICOM, data } })))) {
        assert.ok(!isSliceError(answer));
        answered++;
      }
      await server.flushStores();
      assert.deepEqual(await stowCounts(server), { "401": SLICES });
    } finally {
      client.close();
      await server.close();
    }
    assert.equal(answered, SLICES);
    const failures = lines.filter((line) => line.msg === "STOW-RS store failed; the slice was answered");
    assert.equal(failures.length, SLICES);
    assert.equal(failures[0].status, "401");
    assert.equal(failures[0].attempts, 1, "a refusal is not retried");
    assert.ok(!JSON.stringify(lines).includes("not-the-password"));
    assert.deepEqual(await newSeries(orthanc, before), []);

    const run = await runCli(["translate", series, "-d", "mr2ct", "--format", "dicom", "-o", join(dir.path, "cli-refused"), "-q", "--models-dir", TINY_MODELS, "--stow-url", orthanc.dicomWebUrl, "--stow-basic-auth-file", wrongAuthFile]);
    assert.equal(run.code, 1, "stores that failed make the exit code 1");
    assert.match(run.stdout, new RegExp(`translated ${SLICES}/${SLICES} slices`));
    assert.match(run.stdout, new RegExp(`stored 0/${SLICES} instances by STOW-RS`));
    assert.match(run.stderr, new RegExp(`STOW-RS 401 x${SLICES}`));
  });

  it("down: every slice is answered and written, the failures counted after the retries", async () => {
    const closed = await freePort();
    const run = await runCli(["translate", series, "-d", "mr2ct", "--format", "dicom", "-o", join(dir.path, "cli-down"), "-q", "--models-dir", TINY_MODELS, "--stow-url", `http://127.0.0.1:${closed}/dicom-web`, "--stow-retries", "1"]);
    assert.equal(run.code, 1);
    assert.match(run.stdout, new RegExp(`translated ${SLICES}/${SLICES} slices`));
    assert.match(run.stderr, new RegExp(`STOW-RS unreachable x${SLICES}, e\\.g\\. slice-\\d+ after 2 attempt\\(s\\): ECONNREFUSED`));
    const index = JSON.parse(readFileSync(join(dir.path, "cli-down", "index.json"), "utf8"));
    assert.equal(index.slices.length, SLICES);
    assert.equal(index.stow.failed.length, SLICES);
  });

  it("a retry after a transient failure re-sends the same SOP Instance UID, and Orthanc keeps one instance per slice", async () => {
    // A loopback proxy in front of Orthanc that answers 503 to the first attempt of each instance.
    const attempts = new Map<string, number>();
    const proxy: Server = createServer((incoming, outgoing) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () => {
        const body = Buffer.concat(chunks);
        const sop = sopInstanceUidOf(body);
        const seen = (attempts.get(sop) ?? 0) + 1;
        attempts.set(sop, seen);
        if (seen === 1) {
          outgoing.writeHead(503, { "content-type": "application/json" }).end(JSON.stringify({ Message: "busy, try again" }));
          return;
        }
        const forward = httpRequest(`${orthanc.url}${incoming.url}`, { method: "POST", headers: incoming.headers }, (answer) => {
          outgoing.writeHead(answer.statusCode!, answer.headers);
          answer.pipe(outgoing);
        });
        forward.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const before = await seriesIds(orthanc);
    const server = await startTestServer({ stowUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/dicom-web`, stowBasicAuthFile: authFile, stowRetries: 2, metricsPort: await freePort() });
    const client = createClient(server.address);
    try {
      const files = sourceUids.map((_, k) => readFileSync(join(series, `slice-${String(k).padStart(2, "0")}.dcm`)));
      for await (const answer of client.translate({ direction: "mr2ct", outputEncoding: Encoding.RAW }, files.map((data, k) => ({ index: BigInt(k), image: { encoding: Encoding.DICOM, data } })))) {
        assert.ok(!isSliceError(answer));
      }
      await server.flushStores();
      assert.deepEqual(await stowCounts(server), { "200": SLICES });
    } finally {
      client.close();
      await server.close();
      proxy.close();
    }
    assert.equal(attempts.size, SLICES, "one SOP Instance UID per slice, over all attempts");
    assert.deepEqual([...attempts.values()], Array(SLICES).fill(2), "each sent twice: refused, then stored");
    const [stored] = await newSeries(orthanc, before);
    assert.equal(stored.Instances.length, SLICES);
    const uids = (await instancesOf(orthanc, stored)).map(({ dataset }) => dataset.SOPInstanceUID).sort();
    assert.deepEqual(uids, [...attempts.keys()].sort());
  });
});

/** The SOP Instance UID in a multipart STOW body: its Part-10 file meta (0002,0003). */
function sopInstanceUidOf(body: Buffer): string {
  const start = body.indexOf("DICM") - 128;
  const file = body.subarray(start);
  const meta = dcmjs.data.DicomMessage.readFile(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer, { untilTag: "00080016", ignoreErrors: true } as never);
  return dcmjs.data.DicomMetaDictionary.naturalizeDataset(meta.meta).MediaStorageSOPInstanceUID as string;
}
