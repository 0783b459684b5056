/**
 * The gRPC services as grpc-js sees them, built from the protobuf-es
 * descriptors: method definitions for clients and `Server.addService`, and
 * the handler types a server implements (the counterpart of connect-es's
 * `ServiceImpl<Desc>`), so that a renamed or retyped RPC breaks the build.
 */
import type {
  handleBidiStreamingCall,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  MethodDefinition,
  Server,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { create, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { Translator } from "../gen/medsynth/v1/translator_pb.js";
import { fromGrpcMessage, toBinaryOnce } from "./wire.js";

type Method = GenServiceMethods[string];
type Input<M extends Method> = MessageShape<M["input"]>;
type Output<M extends Method> = MessageShape<M["output"]>;

/** grpc-js method definitions keyed by the generated service's local method names. */
export type ServiceDefinitionOf<T extends GenServiceMethods> = {
  [K in keyof T]: MethodDefinition<Input<T[K]>, Output<T[K]>>;
};

/** The grpc-js handler of one method, by its kind. */
type HandlerOf<M extends Method> = M["methodKind"] extends "unary"
  ? handleUnaryCall<Input<M>, Output<M>>
  : M["methodKind"] extends "server_streaming"
    ? handleServerStreamingCall<Input<M>, Output<M>>
    : M["methodKind"] extends "client_streaming"
      ? handleClientStreamingCall<Input<M>, Output<M>>
      : handleBidiStreamingCall<Input<M>, Output<M>>;

/** What a server implements for `service`: one typed handler per RPC, named as the descriptor names it. */
export type ServiceImpl<S> = S extends GenService<infer T> ? { [K in keyof T]: HandlerOf<T[K]> } : never;

const serializer =
  <D extends DescMessage>(schema: D) =>
  (message: MessageShape<D>): Buffer => {
    const bytes = toBinaryOnce(schema, message);
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };

const deserializer =
  <D extends DescMessage>(schema: D) =>
  (bytes: Buffer): MessageShape<D> =>
    fromGrpcMessage(schema, bytes);

const unreadable = new WeakMap<object, string>();

/**
 * Why a request a server received on a request stream could not be parsed,
 * or undefined if it was. Such a request reaches the handler as an empty
 * message (see addService), so the handler, not grpc-js, ends the call, and
 * can answer what it accepted before.
 */
export function unreadableReason(request: object): string | undefined {
  return unreadable.get(request);
}

/** A message the transport could not read (over the size limit, or not decompressible), as its status says. */
export interface TransportFailure {
  code: number;
  details: string;
}

/** Stand-ins' memory, and what each stands for. */
const standIns = new WeakMap<ArrayBufferLike, TransportFailure>();
const failed = new WeakMap<object, TransportFailure>();

/**
 * Bytes to put where a request stream's message could not be read: the
 * deserializer turns them into an empty message marked with `failure`
 * (transportFailureOf), which reaches the handler in that message's place,
 * after every message read before it. `headroom` bytes come first (a
 * caller's framing; the deserializer is given what follows them).
 */
export function standInFor(failure: TransportFailure, headroom = 0): Buffer {
  const bytes = Buffer.from(new ArrayBuffer(headroom + 1));
  standIns.set(bytes.buffer, failure);
  return bytes;
}

/** The transport failure a request stands in for (standInFor), or undefined for a message that was read. */
export function transportFailureOf(request: object): TransportFailure | undefined {
  return failed.get(request);
}

const tolerantDeserializer =
  <D extends DescMessage>(schema: D) =>
  (bytes: Buffer): MessageShape<D> => {
    const failure = standIns.get(bytes.buffer);
    if (failure) {
      const empty = create(schema);
      failed.set(empty, failure);
      return empty;
    }
    try {
      return fromGrpcMessage(schema, bytes);
    } catch (error) {
      const empty = create(schema);
      unreadable.set(empty, (error as Error).message);
      return empty;
    }
  };

/** The HTTP/2 path a method is called at, `/package.Service/Method`: what interceptors see as `method.path`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The bidirectional Translate stream's path: the server's stream limits, admission and status guard single it out. */
export const TRANSLATE_PATH = methodPath(Translator.method.translate);

function methodDefinition(method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: methodPath(method),
    originalName: method.localName,
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input) as (value: unknown) => Buffer,
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output) as (value: unknown) => Buffer,
    responseDeserialize: deserializer(method.output),
  };
}

/**
 * A grpc-js service definition built from protobuf-es descriptors, so client
 * and server (de)serialize with protobuf-es (toBinaryOnce, fromGrpcMessage)
 * and never load .proto files at run time. Usable with `Server.addService` as well as with a client.
 */
export function serviceDefinition<T extends GenServiceMethods>(service: GenService<T>): ServiceDefinitionOf<T> {
  return Object.fromEntries(
    service.methods.map((method) => [method.localName, methodDefinition(method)]),
  ) as ServiceDefinitionOf<T>;
}

type AnyMethod = MethodDefinition<unknown, unknown>;

/**
 * `server.addService` with handlers checked against the descriptor. Request
 * streams take unreadable messages as marked empty ones (unreadableReason);
 * `adapt` may wrap each method's definition (e.g. to time its codec).
 */
export function addService<T extends GenServiceMethods>(
  server: Server,
  service: GenService<T>,
  implementation: ServiceImpl<GenService<T>>,
  adapt: (method: AnyMethod) => AnyMethod = (method) => method,
): void {
  const definition = Object.fromEntries(
    service.methods.map((method) => {
      const base = methodDefinition(method);
      return [method.localName, adapt(base.requestStream ? { ...base, requestDeserialize: tolerantDeserializer(method.input) } : base)];
    }),
  );
  // grpc-js types the map loosely; ServiceImpl above is the check.
  server.addService(definition, implementation as unknown as UntypedServiceImplementation);
}
