import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { once } from "node:events";
import { create } from "@bufbuild/protobuf";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { VirtualTimeScheduler } from "rxjs";
import { loadSync } from "@grpc/proto-loader";
import { loadPackageDefinition, type GrpcObject } from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { checkHealth } from "../src/cli/healthcheck.js";
import {
  Direction,
  Encoding,
  ImageSchema,
  PixelType,
  TranslateSliceRequestSchema,
  StreamOptionsSchema,
  SliceSchema,
  type ListModelsResponse,
  type SliceResult,
  type TranslateResponse,
} from "../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage, encodeImage } from "../src/imaging/codec.js";
import { computeQuality } from "../src/quality/quality.js";
import { editedModelsDir } from "./helpers/models.js";
import { until } from "./helpers/until.js";
import { advanceTo } from "./helpers/virtual-time.js";
import { createLogger } from "../src/server/log.js";
import { syntheticHead } from "../src/cli/synthetic-head.js";
import { collect, ctImage, floats, mrImage, options, rawImage, recordingLogger, sliceRequest, startTestServer, translatorClient, type TranslatorTestClient, useTestServer } from "./helpers/service.js";

const call = <T>(client: TranslatorTestClient, method: string, request: unknown): Promise<T> =>
  new Promise((resolve, reject) =>
    (client[method] as (r: unknown, cb: (e: ServiceError | null, v: T) => void) => void).call(client, request, (e, v) =>
      e ? reject(e) : resolve(v),
    ),
  );

const resultOf = (r: TranslateResponse): SliceResult => {
  if (r.kind.case !== "result") assert.fail(`expected a result, got ${r.kind.case}: ${r.kind.case === "error" ? r.kind.value.message : ""}`);
  return r.kind.value;
};

