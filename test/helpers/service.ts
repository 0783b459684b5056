import assert from "node:assert/strict";
import { after, before } from "node:test";
import { create } from "@bufbuild/protobuf";
import { credentials, makeGenericClientConstructor, type Client, type ClientDuplexStream, type ClientReadableStream } from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/contract/service.js";
import { Health, type HealthCheckRequest, type HealthCheckResponse } from "../../src/gen/grpc/health/v1/health_pb.js";
import {
  Direction,
  Encoding,
  ImageSchema,
  PixelType,
  SliceSchema,
  StreamOptionsSchema,
  Translator,
  TranslateRequestSchema,
  type Image,
  type Slice,
  type TranslateRequest,
  type TranslateResponse,
} from "../../src/gen/medsynth/v1/translator_pb.js";
import { syntheticHead } from "../../src/cli/synthetic-head.js";
import { createClient, type TranslatorClient } from "../../src/client/client.js";
import { startServer, type RunningServer, type ServerHooks } from "../../src/server/server.js";
import type { ServerConfig } from "../../src/server/config.js";
import { createLogger, type Logger } from "../../src/server/log.js";

/** Tiny random-weight generators (64², made by training/) so tests run in seconds. */
export const TINY_MODELS = "test/fixtures/models";

/** A real server on an ephemeral loopback port, quiet unless something fails (or logging where `hooks` say). */
export function startTestServer(overrides: Partial<ServerConfig> = {}, hooks: ServerHooks = {}): Promise<RunningServer> {
  return startServer(
    { host: "127.0.0.1", port: 0, metricsPort: 0, modelsDir: TINY_MODELS, workers: 1, ...overrides },
    { log: createLogger("error"), ...hooks },
  );
}

export interface TestServer {
  /** The running server, from the suite's `before` on. */
  readonly server: RunningServer;
  /** A grpc-js Translator client of it, made on first use. */
  readonly client: TranslatorTestClient;
  /** A client-library client of it, made on first use. */
  readonly library: TranslatorClient;
}

/**
 * A real test server for the tests of the enclosing `describe`: started in
 * its `before`, closed (with the clients made of it) in its `after`.
 * `config` may be a function (async too), for values made at start, such as a free port.
 */
export function useTestServer(config: Partial<ServerConfig> | (() => Partial<ServerConfig> | Promise<Partial<ServerConfig>>) = {}, hooks?: ServerHooks): TestServer {
  let server: RunningServer | undefined;
  let client: TranslatorTestClient | undefined;
  let library: TranslatorClient | undefined;
  before(async () => {
    server = await startTestServer(typeof config === "function" ? await config() : config, hooks);
  });
  after(async () => {
    client?.close();
    library?.close();
    await server?.close();
  });
  const running = (): RunningServer => server ?? assert.fail("the test server has not started");
  return {
    get server() {
      return running();
    },
    get client() {
      return (client ??= translatorClient(running().address));
    },
    get library() {
      return (library ??= createClient(running().address));
    },
  };
}

/** A logger that keeps its JSON lines, parsed, in `lines`. */
export function recordingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  return { log: createLogger("debug", (line) => lines.push(JSON.parse(line))), lines };
}

const TranslatorClient = makeGenericClientConstructor(serviceDefinition(Translator), "Translator");

export interface TranslatorTestClient extends Client {
  translate(): ClientDuplexStream<TranslateRequest, TranslateResponse>;
  [method: string]: unknown;
}

export function translatorClient(address: string): TranslatorTestClient {
  return new TranslatorClient(address, credentials.createInsecure()) as unknown as TranslatorTestClient;
}

const HealthClient = makeGenericClientConstructor(serviceDefinition(Health), "Health");

/** For Watch streams; a single Check is checkHealth() (src/cli/healthcheck.ts). */
export interface HealthTestClient extends Client {
  watch(request: HealthCheckRequest): ClientReadableStream<HealthCheckResponse>;
}

/** A plain grpc-js client of grpc.health.v1.Health, from the same descriptors the server serves. */
export function healthClient(address: string): HealthTestClient {
  return new HealthClient(address, credentials.createInsecure()) as unknown as HealthTestClient;
}

export function rawImage(pixels: ArrayLike<number>, width: number, height: number, pixelType: PixelType, intercept = 0): Image {
  const bytes = new Uint8Array(pixels.length * (pixelType === PixelType.FLOAT32 ? 4 : pixelType === PixelType.UINT8 ? 1 : 2));
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < pixels.length; i++) {
    const v = pixels[i];
    if (pixelType === PixelType.INT16) view.setInt16(2 * i, v, true);
    else if (pixelType === PixelType.UINT16) view.setUint16(2 * i, v, true);
    else if (pixelType === PixelType.FLOAT32) view.setFloat32(4 * i, v, true);
    else view.setUint8(i, v);
  }
  return create(ImageSchema, { encoding: Encoding.RAW, data: bytes, width, height, pixelType, rescaleSlope: 1, rescaleIntercept: intercept });
}

/** An MR-like slice (uint16 scanner units). */
export const mrImage = (width = 80, height = 96) =>
  rawImage(syntheticHead(width, height, { outside: 0, inside: 600, core: 900 }), width, height, PixelType.UINT16);

/** A CT-like slice: int16 stored HU + 1024, intercept −1024. */
export const ctImage = (width = 80, height = 96) =>
  rawImage(syntheticHead(width, height, { outside: 0, inside: 1024 + 35, core: 1024 + 900 }), width, height, PixelType.INT16, -1024);

export const options = (direction: Direction, extra: { model?: string; outputEncoding?: Encoding; foregroundMetrics?: boolean } = {}) =>
  create(TranslateRequestSchema, { kind: { case: "options", value: create(StreamOptionsSchema, { direction, ...extra }) } });

export const sliceRequest = (index: number, image: Image | undefined, reference?: Image) =>
  create(TranslateRequestSchema, {
    kind: { case: "slice", value: create(SliceSchema, { index: BigInt(index), image, reference }) as Slice },
  });

/** Everything a stream answers, and how it ended. */
export function collect(
  call: ClientDuplexStream<TranslateRequest, TranslateResponse>,
): Promise<{ responses: TranslateResponse[]; error?: { code: number; details: string } }> {
  const responses: TranslateResponse[] = [];
  return new Promise((resolve) => {
    call.on("data", (r: TranslateResponse) => responses.push(r));
    call.on("error", (error: { code: number; details: string }) => resolve({ responses, error }));
    call.on("end", () => resolve({ responses }));
  });
}

/** Reads a little-endian float32 RAW image. */
export function floats(image: Image): Float32Array {
  return new Float32Array(Uint8Array.from(image.data).buffer);
}

/** A Prometheus sample's value from a server's /metrics (summed over the label sets that include `labels`). */
export async function scrape(metricsPort: number, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .filter((line) => wanted.every((label) => line.includes(label)))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}
