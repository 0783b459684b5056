/**
 * The web port (--web-port): the Translator service for browsers and plain
 * HTTP clients over the Connect protocol, gRPC-Web and gRPC on one port
 * (connect-node), grpc.health.v1 Check, and the viewer page at /viewer.
 * Browsers cannot stream requests, so this port serves the unary calls
 * (TranslateSlice, ListModels); the bidi Translate stream stays on the
 * grpc-js port. Everything a call goes through is the gRPC port's: the same
 * TranslatorService (one answer path), bearer tokens, call slots, message
 * size limit and TLS files.
 */
import { readFile } from "node:fs/promises";
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import { createSecureServer, createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { extname, join } from "node:path";
import { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, cors, createContextKey, createContextValues, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Health, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";
import { Translator, type SliceResult } from "../gen/medsynth/v1/translator_pb.js";
import type { HealthService } from "./health.js";
import type { CallSlots } from "./limits.js";
import type { Logger } from "./log.js";
import { bearerProblem, type AuthTokens, type ServerTls } from "./security.js";
import { isStatus, type TranslatorService } from "./translator.js";

export interface WebPortOptions {
  host: string;
  /** The port to bind (0 picks a free one). */
  port: number;
  /** Origins (scheme://host[:port]) whose pages may call this port; the port's own origin always may. */
  corsOrigins: readonly string[];
  /** Largest request or response message, bytes (--max-message-bytes). */
  maxMessageBytes: number;
}

export interface WebPortDeps {
  translator: TranslatorService;
  health: HealthService;
  slots: CallSlots;
  tokens: AuthTokens | undefined;
  tls: ServerTls | undefined;
  log: Logger;
  /** Folder of the built viewer page (default: dist/viewer beside this module's dist/src). */
  viewerDir?: string;
}

export interface WebPort {
  readonly port: number;
  /** Stops accepting connections and lets open requests finish; resolves once every connection is closed. */
  close(): Promise<void>;
  /** Stops listening and ends every open connection now. */
  destroy(): void;
}

/** This module runs as dist/src/server/web.js; esbuild writes the viewer to dist/viewer. */
const DEFAULT_VIEWER_DIR = fileURLToPath(new URL("../../viewer/", import.meta.url));

const PEER = createContextKey("unknown", { description: "client IP address" });

type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = ServerResponse | Http2ServerResponse;

/** Code and gRPC status share their numbers (Code.InvalidArgument = status.INVALID_ARGUMENT = 3). */
const connectError = (code: number, details: string) => new ConnectError(details, code as Code);

/** Resolves with the observable's first value; aborting unsubscribes (the slice leaves the queue) and rejects. */
function firstAnswer(translator: TranslatorService, request: Parameters<TranslatorService["translateSlice"]>[0], signal: AbortSignal): Promise<SliceResult> {
  return new Promise((resolve, reject) => {
    const subscription = translator.translateSlice(request).subscribe((answer) =>
      isStatus(answer) ? reject(connectError(answer.code, answer.details)) : resolve(answer),
    );
    signal.addEventListener(
      "abort",
      () => {
        subscription.unsubscribe();
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

function routes(deps: WebPortDeps) {
  return (router: ConnectRouter) => {
    router.service(Translator, {
      // eslint-disable-next-line require-yield -- refuses before reading anything
      async *translate() {
        throw new ConnectError(
          "Translate (a bidirectional stream) is served on the gRPC port (--port); browsers cannot stream requests, so this port serves TranslateSlice and ListModels",
          Code.Unimplemented,
        );
      },
      translateSlice: (request, context) => firstAnswer(deps.translator, request, context.signal),
      listModels: () => deps.translator.listModels(),
    });
    router.service(Health, {
      check: (request) => {
        const current = deps.health.status(request.service);
        if (current === undefined) throw new ConnectError(`unknown service "${request.service}"`, Code.NotFound);
        return create(HealthCheckResponseSchema, { status: current });
      },
    });
  };
}

const isHealth = (context: { service: { typeName: string } }) => context.service.typeName === Health.typeName;

/** Bearer tokens, checked before the request body is read; health checks need none, as on the gRPC port. */
function tokenGate(tokens: AuthTokens) {
  return (context: HandlerContext) => {
    if (isHealth(context)) return;
    const header = context.requestHeader.get("authorization");
    const problem = bearerProblem(header === null ? [] : [header], tokens);
    if (problem) throw new ConnectError(problem, Code.Unauthenticated);
  };
}

/** Holds one of the shared call slots for the length of a call (health checks take none). */
function slotInterceptor(slots: CallSlots): Interceptor {
  return (next) => async (request) => {
    if (isHealth(request)) return next(request);
    const slot = slots.take(request.contextValues.get(PEER));
    if ("refused" in slot) throw new ConnectError(slot.refused, Code.ResourceExhausted);
    try {
      return await next(request);
    } finally {
      slot.release();
    }
  };
}

/** The request's scheme://host[:port], as a browser on this port's own pages would send it in Origin. */
function ownOrigin(request: NodeRequest, tls: boolean): string | undefined {
  const host = "authority" in request && request.authority ? request.authority : request.headers.host;
  return host ? `${tls ? "https" : "http"}://${host}` : undefined;
}

const ALLOWED_HEADERS = [...cors.allowedHeaders, "Authorization"].join(", ");

/**
 * CORS: a request from a page of an origin in `allowed` (or of this port)
 * gets the Access-Control headers; one from any other origin is refused with
 * 403 before anything runs. Requests without an Origin (curl, servers) pass.
 * Returns true when the request was answered here.
 */
function applyCors(request: NodeRequest, response: NodeResponse, allowed: ReadonlySet<string>, tls: boolean): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  if (!allowed.has(origin) && origin !== ownOrigin(request, tls)) {
    response.writeHead(403, { "content-type": "text/plain; charset=utf-8", vary: "Origin" });
    response.end(`origin ${origin} is not allowed to call this port; add it to --web-cors-origins\n`);
    return true;
  }
  response.setHeader("access-control-allow-origin", origin);
  response.setHeader("vary", "Origin");
  response.setHeader("access-control-expose-headers", cors.exposedHeaders.join(", "));
  if (request.method !== "OPTIONS") return false;
  response.writeHead(204, {
    "access-control-allow-methods": cors.allowedMethods.join(", "),
    "access-control-allow-headers": ALLOWED_HEADERS,
    "access-control-max-age": "7200",
  });
  response.end();
  return true;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
};

/** GET / and /viewer[/...]: the viewer's files (flat folder, no path outside it); true when answered here. */
async function serveViewer(request: NodeRequest, response: NodeResponse, dir: string): Promise<boolean> {
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const path = (request.url ?? "/").split("?")[0];
  if (path === "/" || path === "/viewer") {
    response.writeHead(302, { location: "/viewer/" });
    response.end();
    return true;
  }
  const match = /^\/viewer\/([\w.-]*)$/.exec(path);
  if (!match) return false;
  const name = match[1] || "index.html";
  const type = CONTENT_TYPES[extname(name)];
  let body: Buffer | undefined;
  if (type && !name.startsWith(".")) body = await readFile(join(dir, name)).catch(() => undefined);
  if (!body) {
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    response.end(name === "index.html" ? "the viewer is not built; run `npm run build`\n" : `no file ${name}\n`);
    return true;
  }
  response.writeHead(200, { "content-type": type, "content-length": body.length, "cache-control": "no-cache", "x-content-type-options": "nosniff" });
  if (request.method === "HEAD") response.end();
  else response.end(body);
  return true;
}

/**
 * The socket as a plain Duplex that first replays `first`: node:http2 reads
 * a net.Socket through its native handle, which would skip bytes already read
 * in JavaScript, but wraps any other stream in JavaScript.
 */
function replaying(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read: () => void socket.resume(),
    write: (chunk, encoding, done) => void socket.write(chunk, encoding, done),
    final: (done) => {
      socket.end();
      done();
    },
    destroy: (error, done) => {
      socket.destroy();
      done(error);
    },
  });
  duplex.push(first);
  socket.on("data", (chunk) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  socket.on("error", (error) => duplex.destroy(error));
  return duplex;
}

/** The start of every HTTP/2 connection made with prior knowledge (as gRPC clients make them in plaintext). */
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0");

/**
 * One listener for HTTP/1.1 (Connect, gRPC-Web, the page) and HTTP/2 (the
 * same, plus gRPC). With TLS, ALPN picks the protocol; in plaintext the
 * first bytes do: the HTTP/2 preface, or else HTTP/1.1. `peerOf` gives a
 * request's client address either way.
 */
function listener(handler: (request: NodeRequest, response: NodeResponse) => void, tls: ServerTls | undefined) {
  const sessions = new Set<Http2Session>();
  const peers = new WeakMap<Http2Session, string>();
  let connecting: Socket | undefined;
  const track = (session: Http2Session) => {
    sessions.add(session);
    const address = (connecting ?? session.socket).remoteAddress;
    if (address) peers.set(session, address);
    session.once("close", () => sessions.delete(session));
  };
  const peerOf = (request: NodeRequest): string =>
    ("stream" in request ? peers.get(request.stream.session!) : undefined) ?? request.socket?.remoteAddress ?? "unknown";
  if (tls) {
    const server = createSecureServer(
      { allowHTTP1: true, cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: tls.clientCa !== undefined, rejectUnauthorized: tls.clientCa !== undefined },
      handler,
    );
    server.on("session", track);
    return { server: server as NetServer, sessions, peerOf, http1: undefined };
  }
  const http1 = createHttp1Server(handler);
  const http2 = createHttp2Server(handler);
  http2.on("session", track);
  const server = createNetServer((socket: Socket) => {
    socket.once("data", (first: Buffer) => {
      socket.pause();
      const length = Math.min(first.length, H2_PREFACE.length);
      if (first.subarray(0, length).equals(H2_PREFACE.subarray(0, length))) {
        // The session is made synchronously by this emit; track() reads the real socket's address from `connecting`.
        connecting = socket;
        http2.emit("connection", replaying(socket, first));
        connecting = undefined;
      } else {
        socket.unshift(first);
        http1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  return { server, sessions, peerOf, http1 };
}

/** Binds the web port. */
export async function startWebPort(options: WebPortOptions, deps: WebPortDeps): Promise<WebPort> {
  const allowed = new Set(options.corsOrigins);
  const viewerDir = deps.viewerDir ?? DEFAULT_VIEWER_DIR;
  const { server, sessions, peerOf, http1 } = listener((request, response) => handler(request, response), deps.tls);
  const rpc = connectNodeAdapter({
    routes: routes(deps),
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    requestGate: deps.tokens ? tokenGate(deps.tokens) : undefined,
    interceptors: [slotInterceptor(deps.slots)],
    contextValues: (request) => createContextValues().set(PEER, peerOf(request)),
  });
  let closing = false;
  // A connection turns idle just after its response finishes, hence the next turn of the loop.
  const closeIdleSoon = () => setImmediate(() => http1?.closeIdleConnections());
  const handler = (request: NodeRequest, response: NodeResponse) => {
    // Once closing, HTTP/1.1 connections end after their response instead of idling on.
    if (closing && "shouldKeepAlive" in response) response.shouldKeepAlive = false;
    response.once("finish", () => {
      if (closing) closeIdleSoon();
    });
    if (applyCors(request, response, allowed, deps.tls !== undefined)) return;
    serveViewer(request, response, viewerDir).then(
      (served) => {
        if (!served) rpc(request, response);
      },
      (error: Error) => {
        deps.log.error("web request failed", { path: request.url, error: error.message });
        if (!response.headersSent) response.writeHead(500);
        response.end();
      },
    );
  };
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        server.close(() => resolve());
        // Idle keep-alive connections would hold the close forever; busy ones finish their requests first.
        http1?.closeIdleConnections();
        closeIdleSoon();
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        for (const session of sessions) session.close();
      }),
    destroy: () => {
      closing = true;
      if (server.listening) server.close();
      for (const socket of sockets) socket.destroy();
    },
  };
}