describe("Translator service", () => {
  const served = useTestServer({ maxDelayMs: 20 });

  it("lists the loaded models with their execution provider", async () => {
    const { models } = await call<ListModelsResponse>(served.client, "listModels", {});
    const names = models.map((m) => m.name).sort();
    assert.deepEqual(names, ["tiny-ct2mr", "tiny-mr2ct", "tiny-mr2ct-rgb"]);
    const mr2ct = models.find((m) => m.name === "tiny-mr2ct")!;
    assert.equal(mr2ct.direction, Direction.MR_TO_CT);
    assert.equal(mr2ct.isDefault, true);
    assert.equal(mr2ct.inputWidth, 64);
    assert.equal(mr2ct.executionProvider, "cpu");
    assert.equal(mr2ct.ready, true);
    assert.equal(models.find((m) => m.name === "tiny-mr2ct-rgb")!.isDefault, false);
  });

  it("translates MR to CT: one answer per slice, in order, at the source size, in HU", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT));
    const sizes = [[80, 96], [64, 64], [130, 70], [80, 96], [33, 200]];
    sizes.forEach(([w, h], i) => stream.write(sliceRequest(100 + i, mrImage(w, h))));
    stream.end();
    const { responses, error } = await done;
    assert.equal(error, undefined);
    assert.equal(responses.length, sizes.length);
    responses.forEach((r, i) => {
      const result = resultOf(r);
      assert.equal(result.index, BigInt(100 + i));
      assert.equal(result.model, "tiny-mr2ct");
      assert.equal(result.image!.encoding, Encoding.RAW);
      assert.equal(result.image!.pixelType, PixelType.FLOAT32);
      assert.deepEqual([result.image!.width, result.image!.height], sizes[i]);
      const hu = floats(result.image!);
      assert.equal(hu.length, sizes[i][0] * sizes[i][1]);
      for (const v of hu) assert.ok(v >= -1024 && v <= 3071, `HU ${v} outside the model window`);
      assert.equal(result.quality, undefined, "no reference, no quality");
      assert.ok(result.timing!.batchSize >= 1);
      assert.ok(result.timing!.totalMs >= result.timing!.inferenceMs);
    });
  });

  it("returns Quality for slices with a reference, equal to the metrics of the returned image", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT, { foregroundMetrics: true }));
    const reference = ctImage(96, 96);
    stream.write(sliceRequest(0, mrImage(96, 96), reference));
    stream.write(sliceRequest(1, mrImage(96, 96)));
    stream.end();
    const { responses } = await done;
    const withReference = resultOf(responses[0]);
    assert.equal(resultOf(responses[1]).quality, undefined);
    const q = withReference.quality!;
    assert.ok(q.psnr! > 0 && Number.isFinite(q.psnr));
    assert.deepEqual([q.unavailable, withReference.foregroundQuality!.unavailable], [{}, {}], "every metric is defined at 96²");
    assert.ok(withReference.timing!.metricsMs > 0);
    const synthetic = { width: 96, height: 96, data: floats(withReference.image!) };
    const referenceHu = (await decodeImage(reference, "reference")).raster;
    const expected = computeQuality(synthetic, referenceHu, { window: "fixed", low: -1024, high: 3071 }, { foreground: true });
    for (const key of ["psnr", "ssim", "uqi", "vif", "mae"] as const) {
      assert.ok(Math.abs(q[key]! - expected.quality[key]) <= 1e-9 * Math.max(1, Math.abs(expected.quality[key])), key);
      assert.ok(Math.abs(withReference.foregroundQuality![key]! - expected.foreground![key]) <= 1e-9 * Math.max(1, Math.abs(expected.foreground![key])), `foreground ${key}`);
    }
    assert.notEqual(withReference.foregroundQuality!.psnr, q.psnr, "the mask changes the result");
  });

  it("answers Quality for slices too small for some metrics: those are absent, each with its reason, never NaN", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT, { foregroundMetrics: true }));
    stream.write(sliceRequest(0, mrImage(5, 5), ctImage(5, 5)));
    stream.write(sliceRequest(1, mrImage(20, 24), ctImage(20, 24)));
    // A reference of air only: constant in the CT window, and no foreground.
    const air = rawImage(new Array(64 * 64).fill(0), 64, 64, PixelType.INT16, -1024);
    stream.write(sliceRequest(2, mrImage(64, 64), air));
    stream.end();
    const [tiny, small, flat] = (await done).responses.map(resultOf);
    const defined = (q: SliceResult["quality"]) => (["psnr", "ssim", "uqi", "vif", "mae"] as const).filter((k) => q![k] !== undefined);
    for (const q of [tiny.quality, small.quality, flat.quality]) {
      for (const key of defined(q)) assert.ok(!Number.isNaN(q![key]), key);
    }
    assert.deepEqual(defined(tiny.quality), ["psnr", "mae"]);
    assert.deepEqual(tiny.quality!.unavailable, {
      ssim: "needs at least 7×7 pixels; the image is 5×5",
      uqi: "needs at least 9×9 pixels; the image is 5×5",
      vif: "needs at least 41×41 pixels; the image is 5×5",
    });
    assert.deepEqual(defined(small.quality), ["psnr", "ssim", "uqi", "mae"]);
    assert.deepEqual(small.quality!.unavailable, { vif: "needs at least 41×41 pixels; the image is 20×24" });
    assert.deepEqual(defined(flat.quality), ["psnr", "ssim", "uqi", "mae"]);
    assert.deepEqual(flat.quality!.unavailable, { vif: "the reference is constant in the target window" });
    const empty = "the foreground mask is empty: no reference pixel is above 0.05 of the target window";
    assert.deepEqual(flat.foregroundQuality!.unavailable, { psnr: empty, ssim: empty, uqi: empty, vif: empty, mae: empty });
    assert.deepEqual(defined(flat.foregroundQuality), []);
  });

  it("translates CT to MR from PNG and answers in PNG by default", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.CT_TO_MR));
    const hu = syntheticHead(72, 72, { outside: -1000, inside: 35, core: 900 });
    const png = await encodeImage({ width: 72, height: 72, data: hu }, Encoding.PNG);
    assert.equal(png.rescaleIntercept, -1000);
    stream.write(sliceRequest(0, png));
    stream.end();
    const { responses } = await done;
    const result = resultOf(responses[0]);
    assert.equal(result.model, "tiny-ct2mr");
    assert.equal(result.image!.encoding, Encoding.PNG);
    assert.equal(result.image!.width, 72);
  });

  it("serves several concurrent streams in both directions, batching slices across them", async () => {
    const streams = Array.from({ length: 4 }, (_, s) => {
      const stream = served.client.translate();
      const done = collect(stream);
      const direction = s % 2 === 0 ? Direction.MR_TO_CT : Direction.CT_TO_MR;
      stream.write(options(direction));
      for (let i = 0; i < 8; i++) stream.write(sliceRequest(i, direction === Direction.MR_TO_CT ? mrImage() : ctImage()));
      stream.end();
      return done;
    });
    const outcomes = await Promise.all(streams);
    let largestBatch = 0;
    outcomes.forEach(({ responses, error }, s) => {
      assert.equal(error, undefined);
      assert.deepEqual(responses.map((r) => resultOf(r).index), Array.from({ length: 8 }, (_, i) => BigInt(i)));
      for (const r of responses) {
        const result = resultOf(r);
        assert.equal(result.model, s % 2 === 0 ? "tiny-mr2ct" : "tiny-ct2mr");
        largestBatch = Math.max(largestBatch, result.timing!.batchSize);
      }
    });
    assert.ok(largestBatch > 1, `slices were never batched together (largest batch ${largestBatch})`);
  });

  it("answers bad slices with per-slice INVALID_ARGUMENT naming the field, and goes on", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT));
    const good = mrImage(64, 64);
    const bad: [string, ReturnType<typeof sliceRequest>][] = [
      ["slice.image.data", sliceRequest(1, { ...good, data: good.data.subarray(1) })],
      ["slice.image.width", sliceRequest(2, { ...good, width: 0 })],
      ["slice.image.pixel_type", sliceRequest(3, { ...good, pixelType: 99 as PixelType })],
      ["slice.image.data", sliceRequest(4, create(ImageSchema, { encoding: Encoding.PNG, data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]) }))],
      ["slice.image.data", sliceRequest(5, rawImage([1, Number.NaN, 3, 4], 2, 2, PixelType.FLOAT32))],
      ["slice.image", sliceRequest(6, undefined)],
      ["slice.reference", sliceRequest(7, good, ctImage(32, 32))],
      ["slice.image.width", sliceRequest(8, rawImage(new Array(5000).fill(1), 5000, 1, PixelType.UINT8))],
      ["slice.image.encoding", sliceRequest(9, { ...good, encoding: 42 as Encoding })],
    ];
    stream.write(sliceRequest(0, good));
    for (const [, request] of bad) stream.write(request);
    stream.write(sliceRequest(10, good));
    stream.end();
    const { responses, error } = await done;
    assert.equal(error, undefined);
    assert.deepEqual(
      responses.map((r) => r.kind.value!.index),
      Array.from({ length: 11 }, (_, i) => BigInt(i)),
    );
    assert.equal(responses[0].kind.case, "result");
    assert.equal(responses[10].kind.case, "result");
    bad.forEach(([field], i) => {
      const r = responses[i + 1];
      assert.equal(r.kind.case, "error", `slice ${i + 1} should have failed`);
      const e = r.kind.value as { code: number; message: string };
      assert.equal(e.code, status.INVALID_ARGUMENT, e.message);
      assert.ok(e.message.startsWith(`${field}`), `"${e.message}" should name ${field}`);
    });
  });

  it("ends a stream whose first message is not options, or whose model is unknown", async () => {
    const cases: [ReturnType<typeof options>, number][] = [
      [sliceRequest(0, mrImage()), status.INVALID_ARGUMENT],
      [options(Direction.UNSPECIFIED), status.INVALID_ARGUMENT],
      [options(Direction.MR_TO_CT, { model: "no-such-model" }), status.NOT_FOUND],
      [options(Direction.CT_TO_MR, { model: "tiny-mr2ct" }), status.INVALID_ARGUMENT],
    ];
    for (const [first, code] of cases) {
      const stream = served.client.translate();
      const done = collect(stream);
      stream.write(first);
      stream.end();
      const { error } = await done;
      assert.equal(error?.code, code, JSON.stringify(error));
    }
  });

  it("replicates greyscale over a 3-channel model and averages its output", async () => {
    const stream = served.client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT, { model: "tiny-mr2ct-rgb" }));
    stream.write(sliceRequest(0, mrImage(50, 40)));
    stream.end();
    const result = resultOf((await done).responses[0]);
    assert.equal(result.model, "tiny-mr2ct-rgb");
    assert.equal(floats(result.image!).length, 50 * 40);
  });

  it("translates one slice with TranslateSlice and fails a bad one with the slice's status", async () => {
    const request = (image = mrImage()) =>
      create(TranslateSliceRequestSchema, {
        options: create(StreamOptionsSchema, { direction: Direction.MR_TO_CT }),
        slice: create(SliceSchema, { index: 7n, image }),
      });
    const result = await call<SliceResult>(served.client, "translateSlice", request());
    assert.equal(result.index, 7n);
    await assert.rejects(call(served.client, "translateSlice", request({ ...mrImage(), width: 3 })), (e: ServiceError) => {
      assert.equal(e.code, status.INVALID_ARGUMENT);
      assert.match(e.details, /^slice\.image\.data/);
      return true;
    });
  });

  it("reports health for the server and the Translator service", async () => {
    const check = (service: string) => checkHealth(served.server.address, { service });
    assert.equal(await check(""), HealthCheckResponse_ServingStatus.SERVING);
    assert.equal(await check("medsynth.v1.Translator"), HealthCheckResponse_ServingStatus.SERVING);
    await assert.rejects(check("nope"), (e: ServiceError) => e.code === status.NOT_FOUND);
  });

  it("answers server reflection with the contract's services and files", async () => {
    const definition = loadSync("node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto", {
      keepCase: true,
      longs: String,
      oneofs: true,
    });
    const pkg = loadPackageDefinition(definition) as GrpcObject;
    const Reflection = ((pkg.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject;
    const ServerReflection = Reflection.ServerReflection as unknown as new (a: string, c: unknown) => {
      ServerReflectionInfo(): import("@grpc/grpc-js").ClientDuplexStream<object, Record<string, any>>;
      close(): void;
    };
    const reflection = new ServerReflection(served.server.address, credentials.createInsecure());
    const ask = (request: object) =>
      new Promise<Record<string, any>>((resolve, reject) => {
        const stream = reflection.ServerReflectionInfo();
        stream.on("data", resolve);
        stream.on("error", reject);
        stream.write(request);
        stream.end();
      });
    const listed = await ask({ list_services: "" });
    const services = listed.list_services_response.service.map((s: { name: string }) => s.name);
    assert.ok(services.includes("medsynth.v1.Translator"), services.join(","));
    assert.ok(services.includes("grpc.health.v1.Health"), services.join(","));
    const file = await ask({ file_containing_symbol: "medsynth.v1.Translator" });
    assert.ok(file.file_descriptor_response.file_descriptor_proto.length >= 1);
    reflection.close();
  });
});

