// The web port on a real server (tiny fixture models), called by real
// connect-node clients over the Connect protocol (JSON and binary), gRPC-Web
// and gRPC, side by side with the grpc-js port: same answers, same per-slice
// errors, same status codes for tokens, size and call limits; CORS; an
// aborted request leaving the queue; drain; TLS; the viewer's files.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { status, type Metadata, type ServiceError } from "@grpc/grpc-js";
import { bearerMetadata } from "../src/contract/credentials.js";
import { VirtualTimeScheduler } from "rxjs";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import {
  Direction,
  Encoding,
  PixelType,
  StreamOptionsSchema,
  TranslateSliceRequestSchema,
  Translator,
  type Image,
  type SliceResult,
  type TranslateSliceRequest,
} from "../src/gen/medsynth/v1/translator_pb.js";
import { parseServerConfig } from "../src/server/config.js";
import { createLogger } from "../src/server/log.js";
import type { RunningServer } from "../src/server/server.js";
import { makeTestPki, type TestPki } from "./helpers/certs.js";
import { freePort } from "./helpers/net.js";
import { collect, mrImage, rawImage, startTestServer, useTestServer, type TranslatorTestClient } from "./helpers/service.js";
import { useTempDir } from "./helpers/temp-dir.js";
import { until } from "./helpers/until.js";
import { advanceTo } from "./helpers/virtual-time.js";

const webUrl = (server: RunningServer, scheme = "http") => `${scheme}://127.0.0.1:${server.webPort}`;

/** The three protocols of the web port, each as a browser or HTTP client would speak it. */
function transports(baseUrl: string, nodeOptions?: { ca: Buffer }): Record<string, Transport> {
  // HTTP/2 sessions close once idle, so that they do not keep the test process alive.
  const idleConnectionTimeoutMs = 200;
  return {
    "Connect JSON over HTTP/1.1": createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions }),
    "Connect binary over HTTP/2": createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, nodeOptions, idleConnectionTimeoutMs }),
    "gRPC-Web over HTTP/1.1": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions }),
    "gRPC over HTTP/2": createGrpcTransport({ baseUrl, nodeOptions, idleConnectionTimeoutMs }),
  };
}

const sliceCall = (direction: Direction, image: Image | undefined, extra: { model?: string; reference?: Image } = {}): TranslateSliceRequest =>
  create(TranslateSliceRequestSchema, {
    options: create(StreamOptionsSchema, { direction, model: extra.model, outputEncoding: Encoding.RAW }),
    slice: { index: 7n, image, reference: extra.reference },
  });

type Failure = { code: number; details: string };

/** A grpc-js unary call's answer, or its error as code and details. */
function grpcCall<T = object>(client: TranslatorTestClient, method: string, request: unknown, metadata?: Metadata): Promise<T | Failure> {
  return new Promise((resolve) => {
    const fn = client[method] as (...args: unknown[]) => void;
    const done = (error: ServiceError | null, value: T) => resolve(error ? { code: error.code, details: error.details } : value);
    if (metadata) fn.call(client, request, metadata, done);
    else fn.call(client, request, done);
  });
}

/** A Connect call's answer, or its error as code and message (without the "[code]" prefix). */
async function connectCall<T>(call: () => Promise<T>): Promise<T | Failure> {
  try {
    return await call();
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, details: e.rawMessage };
  }
}

