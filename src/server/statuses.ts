/**
 * The statuses calls end with. Every status's details are bounded (they
 * travel in an HTTP/2 header: one too large for the client's header limit
 * leaves it with no status at all). And a Translate stream whose next
 * message grpc-js cannot read (larger than --max-message-bytes, or
 * compressed beyond it or in an unknown encoding) is not ended at once, as
 * grpc-js would: the handler hears of it in that message's place (readInOrder)
 * and ends the stream with that status once every slice it accepted before
 * is answered. Should grpc-js's internals change, it hears of it a turn of
 * the event loop after grpc-js gave up, which most often comes after them.
 */
import { ServerInterceptingCall, status, type Metadata, type ServerInterceptor, type StatusObject } from "@grpc/grpc-js";
import { standInFor, TRANSLATE_PATH, type TransportFailure } from "../contract/service.js";

/** A status as interceptors pass it on (grpc-js does not export its name for this). */
type PartialStatusObject = Pick<StatusObject, "code" | "details"> & { metadata?: Metadata | null };

/** Longest status details sent, characters. */
const MAX_STATUS_DETAILS = 1024;

/** What a call's handler is told of a read failure: the status grpc-js would have ended the call with. */
export type ReadFailure = Pick<StatusObject, "code" | "details">;

interface Watched {
  failure: ReadFailure | undefined;
  listener: ((failure: ReadFailure) => void) | undefined;
}

/**
 * grpc-js's own statuses for a request it could not read (server-interceptors.ts: the message
 * length check, decompression): nothing of them has been sent yet, so they can wait.
 */
const isReadFailure = ({ code, details }: ReadFailure): boolean =>
  (code === status.RESOURCE_EXHAUSTED || code === status.UNIMPLEMENTED || code === status.INTERNAL) &&
  (details.startsWith("Received message") || details === "Failed to decompress message");

/** `details` cut to MAX_STATUS_DETAILS characters. */
function boundedDetails(details: string): string {
  return details.length <= MAX_STATUS_DETAILS ? details : `${details.slice(0, MAX_STATUS_DETAILS - 1)}…`;
}

/** The parts of grpc-js's server call (server-interceptors.ts) that read a request stream's messages. */
interface ReadingCall {
  /** Frames messages out of HTTP/2 DATA chunks. */
  decoder?: { write(data: Buffer): Buffer[] };
  /** A framed message's bytes, decompressed: a Buffer, or a promise that rejects with a status. */
  decompressMessage?(message: Buffer, encoding: string): Buffer | Promise<Buffer>;
}

/** gRPC's message prefix: a compressed flag and a 4-byte length. */
const PREFIX_BYTES = 5;

/**
 * A message grpc-js cannot read ends the call at once, and with it the
 * messages read before it that the handler has not had yet (still
 * decompressing, or waiting on admission). Here such a message is replaced
 * by a stand-in (contract standInFor) that grpc-js hands on in its place:
 * the handler hears of the failure after every message before it.
 * - Too large: grpc-js's decoder throws on the length prefix, and the
 *   messages it had read from the same DATA chunk go with the exception. It
 *   is fed up to one message's end at a time (message ends tracked from
 *   their prefixes); on the throw the chunk's earlier messages and the
 *   stand-in are handed on, and later chunks (the message's own bytes)
 *   are dropped.
 * - Not decompressible (an unknown encoding, corrupt, or too large once
 *   inflated): the stand-in is the decompressed message.
 * Returns false, and leaves the call as it is, if grpc-js's internals are
 * not what this expects.
 */
function readInOrder(call: ReadingCall): boolean {
  const { decoder } = call;
  const decompress = call.decompressMessage?.bind(call);
  if (typeof decoder?.write !== "function" || !decompress) return false;
  const write = decoder.write.bind(decoder);
  const prefix = Buffer.alloc(PREFIX_BYTES);
  let prefixLeft = PREFIX_BYTES;
  let bodyLeft = 0;
  let refused = false;
  decoder.write = (data) => {
    if (refused) return [];
    const messages: Buffer[] = [];
    let start = 0;
    const feed = (end: number) => {
      if (end > start) messages.push(...write(data.subarray(start, end)));
      start = end;
    };
    try {
      for (let at = 0; at < data.length; ) {
        if (prefixLeft > 0) {
          const take = Math.min(prefixLeft, data.length - at);
          data.copy(prefix, PREFIX_BYTES - prefixLeft, at, at + take);
          prefixLeft -= take;
          at += take;
          if (prefixLeft === 0) bodyLeft = prefix.readUInt32BE(1);
        } else {
          const take = Math.min(bodyLeft, data.length - at);
          bodyLeft -= take;
          at += take;
        }
        if (prefixLeft === 0 && bodyLeft === 0) {
          feed(at);
          prefixLeft = PREFIX_BYTES;
        }
      }
      feed(data.length);
    } catch (error) {
      refused = true;
      // As grpc-js would end the call (server-interceptors.ts, handleDataFrame).
      const standIn = standInFor({ code: status.RESOURCE_EXHAUSTED, details: (error as Error).message }, PREFIX_BYTES);
      standIn.writeUInt32BE(standIn.length - PREFIX_BYTES, 1);
      messages.push(standIn);
    }
    return messages;
  };
  call.decompressMessage = (message, encoding) => {
    const decompressed = decompress(message, encoding);
    return decompressed instanceof Promise ? decompressed.catch((failure: TransportFailure) => standInFor(failure)) : decompressed;
  };
  return true;
}

export class StatusGuard {
  private readonly watched = new WeakMap<Metadata, Watched>();

  /**
   * Install first in `new Server({ interceptors })`: it must be given the
   * grpc-js call itself, whose sendStatus grpc-js calls on a read failure.
   */
  readonly interceptor: ServerInterceptor = (method, call) => {
    const bounded = {
      sendStatus: (sent: PartialStatusObject, pass: (status: PartialStatusObject) => void) => pass({ ...sent, details: boundedDetails(sent.details) }),
    };
    if (method.path !== TRANSLATE_PATH) return new ServerInterceptingCall(call, bounded);
    const watched: Watched = { failure: undefined, listener: undefined };
    let handlerEnding = false;
    let refused = false;
    const send = call.sendStatus.bind(call);
    readInOrder(call as unknown as ReadingCall);
    call.sendStatus = (sent) => {
      if (handlerEnding || !isReadFailure(sent)) return send(sent);
      // Only the first: grpc-js fails again on every later frame of a message it refused.
      if (refused) return;
      refused = true;
      const failure = { code: sent.code, details: sent.details };
      // Messages read before the failing one may still be on their way up (grpc-js decodes each as a
      // promise and hands them over one read at a time, through process.nextTick): the handler hears of
      // the failure after them, so that it answers them first.
      setImmediate(() => {
        watched.failure = failure;
        watched.listener?.(failure);
      });
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            this.watched.set(metadata, watched);
            pass(metadata);
          },
        }),
      sendStatus: (sent, pass) => {
        handlerEnding = true;
        bounded.sendStatus(sent, pass);
      },
    });
  };

  /**
   * For a Translate handler: `listener` hears of a read failure of the call
   * whose metadata this is (at once if it happened already); the handler
   * then ends the call with that status, after its answers.
   */
  onReadFailure(metadata: Metadata, listener: (failure: ReadFailure) => void): void {
    const watched = this.watched.get(metadata);
    if (!watched) return;
    watched.listener = listener;
    if (watched.failure) listener(watched.failure);
  }
}