describe("Translator service under pressure", () => {
  it("takes a cancelled stream's queued slices out of the queue", async () => {
    const server = await startTestServer({ maxDelayMs: 60_000, maxBatch: 64 });
    const client = translatorClient(server.address);
    try {
      const stream = client.translate();
      stream.on("error", () => undefined);
      stream.write(options(Direction.MR_TO_CT));
      for (let i = 0; i < 5; i++) stream.write(sliceRequest(i, mrImage()));
      await until(() => server.queueDepth === 5, "5 queued slices");
      stream.cancel();
      await until(() => server.queueDepth === 0 && server.openStreams === 0, "the queue to empty");
    } finally {
      client.close();
      await server.close();
    }
  });

  it("answers RESOURCE_EXHAUSTED at once past maxQueue, and every slice still gets one answer", async () => {
    const server = await startTestServer({ maxDelayMs: 500, maxBatch: 64, maxQueue: 4 });
    const client = translatorClient(server.address);
    try {
      const stream = client.translate();
      const done = collect(stream);
      stream.write(options(Direction.MR_TO_CT));
      for (let i = 0; i < 7; i++) stream.write(sliceRequest(i, mrImage()));
      stream.end();
      const { responses } = await done;
      assert.deepEqual(responses.map((r) => r.kind.value!.index), [0n, 1n, 2n, 3n, 4n, 5n, 6n]);
      assert.deepEqual(responses.map((r) => r.kind.case), ["result", "result", "result", "result", "error", "error", "error"]);
      for (const r of responses.slice(4)) assert.equal((r.kind.value as { code: number }).code, status.RESOURCE_EXHAUSTED);
    } finally {
      client.close();
      await server.close();
    }
  });

  it("stops reading a stream whose in-flight window is full (HTTP/2 backpressure reaches the sender)", async () => {
    const server = await startTestServer({ window: 2, maxDelayMs: 0 });
    const client = translatorClient(server.address);
    try {
      const stream = client.translate();
      stream.on("error", () => undefined);
      stream.pause(); // the client does not read its answers
      stream.write(options(Direction.MR_TO_CT));
      const big = mrImage(512, 512); // 512 KiB per slice
      let sent = 0;
      while (stream.write(sliceRequest(sent, big)) && sent < 200) sent++;
      assert.ok(sent < 200, "the sender was never pushed back");
      stream.cancel();
    } finally {
      client.close();
      await server.close();
    }
  });

  it("drains on SIGTERM: refuses new streams, answers every accepted slice, exits 0", async () => {
    const server = await serverProcess();
    try {
      const client = translatorClient(server.address);
      const total = 12;
      const { stream, done } = await answeringStream(client, total / 2);
      await server.signal("SIGTERM", "draining");
      // The open stream goes on; a new one is refused.
      for (let i = total / 2; i < total; i++) stream.write(sliceRequest(i, mrImage()));
      const refused = client.translate();
      const refusedDone = collect(refused);
      refused.write(options(Direction.MR_TO_CT));
      refused.end();
      assert.equal((await refusedDone).error?.code, status.UNAVAILABLE);
      stream.end();
      const { responses, error } = await done;
      assert.equal(error, undefined);
      assert.deepEqual(responses.map((r) => resultOf(r).index), Array.from({ length: total }, (_, i) => BigInt(i)));
      client.close();
      const [code] = await once(server.child, "exit");
      assert.equal(code, 0);
      assert.ok(server.logs.some((l) => l.msg === "drained"));
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("ignores a second SIGTERM during the drain (logged), and stops at once on a third", async () => {
    const server = await serverProcess();
    try {
      const client = translatorClient(server.address);
      const total = 10;
      const { stream, done } = await answeringStream(client, 1);
      await server.signal("SIGTERM", "draining");
      await server.signal("SIGTERM", "signal received during the drain: ignored");
      for (let i = 1; i < total; i++) stream.write(sliceRequest(i, mrImage()));
      stream.end();
      const { responses, error } = await done;
      assert.equal(error, undefined, "the drain went on after the second signal");
      assert.equal(responses.length, total, "every slice answered");
      assert.equal((await once(server.child, "exit"))[0], 0);

      // A third signal ends a drain that would otherwise wait for an open stream.
      const again = await serverProcess();
      const againClient = translatorClient(again.address);
      try {
        const { stream: open } = await answeringStream(againClient, 1);
        open.on("error", () => undefined);
        await again.signal("SIGTERM", "draining");
        await again.signal("SIGTERM", "signal received during the drain: ignored");
        again.child.kill("SIGTERM");
        const [code, signal] = await once(again.child, "exit");
        assert.deepEqual([code, signal], [143, null]);
        assert.ok(again.logs.some((l) => l.msg === "third signal: stopping without finishing the drain"));
      } finally {
        againClient.close();
        again.child.kill("SIGKILL");
      }
      client.close();
    } finally {
      server.child.kill("SIGKILL");
    }
  });
});

/** A Translate stream that sent StreamOptions and `count` slices and has had its first answer. */
async function answeringStream(client: TranslatorTestClient, count: number) {
  const stream = client.translate();
  const done = collect(stream);
  let answered = 0;
  stream.on("data", () => answered++);
  stream.write(options(Direction.MR_TO_CT));
  for (let i = 0; i < count; i++) stream.write(sliceRequest(i, mrImage()));
  await until(() => answered > 0, "the stream to be accepted and answering");
  return { stream, done };
}

/** `medsynth` server in a child process on the tiny models (one worker), its JSON log lines parsed as they come. */
async function serverProcess() {
  const child = spawn(process.execPath, [
    new URL("../src/server/main.js", import.meta.url).pathname,
    "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--models-dir", "test/fixtures/models",
    "--workers", "1", "--max-delay-ms", "30",
  ], { stdio: ["ignore", "pipe", "inherit"] });
  const logs: Record<string, unknown>[] = [];
  let buffered = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) logs.push(JSON.parse(line));
  });
  try {
    await until(() => logs.some((l) => l.msg === "listening"), "the server to listen", 30_000);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  return {
    child,
    logs,
    address: `127.0.0.1:${logs.find((l) => l.msg === "listening")!.port as number}`,
    /** Sends `signal`, then waits for a log line that starts with `logged`. */
    signal: async (signal: NodeJS.Signals, logged: string) => {
      child.kill(signal);
      await until(() => logs.some((l) => String(l.msg).startsWith(logged)), logged);
    },
  };
}

describe("internal failures", () => {
  it("reach the caller as INTERNAL with a reference the server's log line carries, the details only in the log", async () => {
    // A manifest naming an output the model does not have: it loads and warms up, and every inference then fails.
    const modelsDir = editedModelsDir((m) => void (m.output.name = "no-such-output"));
    const { log, lines } = recordingLogger();
    const server = await startTestServer({ modelsDir }, { log });
    const client = translatorClient(server.address);
    const logged = (ref: string) => lines.filter((l) => l.msg === "slice failed" && l.ref === ref);
    try {
      const stream = client.translate();
      const done = collect(stream);
      stream.write(options(Direction.MR_TO_CT));
      stream.write(sliceRequest(3, mrImage()));
      stream.end();
      const { responses, error } = await done;
      assert.equal(error, undefined);
      const answer = responses[0].kind;
      assert.equal(answer.case, "error");
      assert.equal(answer.value.code, status.INTERNAL);
      const [, streamRef] = /^internal error \(ref ([0-9a-f]{8})\)$/.exec(answer.value.message) ?? assert.fail(answer.value.message);
      const [line] = logged(streamRef);
      assert.equal(logged(streamRef).length, 1, "logged once");
      assert.deepEqual([line.level, line.model, line.index], ["error", "tiny-mr2ct", 3]);
      assert.match(String(line.error), /^inference failed: /);

      const request = create(TranslateSliceRequestSchema, {
        options: create(StreamOptionsSchema, { direction: Direction.MR_TO_CT }),
        slice: create(SliceSchema, { index: 4n, image: mrImage() }),
      });
      const failed = await call(client, "translateSlice", request).then(() => assert.fail("expected INTERNAL"), (e: ServiceError) => e);
      assert.equal(failed.code, status.INTERNAL);
      const [, unaryRef] = /^internal error \(ref ([0-9a-f]{8})\)$/.exec(failed.details) ?? assert.fail(failed.details);
      assert.notEqual(unaryRef, streamRef);
      assert.equal(logged(unaryRef).length, 1);
      assert.equal(logged(unaryRef)[0].index, 4);
    } finally {
      client.close();
      await server.close();
      rmSync(modelsDir, { recursive: true, force: true });
    }
  });
});

describe("drain deadline", () => {
  /** A stream the server has admitted and answered once, left open (not half-closed). */
  async function openStream(client: TranslatorTestClient) {
    const stream = client.translate();
    const done = collect(stream);
    stream.write(options(Direction.MR_TO_CT));
    stream.write(sliceRequest(0, mrImage()));
    await once(stream, "data");
    return { done };
  }
  const timedOut = (ms: number, answered: number) =>
    new RegExp(`^server is shutting down; the drain timeout of ${ms} ms passed; ${answered} slices? answered before it$`);

  it("ends the streams still open when the deadline passes, not before (virtual time)", async () => {
    const scheduler = new VirtualTimeScheduler();
    const drainTimeoutMs = 1000;
    const server = await startTestServer({ drainTimeoutMs, maxDelayMs: 0 }, { log: createLogger("error"), scheduler });
    const client = translatorClient(server.address);
    try {
      const { done } = await openStream(client);
      const start = scheduler.now();
      const drained = server.drain();
      advanceTo(scheduler, start + drainTimeoutMs - 1);
      assert.equal(server.openStreams, 1, "the stream may still finish");
      advanceTo(scheduler, start + drainTimeoutMs);
      assert.equal(server.openStreams, 0, "ended at the deadline");
      const { error } = await done;
      assert.equal(error?.code, status.UNAVAILABLE);
      assert.match(error.details, timedOut(drainTimeoutMs, 1));
      await drained;
    } finally {
      client.close();
      await server.close();
    }
  });

  it("ends the streams still open when the deadline passes (real time)", async () => {
    const drainTimeoutMs = 300;
    const server = await startTestServer({ drainTimeoutMs });
    const client = translatorClient(server.address);
    try {
      const { done } = await openStream(client);
      await server.drain();
      const { error } = await done;
      assert.equal(error?.code, status.UNAVAILABLE);
      assert.match(error.details, timedOut(drainTimeoutMs, 1));
    } finally {
      client.close();
    }
  });

  /**
   * A server whose lone slices wait maxDelayMs (virtual) for company, and a stream on it whose slice 0 is
   * queued: `run` drives the drain; the server and client are closed after it.
   */
  async function withQueuedSlice(
    run: (it: { scheduler: VirtualTimeScheduler; server: Awaited<ReturnType<typeof startTestServer>>; stream: ReturnType<TranslatorTestClient["translate"]>; done: ReturnType<typeof collect> }) => Promise<void>,
    halfClose = false,
  ): Promise<void> {
    const scheduler = new VirtualTimeScheduler();
    const server = await startTestServer({ drainTimeoutMs: DRAIN_MS, maxDelayMs: BATCH_DELAY_MS, maxBatch: 8 }, { log: createLogger("error"), scheduler });
    const client = translatorClient(server.address);
    try {
      const stream = client.translate();
      const done = collect(stream);
      stream.write(options(Direction.MR_TO_CT));
      stream.write(sliceRequest(0, mrImage()));
      if (halfClose) stream.end();
      await until(() => server.queueDepth === 1, "slice 0 queued");
      await run({ scheduler, server, stream, done });
    } finally {
      client.close();
      await server.close();
    }
  }
  const DRAIN_MS = 1000;
  const BATCH_DELAY_MS = 3000;

  it("answers the slices a stream accepted before the deadline, then ends it (virtual time)", () =>
    withQueuedSlice(async ({ scheduler, server, stream, done }) => {
      advanceTo(scheduler, scheduler.now() + BATCH_DELAY_MS);
      await once(stream, "data");
      // Slice 1 is still waiting for company at the deadline.
      stream.write(sliceRequest(1, mrImage()));
      await until(() => server.queueDepth === 1, "slice 1 queued");
      const start = scheduler.now();
      const drained = server.drain();
      advanceTo(scheduler, start + DRAIN_MS);
      assert.equal(server.openStreams, 1, "the stream waits for its accepted slice");
      advanceTo(scheduler, start + BATCH_DELAY_MS);
      const { responses, error } = await done;
      assert.deepEqual(responses.map((r) => r.kind.case === "result" && Number(r.kind.value.index)), [0, 1]);
      assert.equal(error?.code, status.UNAVAILABLE);
      assert.match(error.details, timedOut(DRAIN_MS, 2));
      await drained;
    }));

  it("lets a stream its client already closed finish with OK past the deadline (virtual time)", () =>
    withQueuedSlice(async ({ scheduler, server, done }) => {
      const start = scheduler.now();
      const drained = server.drain();
      advanceTo(scheduler, start + DRAIN_MS);
      advanceTo(scheduler, start + BATCH_DELAY_MS);
      const { responses, error } = await done;
      assert.equal(responses.length, 1);
      assert.equal(error, undefined, "ended with OK");
      await drained;
    }, true));
});