describe("web port: protocols and answers", () => {
  const served = useTestServer(async () => ({ webPort: await freePort(), metricsPort: await freePort() }));

  it("serves ListModels and TranslateSlice over Connect, gRPC-Web and gRPC, answering as the gRPC port does", async () => {
    const request = sliceCall(Direction.MR_TO_CT, mrImage(), { reference: mrImage() });
    const viaGrpcPort = (await grpcCall<SliceResult>(served.client, "translateSlice", request)) as SliceResult;
    assert.ok(viaGrpcPort.image && viaGrpcPort.quality);
    for (const [name, transport] of Object.entries(transports(webUrl(served.server)))) {
      const client = createClient(Translator, transport);
      const { models } = await client.listModels({});
      assert.deepEqual(models.map((m) => m.name).sort(), ["tiny-ct2mr", "tiny-mr2ct", "tiny-mr2ct-rgb"], name);
      const result = await client.translateSlice(request);
      assert.equal(result.index, 7n, name);
      assert.ok(Buffer.from(result.image!.data).equals(Buffer.from(viaGrpcPort.image.data)), `${name}: the same synthetic pixels`);
      assert.deepEqual(result.quality, viaGrpcPort.quality, `${name}: the same metrics`);
    }
  });

  it("answers bad input with the gRPC port's status and per-slice message, naming the field", async () => {
    const bad: [string, TranslateSliceRequest, number, RegExp][] = [
      ["short RAW data", sliceCall(Direction.MR_TO_CT, rawImage(new Uint16Array(10), 4, 4, PixelType.UINT16)), status.INVALID_ARGUMENT, /^slice\.image\.data: /],
      ["no image", sliceCall(Direction.MR_TO_CT, undefined), status.INVALID_ARGUMENT, /^slice\.image/],
      ["reference of another size", sliceCall(Direction.MR_TO_CT, mrImage(), { reference: mrImage(40, 40) }), status.INVALID_ARGUMENT, /^slice\.reference: /],
      ["unknown model", sliceCall(Direction.MR_TO_CT, mrImage(), { model: "nope" }), status.NOT_FOUND, /^options\.model: no model named "nope"/],
      ["model of the other direction", sliceCall(Direction.CT_TO_MR, mrImage(), { model: "tiny-mr2ct" }), status.INVALID_ARGUMENT, /^options\.model: /],
      ["no direction", sliceCall(Direction.UNSPECIFIED, mrImage()), status.INVALID_ARGUMENT, /^options\.direction: /],
      ["no slice", create(TranslateSliceRequestSchema, { options: { direction: Direction.MR_TO_CT } }), status.INVALID_ARGUMENT, /^slice: missing/],
    ];
    const client = createClient(Translator, transports(webUrl(served.server))["Connect JSON over HTTP/1.1"]);
    for (const [what, request, code, message] of bad) {
      const viaGrpc = await grpcCall(served.client, "translateSlice", request);
      const viaWeb = await connectCall(() => client.translateSlice(request));
      assert.ok("code" in viaGrpc && "code" in viaWeb, what);
      assert.equal(viaGrpc.code, code, `${what} via gRPC: ${viaGrpc.details}`);
      assert.match(viaGrpc.details, message, what);
      assert.deepEqual(viaWeb, viaGrpc, `${what}: the web port answers as the gRPC port`);
    }
  });

  it("refuses the bidirectional Translate stream, pointing at the gRPC port", async () => {
    const client = createClient(Translator, transports(webUrl(served.server))["gRPC over HTTP/2"]);
    const answers = client.translate((async function* () {})());
    await assert.rejects(
      (async () => {
        for await (const _ of answers);
      })(),
      (error: ConnectError) => error.code === Code.Unimplemented && /served on the gRPC port \(--port\)/.test(error.rawMessage),
    );
  });

  it("serves health checks", async () => {
    const health = createClient(Health, transports(webUrl(served.server))["Connect JSON over HTTP/1.1"]);
    assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
    assert.equal((await health.check({ service: "medsynth.v1.Translator" })).status, ServingStatus.SERVING);
    await assert.rejects(health.check({ service: "nope" }), (error: ConnectError) => error.code === Code.NotFound);
  });

  it("counts its slices in the same Prometheus counter", async () => {
    const client = createClient(Translator, transports(webUrl(served.server))["Connect JSON over HTTP/1.1"]);
    const read = async () => {
      const text = await (await fetch(`http://127.0.0.1:${served.server.metricsPort}/metrics`)).text();
      return Number(/medsynth_slices_total\{[^}]*model="tiny-mr2ct"[^}]*status="OK"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0);
    };
    const before = await read();
    await client.translateSlice(sliceCall(Direction.MR_TO_CT, mrImage()));
    assert.equal(await read(), before + 1);
  });

  it("serves the viewer page and nothing outside its folder", async () => {
    const base = webUrl(served.server);
    const root = await fetch(`${base}/`, { redirect: "manual" });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/viewer/");
    const page = await fetch(`${base}/viewer/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type")!, /^text\/html/);
    assert.match(await page.text(), /<script[^>]+src="viewer\.js"/);
    const script = await fetch(`${base}/viewer/viewer.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get("content-type")!, /^text\/javascript/);
    for (const path of ["/viewer/..%2Fpackage.json", "/viewer/../package.json", "/viewer/.hidden.js", "/viewer/nope.js"]) {
      assert.equal((await fetch(`${base}${path}`)).status, 404, path);
    }
  });
});

