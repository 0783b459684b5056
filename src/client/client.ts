import { once } from "node:events";
import { isIPv4, isIPv6 } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ListModelsRequestSchema,
  SliceSchema,
  StreamOptionsSchema,
  TranslateRequestSchema,
  TranslateSliceRequestSchema,
  Translator,
  type Direction,
  type Encoding,
  type ModelInfo,
  type SliceError,
  type SliceResult,
  type TranslateRequest,
  type TranslateResponse,
} from "../gen/medsynth/v1/translator_pb.js";
import { bearerMetadata, channelCredentials, type ClientTlsFiles } from "../contract/credentials.js";
import { directionOf, type DirectionName } from "../contract/direction.js";
import { DEFAULT_WINDOW, MAX_MESSAGE_BYTES } from "../contract/limits.js";
import { serviceDefinition } from "../contract/service.js";
export { isSliceError } from "../contract/slice-errors.js";
import { toTranslatorError } from "./errors.js";

export interface ClientOptions {
  /** TLS: `true` for the system roots, or PEM file paths (ca, and cert + key for mTLS); default plaintext (loopback, dev). */
  tls?: boolean | ClientTlsFiles;
  /** Channel credentials built elsewhere; wins over `tls`. */
  credentials?: grpc.ChannelCredentials;
  /** Sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** Deadline of each unary call and of each whole stream, in ms; default none. */
  deadlineMs?: number;
  /** Slices out per stream (sent, and not yet answered and taken); default DEFAULT_WINDOW. */
  window?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export interface TranslateOptions {
  direction: Direction | DirectionName;
  /** Model name as ListModels gives it; default: the direction's default model. */
  model?: string;
  /** Encoding of the synthetic images; default: the input's (RAW comes back as float32 physical values). */
  outputEncoding?: Encoding;
  /** Also compute Quality inside the head mask (SliceResult.foregroundQuality). */
  foregroundMetrics?: boolean;
  /** Overrides ClientOptions.window for this stream. */
  window?: number;
  /** Aborting cancels the stream, or the TranslateSlice call: it fails with TranslatorError CANCELLED. */
  signal?: AbortSignal;
}

/** One slice as the caller builds it: `{ index: 0n, image: { encoding, data, ... }, reference? }`. */
export type SliceInit = MessageInitShape<typeof SliceSchema>;

export interface TranslatorClient {
  /** The grpc target the channel resolves, e.g. "ipv4:127.0.0.1:50051,127.0.0.1:50052". */
  readonly target: string;
  /**
   * Streams `slices` to the service and yields one SliceResult or SliceError
   * per slice, in order. At most `window` slices are out (sent, and not yet
   * answered and taken by the caller), and the next slice is read from
   * `slices` only when it can be sent, so a slow service or a slow caller
   * slows the reading instead of filling memory.
   * Throws TranslatorError when the stream fails as a whole.
   */
  translate(options: TranslateOptions, slices: AsyncIterable<SliceInit> | Iterable<SliceInit>): AsyncIterable<SliceResult | SliceError>;
  /** One slice; a bad slice rejects with the TranslatorError its SliceError would carry. */
  translateSlice(options: TranslateOptions, slice: SliceInit): Promise<SliceResult>;
  listModels(): Promise<ModelInfo[]>;
  /** Resolves once a connection is up; rejects after `timeoutMs`. */
  waitForReady(timeoutMs?: number): Promise<void>;
  close(): void;
}

/**
 * The grpc target for one or several servers. Several `host:port` addresses
 * (a list, or one string with commas) must be IP literals and become one
 * `ipv4:`/`ipv6:` target; the channel's round_robin policy then spreads
 * calls over them. A single target passes through, so a `dns:///name:port`
 * that resolves to several servers is spread the same way.
 */
export function resolveTarget(target: string | readonly string[]): string {
  const addresses = (typeof target === "string" ? target.split(",") : [...target]).map((a) => a.trim()).filter(Boolean);
  if (addresses.length === 0) throw new Error("no target given; use host:port");
  if (addresses.length === 1) return addresses[0];
  const hosts = addresses.map((address) => {
    const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(address);
    if (!match) throw new Error(`"${address}" is not host:port`);
    return match[1];
  });
  if (hosts.every((host) => isIPv4(host))) return `ipv4:${addresses.join(",")}`;
  if (hosts.every((host) => isIPv6(host))) return `ipv6:${addresses.join(",")}`;
  throw new Error(
    `several targets must all be IPv4 or all IPv6 addresses (got ${addresses.join(", ")}); ` +
      "for host names give one dns:///name:port target that resolves to every server",
  );
}

function credentialsOf(options: ClientOptions): grpc.ChannelCredentials {
  if (options.credentials) return options.credentials;
  if (!options.tls) return grpc.credentials.createInsecure();
  return channelCredentials(options.tls === true ? {} : options.tls);
}

/** Counts slices in flight: `acquire` waits while `size` are out, and rejects once `signal` aborts. */
function creditGate(size: number) {
  let inFlight = 0;
  let wake: (() => void) | undefined;
  return {
    async acquire(signal: AbortSignal): Promise<void> {
      while (inFlight >= size) {
        signal.throwIfAborted();
        await new Promise<void>((resolve) => {
          const done = () => {
            signal.removeEventListener("abort", done);
            resolve();
          };
          wake = done;
          signal.addEventListener("abort", done, { once: true });
        });
      }
      signal.throwIfAborted();
      inFlight++;
    },
    release(): void {
      inFlight--;
      const resolve = wake;
      wake = undefined;
      resolve?.();
    },
  };
}

/**
 * A client for the medsynth Translator service.
 *
 * @example
 * const client = createClient("127.0.0.1:50051");
 * const result = await client.translateSlice(
 *   { direction: "mr2ct" },
 *   { index: 0n, image: { encoding: Encoding.PNG, data: pngBytes } },
 * );
 * // result.image: synthetic CT (PNG, HU = stored × rescaleSlope + rescaleIntercept)
 * client.close();
 */
export function createClient(target: string | readonly string[], options: ClientOptions = {}): TranslatorClient {
  const resolved = resolveTarget(target);
  const definition = serviceDefinition(Translator);
  const channel = new grpc.Client(resolved, credentialsOf(options), {
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    ...options.channelOptions,
  });

  // Metadata rather than call credentials: grpc-js refuses those on plaintext channels (loopback, dev).
  const metadata = (): grpc.Metadata => (options.token ? bearerMetadata(options.token) : new grpc.Metadata());
  const callOptions = (): grpc.CallOptions =>
    options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  const streamOptions = (translate: TranslateOptions) =>
    create(StreamOptionsSchema, {
      direction: directionOf(translate.direction),
      model: translate.model ?? "",
      outputEncoding: translate.outputEncoding,
      foregroundMetrics: translate.foregroundMetrics ?? false,
    });

  function unary<I, O>(method: grpc.MethodDefinition<I, O>, request: I, signal?: AbortSignal): Promise<O> {
    return new Promise((resolve, reject) => {
      const onAbort = () => call.cancel();
      const call = channel.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        metadata(),
        callOptions(),
        (error, response) => {
          signal?.removeEventListener("abort", onAbort);
          if (error || !response) reject(toTranslatorError(error));
          else resolve(response);
        },
      );
      if (signal?.aborted) call.cancel();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async function* translate(
    translateOptions: TranslateOptions,
    slices: AsyncIterable<SliceInit> | Iterable<SliceInit>,
  ): AsyncGenerator<SliceResult | SliceError> {
    const method = definition.translate;
    const call = channel.makeBidiStreamRequest<TranslateRequest, TranslateResponse>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      metadata(),
      callOptions(),
    );
    const stop = new AbortController();
    const onAbort = () => call.cancel();
    if (translateOptions.signal?.aborted) call.cancel();
    translateOptions.signal?.addEventListener("abort", onAbort, { once: true });
    const credits = creditGate(translateOptions.window ?? options.window ?? DEFAULT_WINDOW);

    const send = async (request: TranslateRequest): Promise<void> => {
      // write() returning false means the HTTP/2 stream is full: wait for it to drain.
      if (!call.write(request)) await once(call, "drain", { signal: stop.signal });
    };
    // Only the caller's own source's failure is rethrown as it is; the stream's failures reach the read loop as TranslatorErrors.
    let sourceError: unknown;
    const fromSource = async <T>(step: () => T | Promise<T>): Promise<T> => {
      try {
        return await step();
      } catch (error) {
        if (!stop.signal.aborted) sourceError = error;
        throw error;
      }
    };
    void (async () => {
      await send(create(TranslateRequestSchema, { kind: { case: "options", value: streamOptions(translateOptions) } }));
      const source = Symbol.asyncIterator in slices ? slices[Symbol.asyncIterator]() : slices[Symbol.iterator]();
      try {
        // A place in the window first, then the next slice: the source is read only when it can be sent.
        for (;;) {
          await credits.acquire(stop.signal);
          const next = await fromSource(() => source.next());
          if (next.done) break;
          await send(create(TranslateRequestSchema, { kind: { case: "slice", value: create(SliceSchema, next.value) } }));
        }
      } finally {
        await fromSource(() => source.return?.());
      }
      call.end();
    })().catch(() => {
      // The input failed (or the stream did): cancel, so the read loop ends too.
      if (!stop.signal.aborted) call.cancel();
    });

    try {
      for await (const response of call as AsyncIterable<TranslateResponse>) {
        // The place frees once the caller has taken the answer, so a slow caller slows the sending too.
        if (response.kind.case !== undefined) yield response.kind.value;
        credits.release();
      }
    } catch (error) {
      if (sourceError !== undefined) throw sourceError;
      throw toTranslatorError(error);
    } finally {
      stop.abort();
      translateOptions.signal?.removeEventListener("abort", onAbort);
      // Not awaiting the writer: it may be parked on a slow source; it stops at its next step.
      call.cancel();
    }
    if (sourceError !== undefined) throw sourceError;
  }

  return {
    target: resolved,
    translate,
    translateSlice: (translateOptions, slice) =>
      unary(
        definition.translateSlice,
        create(TranslateSliceRequestSchema, { options: streamOptions(translateOptions), slice }),
        translateOptions.signal,
      ),
    listModels: async () => (await unary(definition.listModels, create(ListModelsRequestSchema))).models,
    waitForReady: (timeoutMs = 10_000) =>
      new Promise((resolve, reject) =>
        channel.waitForReady(Date.now() + timeoutMs, (error) =>
          error ? reject(new Error(`no server ready at ${resolved} within ${timeoutMs} ms (${error.message})`)) : resolve(),
        ),
      ),
    close: () => channel.close(),
  };
}
