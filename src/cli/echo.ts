/**
 * A bare grpc-js bidi echo: the transport's own ceiling, for `bench
 * --ceiling` to hold the service against. Messages are opaque bytes (no
 * protobuf, no copies beyond grpc-js's own); the server writes back each
 * message it reads.
 */
import { once } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { MAX_MESSAGE_BYTES } from "../contract/limits.js";
import type { StreamOpener } from "./loadgen.js";

const same = (bytes: Buffer): Buffer => bytes;

const ECHO: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/medsynth.bench.Echo/Echo",
  requestStream: true,
  responseStream: true,
  requestSerialize: same,
  requestDeserialize: same,
  responseSerialize: same,
  responseDeserialize: same,
};

const CHANNEL_OPTIONS = { "grpc.max_receive_message_length": MAX_MESSAGE_BYTES, "grpc.max_send_message_length": MAX_MESSAGE_BYTES };

export interface EchoServer {
  /** host:port on loopback. */
  readonly address: string;
  close(): Promise<void>;
}

/** An echo server on a free loopback port, in this process. */
export async function startEchoServer(): Promise<EchoServer> {
  const server = new grpc.Server(CHANNEL_OPTIONS);
  server.addService({ echo: ECHO }, {
    echo: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (message: Buffer) => call.write(message));
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
}

/** Echo streams to `target` sending `message` each time, as a StreamOpener; close() closes the channel. */
export function echoStreams(target: string, message: Uint8Array): { open: StreamOpener; close(): void } {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const bytes = Buffer.from(message.buffer, message.byteOffset, message.byteLength);
  async function* open(window: number, indices: AsyncIterable<bigint>) {
    const call = client.makeBidiStreamRequest(ECHO.path, same, same, new grpc.Metadata(), {});
    const answers = (call as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const source = indices[Symbol.asyncIterator]();
    let out = 0;
    let sending = true;
    try {
      for (;;) {
        while (sending && out < window) {
          if ((await source.next()).done) {
            sending = false;
            call.end();
          } else {
            if (!call.write(bytes)) await once(call, "drain");
            out++;
          }
        }
        if (out === 0) return;
        if ((await answers.next()).done) throw new Error(`echo stream ended with ${out} message(s) unanswered`);
        out--;
        yield { status: "OK" };
      }
    } finally {
      call.cancel();
    }
  }
  return { open, close: () => client.close() };
}