describe("web port: CORS", () => {
  const allowed = "https://viewer.example.org";
  const served = useTestServer(async () => ({ webPort: await freePort(), webCorsOrigins: `${allowed}, http://localhost:3000` }));
  const listModels = (origin: string | undefined) =>
    fetch(`${webUrl(served.server)}/medsynth.v1.Translator/ListModels`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(origin ? { origin } : {}) },
      body: "{}",
    });

  it("answers a preflight from a listed origin with the methods and headers Connect needs", async () => {
    const preflight = await fetch(`${webUrl(served.server)}/medsynth.v1.Translator/TranslateSlice`, {
      method: "OPTIONS",
      headers: { origin: allowed, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization,connect-protocol-version" },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), allowed);
    assert.match(preflight.headers.get("access-control-allow-methods")!, /POST/);
    assert.match(preflight.headers.get("access-control-allow-headers")!, /Connect-Protocol-Version/i);
    assert.match(preflight.headers.get("access-control-allow-headers")!, /Authorization/i);
    const call = await listModels(allowed);
    assert.equal(call.status, 200);
    assert.equal(call.headers.get("access-control-allow-origin"), allowed);
  });

  it("refuses an origin not listed, before running anything, and serves callers without an Origin", async () => {
    for (const method of ["OPTIONS", "POST"]) {
      const refused = await fetch(`${webUrl(served.server)}/medsynth.v1.Translator/ListModels`, {
        method,
        headers: { origin: "https://evil.example.com", "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      assert.equal(refused.status, 403, method);
      assert.equal(refused.headers.get("access-control-allow-origin"), null, method);
      assert.match(await refused.text(), /origin https:\/\/evil\.example\.com is not allowed.*--web-cors-origins/);
    }
    assert.equal((await listModels(undefined)).status, 200);
  });

  it("lets the port's own pages call it (same origin)", async () => {
    const own = `http://127.0.0.1:${served.server.webPort}`;
    const call = await listModels(own);
    assert.equal(call.status, 200);
    assert.equal(call.headers.get("access-control-allow-origin"), own);
  });

  it("takes only scheme://host[:port] origins in --web-cors-origins", () => {
    assert.deepEqual(parseServerConfig(["--web-cors-origins", "https://a.example,http://b.example:8080"]).webCorsOrigins, "https://a.example,http://b.example:8080");
    for (const bad of ["*", "https://a.example/", "a.example", "ftp://a.example", "https://a.example/path"]) {
      assert.throws(() => parseServerConfig(["--web-cors-origins", bad]), /--web-cors-origins=.*is not an origin/, bad);
    }
  });
});

describe("web port: tokens, message size and call limits, as on the gRPC port", () => {
  const dir = useTempDir("web-tokens");
  const token = "web-port-test-token-0123456789";
  const served = useTestServer(async () => {
    const tokensFile = join(dir.path, "tokens");
    writeFileSync(tokensFile, `${token}\n`);
    return { webPort: await freePort(), authTokensFile: tokensFile, maxMessageBytes: 64 * 1024, maxStreamsPerPeer: 1, maxDelayMs: 60_000, maxBatch: 64 };
  });
  const web = (headers: Record<string, string> = {}) =>
    createClient(Translator, createConnectTransport({ baseUrl: webUrl(served.server), httpVersion: "1.1", interceptors: [(next) => (request) => {
      for (const [key, value] of Object.entries(headers)) request.header.set(key, value);
      return next(request);
    }] }));

  it("answers UNAUTHENTICATED without a valid token, with the gRPC port's message; health needs none", async () => {
    for (const [headers, metadata] of [
      [{}, undefined],
      [{ authorization: "Bearer wrong-token-wrong-token" }, bearerMetadata("wrong-token-wrong-token")],
    ] as const) {
      const viaWeb = await connectCall(() => web(headers).listModels({}));
      const viaGrpc = await grpcCall(served.client, "listModels", {}, metadata);
      assert.ok("code" in viaWeb && "code" in viaGrpc);
      assert.equal(viaWeb.code, Code.Unauthenticated);
      assert.deepEqual(viaWeb, viaGrpc);
    }
    assert.equal((await web({ authorization: `Bearer ${token}` }).listModels({})).models.length, 3);
    const health = createClient(Health, createConnectTransport({ baseUrl: webUrl(served.server), httpVersion: "1.1" }));
    assert.equal((await health.check({ service: "" })).status, ServingStatus.SERVING);
  });

  it("answers RESOURCE_EXHAUSTED for a message over --max-message-bytes", async () => {
    const big = sliceCall(Direction.MR_TO_CT, mrImage(256, 256));
    const viaWeb = await connectCall(() => web({ authorization: `Bearer ${token}` }).translateSlice(big));
    assert.ok("code" in viaWeb);
    assert.equal(viaWeb.code, Code.ResourceExhausted, viaWeb.details);
    const viaGrpc = await grpcCall(served.client, "translateSlice", big, bearerMetadata(token));
    assert.ok("code" in viaGrpc);
    assert.equal(viaGrpc.code, status.RESOURCE_EXHAUSTED);
  });

  it("shares the per-peer call limit with the gRPC port, and an aborted request leaves the queue", async () => {
    const abort = new AbortController();
    const pending = connectCall(() => web({ authorization: `Bearer ${token}` }).translateSlice(sliceCall(Direction.MR_TO_CT, mrImage()), { signal: abort.signal }));
    await until(() => served.server.queueDepth === 1, "the web call's slice in the queue");
    // The peer's one slot is taken by the web call: a gRPC stream from the same address is refused.
    const stream = (served.client.translate as (metadata: Metadata) => ReturnType<TranslatorTestClient["translate"]>)(bearerMetadata(token));
    const refused = await collect(stream);
    assert.equal(refused.error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(refused.error!.details, /--max-streams-per-peer/);
    abort.abort();
    const aborted = await pending;
    assert.ok("code" in aborted);
    assert.equal(aborted.code, Code.Canceled);
    await until(() => served.server.queueDepth === 0, "the aborted slice to leave the queue");
    // Its slot is free again.
    assert.equal((await web({ authorization: `Bearer ${token}` }).listModels({})).models.length, 3);
  });
});

describe("web port: drain", () => {
  it("turns health NOT_SERVING, refuses new calls with UNAVAILABLE and answers the call in flight", async () => {
    const scheduler = new VirtualTimeScheduler();
    const server = await startTestServer({ webPort: await freePort(), maxDelayMs: 1000, maxBatch: 64 }, { log: createLogger("error"), scheduler });
    try {
      const baseUrl = webUrl(server);
      const client = createClient(Translator, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      const health = createClient(Health, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
      const inFlight = client.translateSlice(sliceCall(Direction.MR_TO_CT, mrImage()));
      await until(() => server.queueDepth === 1, "the slice in the queue");
      const drained = server.drain();
      assert.equal((await health.check({ service: "" })).status, ServingStatus.NOT_SERVING);
      await assert.rejects(client.translateSlice(sliceCall(Direction.MR_TO_CT, mrImage())), (error: ConnectError) =>
        error.code === Code.Unavailable && /draining/.test(error.rawMessage),
      );
      advanceTo(scheduler, scheduler.now() + 1000);
      assert.equal((await inFlight).index, 7n);
      await drained;
    } finally {
      await server.close();
    }
  });
});

describe("web port: TLS", () => {
  let pki: TestPki;
  const served = useTestServer(async () => {
    pki = makeTestPki();
    return { webPort: await freePort(), tlsCert: pki.serverCert, tlsKey: pki.serverKey };
  });

  it("speaks HTTPS with the gRPC port's certificate, HTTP/1.1 and HTTP/2 alike", async () => {
    const ca = readFileSync(pki.caCert);
    try {
      for (const [name, transport] of Object.entries(transports(webUrl(served.server, "https"), { ca }))) {
        const client = createClient(Translator, transport);
        assert.equal((await client.listModels({})).models.length, 3, name);
      }
      await assert.rejects(fetch(`${webUrl(served.server)}/viewer/`), "plaintext is not served on the TLS port");
    } finally {
      pki.remove();
    }
  });
});

