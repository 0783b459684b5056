import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { createClient, isSliceError, status, TranslatorError, type SliceInit } from "../src/index.js";
import { Encoding, PixelType } from "../src/gen/medsynth/v1/translator_pb.js";
import { makeTestPki, type TestPki } from "./helpers/certs.js";
import { runCli } from "./helpers/cli.js";
import { freePort } from "./helpers/net.js";
import { useTestServer } from "./helpers/service.js";
import { until } from "./helpers/until.js";
import { useTempDir } from "./helpers/temp-dir.js";

const image = { encoding: Encoding.PNG, data: readFileSync("models/testdata/subject-101/mr/012.png") };
const slice = (n: number): SliceInit => ({ index: BigInt(n), image });

async function rejectsWith(promise: Promise<unknown>, code: status): Promise<TranslatorError> {
  const error = await promise.then(
    () => assert.fail("expected a TranslatorError"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof TranslatorError, String(error));
  assert.equal(error.code, code, error.message);
  return error;
}

async function drain(answers: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of answers) n++;
  return n;
}

describe("client library", () => {
  const served = useTestServer({ maxBatch: 4 });

  it("lists the served models", async () => {
    const models = await served.library.listModels();
    assert.deepEqual(models.map((m) => m.name).sort(), ["tiny-ct2mr", "tiny-mr2ct", "tiny-mr2ct-rgb"]);
    assert.ok(models.every((m) => m.ready && m.executionProvider === "cpu"));
  });

  it("reads the input only as the stream takes it: never more than the window ahead of the answers", async () => {
    const window = 3;
    let pulled = 0;
    let answered = 0;
    let maxAhead = 0;
    async function* source(): AsyncGenerator<SliceInit> {
      for (let n = 0; n < 20; n++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - answered);
        yield slice(n);
      }
    }
    for await (const answer of served.library.translate({ direction: "mr2ct", window }, source())) {
      assert.equal(Number(answer.index), answered, "answers come in order");
      answered++;
      await sleep(5); // a slow consumer
    }
    assert.equal(answered, 20);
    assert.equal(maxAhead, window, `pulled ${maxAhead} ahead of the answers`);
  });

  it("stops reading and closes the input when the consumer stops early", async () => {
    let pulled = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<SliceInit> {
      try {
        for (let n = 0; n < 10_000; n++) {
          pulled++;
          yield slice(n);
        }
      } finally {
        closed = true;
      }
    }
    let answered = 0;
    for await (const _ of served.library.translate({ direction: "mr2ct", window: 4 }, endless())) {
      if (++answered === 3) break;
    }
    await until(() => closed, "the source to be closed");
    assert.ok(closed, "the source was closed");
    assert.ok(pulled <= 3 + 4, `pulled ${pulled}`);
  });

  it("yields SliceError values for bad slices and goes on", async () => {
    const answers = [];
    for await (const answer of served.library.translate({ direction: "mr2ct" }, [slice(0), { index: 1n, image: { encoding: Encoding.PNG, data: new Uint8Array([1, 2, 3]) } }, slice(2)])) {
      answers.push(answer);
    }
    assert.deepEqual(answers.map((a) => [Number(a.index), isSliceError(a)]), [[0, false], [1, true], [2, false]]);
    const error = answers[1];
    assert.ok(isSliceError(error) && error.code === status.INVALID_ARGUMENT && error.message.startsWith("slice.image.data"));
  });

  it("throws typed errors carrying the gRPC code", async () => {
    await rejectsWith(drain(served.library.translate({ direction: "mr2ct", model: "no-such-model" }, [slice(0)])), status.NOT_FOUND);
    await rejectsWith(drain(served.library.translate({ direction: "ct2mr", model: "tiny-mr2ct" }, [slice(0)])), status.INVALID_ARGUMENT);
    const bad = await rejectsWith(served.library.translateSlice({ direction: "mr2ct" }, { index: 0n }), status.INVALID_ARGUMENT);
    assert.match(bad.details, /slice\.image/);
    const result = await served.library.translateSlice({ direction: "mr2ct", outputEncoding: Encoding.RAW }, slice(7));
    assert.equal(result.index, 7n);
    assert.equal(result.image!.data.length, 256 * 256 * 4);
  });

  it("passes the input's own failure through, and cancels on abort", async () => {
    async function* failing(): AsyncGenerator<SliceInit> {
      yield slice(0);
      throw new Error("scanner disconnected");
    }
    await assert.rejects(drain(served.library.translate({ direction: "mr2ct" }, failing())), /scanner disconnected/);

    const abort = new AbortController();
    async function* slow(): AsyncGenerator<SliceInit> {
      yield slice(0);
      await once(abort.signal, "abort"); // a source with nothing more to send until the caller gives up
    }
    const answers = served.library.translate({ direction: "mr2ct", signal: abort.signal }, slow());
    // The caller aborts once the stream is under way (its first answer is in).
    const aborted = (async () => {
      for await (const _ of answers) abort.abort();
    })();
    await rejectsWith(aborted, status.CANCELLED);
  });

  it("aborting while the stream waits for the connection to drain is a TranslatorError too", async () => {
    // 4 MiB slices fill the HTTP/2 stream: each write returns false and the writer waits for "drain", which needs
    // the server to read megabytes. On the first answer the consumer aborts and, busy with that answer, reads on
    // only a turn of the event loop later: the cancellation reaches the parked writer before the reader.
    const big = { encoding: Encoding.RAW, pixelType: PixelType.FLOAT32, width: 1024, height: 1024, data: new Uint8Array(1024 * 1024 * 4) };
    const abort = new AbortController();
    function* endless(): Generator<SliceInit> {
      for (let n = 0; ; n++) yield { index: BigInt(n), image: big };
    }
    const answers = served.library.translate({ direction: "mr2ct", signal: abort.signal, window: 16 }, endless());
    const aborted = (async () => {
      for await (const _ of answers) {
        abort.abort();
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await rejectsWith(aborted, status.CANCELLED);
  });

  it("answers a blank slice (every pixel equal) with the target's background, not the model's edge artefacts", async () => {
    const blank = { encoding: Encoding.RAW, pixelType: PixelType.FLOAT32, width: 200, height: 180, data: new Uint8Array(200 * 180 * 4) };
    const ct = await served.library.translateSlice({ direction: "mr2ct", outputEncoding: Encoding.RAW }, { index: 0n, image: blank });
    const hu = new Float32Array(ct.image!.data.slice().buffer);
    assert.equal(hu.length, 200 * 180);
    assert.ok(hu.every((v) => v === -1024), `values ${Math.min(...hu)}..${Math.max(...hu)}`);
    assert.equal(ct.timing?.batchSize, 0, "not sent to the model");
    // One stray pixel in an empty slice: its percentile window has zero width, so the model would see it flat too.
    const stray = new Float32Array(200 * 180);
    stray[4321] = 1;
    const strayCt = await served.library.translateSlice(
      { direction: "mr2ct", outputEncoding: Encoding.RAW },
      { index: 1n, image: { ...blank, data: new Uint8Array(stray.buffer) } },
    );
    assert.ok(new Float32Array(strayCt.image!.data.slice().buffer).every((v) => v === -1024));
  });

  it("cancels a TranslateSlice call on abort", async () => {
    const abort = new AbortController();
    abort.abort();
    await rejectsWith(served.library.translateSlice({ direction: "mr2ct", signal: abort.signal }, slice(0)), status.CANCELLED);
  });

  it("reports a server that is not there as UNAVAILABLE or a passed deadline", async () => {
    const nowhere = createClient(`127.0.0.1:${await freePort()}`, { deadlineMs: 1_000 });
    try {
      const error = await nowhere.listModels().then(() => assert.fail("no server should answer"), (e: unknown) => e);
      assert.ok(error instanceof TranslatorError && [status.UNAVAILABLE, status.DEADLINE_EXCEEDED].includes(error.code), String(error));
      await assert.rejects(nowhere.waitForReady(300), /no server ready at 127\.0\.0\.1:\d+ within 300 ms/);
    } finally {
      nowhere.close();
    }
  });
});

describe("client and CLI over TLS with a bearer token", () => {
  const token = "medsynth-test-token-0123456789abcdef";
  let pki: TestPki;
  const dir = useTempDir("tls");

  before(() => {
    pki = makeTestPki();
    writeFileSync(join(dir.path, "tokens"), `${token}\n`);
  });
  after(() => pki.remove());
  const served = useTestServer(() => ({ tlsCert: pki.serverCert, tlsKey: pki.serverKey, authTokensFile: join(dir.path, "tokens") }));

  it("connects with the CA and the token, and is refused without the token", async () => {
    const target = `localhost:${served.server.port}`;
    const anonymous = createClient(target, { tls: { ca: pki.caCert } });
    const authorised = createClient(target, { tls: { ca: pki.caCert }, token });
    try {
      await rejectsWith(anonymous.listModels(), status.UNAUTHENTICATED);
      assert.equal((await authorised.listModels()).length, 3);
    } finally {
      anonymous.close();
      authorised.close();
    }
    const out = join(dir.path, "out");
    const run = await runCli(["translate", "models/testdata/subject-101/mr", "-d", "mr2ct", "-o", out, "--target", target, "--tls-ca", pki.caCert], { MEDSYNTH_TOKEN: token });
    assert.equal(run.code, 0, run.stderr);
    const n = readdirSync("models/testdata/subject-101/mr").length;
    assert.match(run.stdout, new RegExp(`translated ${n}/${n} slices`));
  });
});
