/**
 * The statuses calls end with. Every status's details are bounded (they
 * travel in an HTTP/2 header: one too large for the client's header limit
 * leaves it with no status at all). And a Translate stream whose next
 * message grpc-js cannot read (larger than --max-message-bytes, or
 * compressed beyond it or in an unknown encoding) is not ended at once, as
 * grpc-js would: the handler gets a stand-in in that message's place
 * (readInOrder) and ends the stream with its status once every slice it
 * accepted before is answered.
 */
import { ServerInterceptingCall, status, type Metadata, type ServerInterceptor, type StatusObject } from "@grpc/grpc-js";
import { standInFor, TRANSLATE_PATH, type TransportFailure } from "../contract/service.js";

/** A status as interceptors pass it on (grpc-js does not export its name for this). */
type PartialStatusObject = Pick<StatusObject, "code" | "details"> & { metadata?: Metadata | null };

/** Longest status details sent, characters. */
const MAX_STATUS_DETAILS = 1024;

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
 * If grpc-js's internals are not what this expects, the call is left as
 * grpc-js makes it (and test/stream-errors.test.ts fails).
 */
function readInOrder(call: ReadingCall): void {
  const { decoder } = call;
  const decompress = call.decompressMessage?.bind(call);
  if (typeof decoder?.write !== "function" || !decompress) return;
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
}

/**
 * Install first in `new Server({ interceptors })`: it must be given the
 * grpc-js call itself, whose reading of a Translate stream readInOrder adapts.
 */
export const statusGuard: ServerInterceptor = (method, call) => {
  if (method.path === TRANSLATE_PATH) readInOrder(call as unknown as ReadingCall);
  return new ServerInterceptingCall(call, {
    sendStatus: (sent: PartialStatusObject, pass: (status: PartialStatusObject) => void) => pass({ ...sent, details: boundedDetails(sent.details) }),
  });
};
