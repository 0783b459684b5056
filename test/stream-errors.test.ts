// Every accepted slice is answered: a message that ends a Translate stream
// (one that cannot be read, a repeated StreamOptions, one over the message
// limit) first lets every slice accepted before it be answered; an answer
// over the limit is that slice's RESOURCE_EXHAUSTED and the stream goes on;
// what a client sends is never echoed back beyond a short prefix. Real
// server, real grpc-js clients, loopback.
import { before, describe, it } from "node:test";
import { connect } from "node:http2";
import { gzipSync } from "node:zlib";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import {
  Direction,
  Encoding,
  PixelType,
  TranslateRequestSchema,
  TranslateResponseSchema,
  type TranslateRequest,
  type TranslateResponse,
} from "../src/gen/medsynth/v1/translator_pb.js";
import { encodeImage } from "../src/imaging/codec.js";
import { freePort } from "./helpers/net.js";
import { collect, mrImage, options, rawImage, scrape, sliceRequest, useTestServer } from "./helpers/service.js";

const kinds = (responses: TranslateResponse[]) => responses.map((r) => `${r.kind.case} ${r.kind.value!.index}`);

/** One gRPC message as it goes on the wire: compressed flag, length, bytes. */
function grpcFrame(request: TranslateRequest | Buffer, compressed = 0): Buffer {
  const message = Buffer.isBuffer(request) ? request : Buffer.from(toBinary(TranslateRequestSchema, request));
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed;
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** The prefix and zero bytes of a message of `bytes` bytes, whatever the limit makes of it. */
function oversizedFrame(bytes: number): Buffer {
  const frame = Buffer.alloc(5 + bytes);
  frame.writeUInt32BE(bytes, 1);
  return frame;
}

/** A Translate call over plain HTTP/2, as a hand-written client makes one: the whole body in one write. */
async function rawTranslate(address: string, body: Buffer, headers: Record<string, string> = {}) {
  const session = connect(`http://${address}`);
  try {
    const stream = session.request({ ":method": "POST", ":path": "/medsynth.v1.Translator/Translate", "content-type": "application/grpc", te: "trailers", ...headers });
    const received: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => received.push(chunk));
    const ended = new Promise<Record<string, unknown>>((resolve) => {
      stream.on("trailers", resolve);
      stream.on("response", (response) => response["grpc-status"] !== undefined && resolve(response));
    });
    stream.end(body);
    const trailers = await ended;
    await new Promise((resolve) => stream.on("close", resolve));
    const answers = Buffer.concat(received);
    const responses: TranslateResponse[] = [];
    for (let at = 0; at + 5 <= answers.length; at += 5 + answers.readUInt32BE(at + 1)) {
      responses.push(fromBinary(TranslateResponseSchema, answers.subarray(at + 5, at + 5 + answers.readUInt32BE(at + 1))));
    }
    return { responses, trailers };
  } finally {
    session.close();
  }
}

describe("stream-level errors after accepted slices", () => {
  const served = useTestServer({ maxMessageBytes: 64 * 1024, maxDelayMs: 30 });

  it("a message over --max-message-bytes: the slices before it are answered, then RESOURCE_EXHAUSTED naming the flag", async () => {
    const call = served.client.translate();
    const done = collect(call);
    call.write(options(Direction.MR_TO_CT));
    for (let i = 0; i < 3; i++) call.write(sliceRequest(i, mrImage(80, 96)));
    call.write(sliceRequest(3, rawImage(new Array(160 * 160).fill(500), 160, 160, PixelType.FLOAT32))); // 100 KiB
    call.write(sliceRequest(4, mrImage(80, 96)));
    const { responses, error } = await done;
    assert.deepEqual(kinds(responses), ["result 0", "result 1", "result 2"]);
    assert.equal(error?.code, status.RESOURCE_EXHAUSTED);
    assert.match(error.details, /^Received message larger than max \(\d+ vs 65536\) \(--max-message-bytes\); 3 slices answered before it$/);
  });

  it("a message in an encoding the server lacks, sent in one write after a slice: that slice is answered first, then UNIMPLEMENTED", async () => {
    const body = Buffer.concat([grpcFrame(options(Direction.MR_TO_CT)), grpcFrame(sliceRequest(0, mrImage())), grpcFrame(Buffer.from("not br"), 1)]);
    const { responses, trailers } = await rawTranslate(served.server.address, body, { "grpc-encoding": "br-fake" });
    assert.deepEqual(kinds(responses), ["result 0"]);
    assert.equal(Number(trailers["grpc-status"]), status.UNIMPLEMENTED);
    assert.match(decodeURIComponent(String(trailers["grpc-message"])), /^Received message compressed with unsupported encoding "br-fake"; 1 slice answered before it$/);
  });

  it("a message over the limit in the same write as the slices before it: they are answered, then RESOURCE_EXHAUSTED", async () => {
    // grpc-js's own decoder would drop every message of the HTTP/2 DATA chunk that holds the oversized prefix.
    const tooLarge = oversizedFrame(100 * 1024);
    const body = Buffer.concat([grpcFrame(options(Direction.MR_TO_CT)), grpcFrame(sliceRequest(0, mrImage())), grpcFrame(sliceRequest(1, mrImage())), tooLarge]);
    const { responses, trailers } = await rawTranslate(served.server.address, body);
    assert.deepEqual(kinds(responses), ["result 0", "result 1"]);
    assert.equal(Number(trailers["grpc-status"]), status.RESOURCE_EXHAUSTED);
    assert.match(decodeURIComponent(String(trailers["grpc-message"])), /^Received message larger than max \(102400 vs 65536\) \(--max-message-bytes\); 2 slices answered before it$/);
  });

  it("gzip-compressed slices and a message over the limit in one write: the slices (still inflating) are answered, then RESOURCE_EXHAUSTED", async () => {
    const gzipped = (request: TranslateRequest) => grpcFrame(gzipSync(toBinary(TranslateRequestSchema, request)), 1);
    const tooLarge = oversizedFrame(100 * 1024);
    const body = Buffer.concat([gzipped(options(Direction.MR_TO_CT)), gzipped(sliceRequest(0, mrImage())), gzipped(sliceRequest(1, mrImage())), tooLarge]);
    const { responses, trailers } = await rawTranslate(served.server.address, body, { "grpc-encoding": "gzip" });
    assert.deepEqual(kinds(responses), ["result 0", "result 1"]);
    assert.equal(Number(trailers["grpc-status"]), status.RESOURCE_EXHAUSTED);
    assert.match(decodeURIComponent(String(trailers["grpc-message"])), /; 2 slices answered before it$/);
  });

  it("a message that is not a TranslateRequest: the slices before it are answered, then INVALID_ARGUMENT naming the message", async () => {
    // A client that sends bytes as they are, so one message can be malformed.
    const raw = new Client(served.server.address, credentials.createInsecure());
    try {
      const call = raw.makeBidiStreamRequest<Buffer, TranslateResponse>(
        "/medsynth.v1.Translator/Translate",
        (bytes) => bytes,
        (bytes) => fromBinary(TranslateResponseSchema, bytes),
        new Metadata(),
        {},
      );
      const encode = (request: TranslateRequest) => Buffer.from(toBinary(TranslateRequestSchema, request));
      const done = collect(call as never);
      call.write(encode(options(Direction.MR_TO_CT)));
      call.write(encode(sliceRequest(0, mrImage())));
      call.write(encode(sliceRequest(1, mrImage())));
      // Field 2 (the slice), length-delimited, with a length far past the end.
      call.write(Buffer.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x0f]));
      call.write(encode(sliceRequest(2, mrImage())));
      call.end();
      const { responses, error } = await done;
      assert.deepEqual(kinds(responses), ["result 0", "result 1"]);
      assert.equal(error?.code, status.INVALID_ARGUMENT);
      assert.match(error.details, /^message 4 is not a TranslateRequest \(".*"\); every slice sent before it was answered$/);
    } finally {
      raw.close();
    }
  });

  it("a second StreamOptions: the slices before it are answered, then INVALID_ARGUMENT", async () => {
    const call = served.client.translate();
    const done = collect(call);
    call.write(options(Direction.MR_TO_CT));
    call.write(sliceRequest(0, mrImage()));
    call.write(sliceRequest(1, mrImage()));
    call.write(options(Direction.CT_TO_MR));
    call.write(sliceRequest(2, mrImage()));
    call.end();
    const { responses, error } = await done;
    assert.deepEqual(kinds(responses), ["result 0", "result 1"]);
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "options: message 4 repeats StreamOptions; send it once, as the first message, then only Slices; every slice sent before it was answered");
  });

  it("an empty message after the options: the slices before it are answered, then INVALID_ARGUMENT saying what it lacked", async () => {
    const call = served.client.translate();
    const done = collect(call);
    call.write(options(Direction.MR_TO_CT));
    call.write(sliceRequest(0, mrImage()));
    call.write(create(TranslateRequestSchema, {}));
    call.end();
    const { responses, error } = await done;
    assert.deepEqual(kinds(responses), ["result 0"]);
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "slice: message 3 carries neither a Slice nor StreamOptions (empty, or only fields this server does not know); after the StreamOptions send only Slices; every slice sent before it was answered");
  });
});

describe("answers over the message limit", () => {
  let metricsPort = 0;
  // Registered before the server's own `before`, so the port is chosen first.
  before(async () => {
    metricsPort = await freePort();
  });
  const served = useTestServer(() => ({ maxMessageBytes: 256 * 1024, metricsPort }));

  it("are the slice's RESOURCE_EXHAUSTED naming the limit and the flag, the stream goes on, and the metrics count them so", async () => {
    const call = served.client.translate();
    const done = collect(call);
    call.write(options(Direction.MR_TO_CT, { outputEncoding: Encoding.RAW }));
    // 300² as a 16-bit PNG is a few KiB in; its RAW float32 answer is 352 KiB out.
    const png = await encodeImage({ width: 300, height: 300, data: new Float32Array(300 * 300).map((_, i) => 500 + (i % 300)) }, Encoding.PNG);
    call.write(sliceRequest(0, png));
    call.write(sliceRequest(1, mrImage(64, 64)));
    call.end();
    const { responses, error } = await done;
    assert.equal(error, undefined, "the stream went on");
    assert.deepEqual(kinds(responses), ["error 0", "result 1"]);
    const failed = responses[0].kind.value as { code: number; message: string };
    assert.equal(failed.code, status.RESOURCE_EXHAUSTED);
    assert.match(failed.message, /^slice\.image: the answer would be \d+ bytes, more than the limit of 262144 \(--max-message-bytes\); ask for a compressed output_encoding/);
    assert.equal(await scrape(metricsPort, "medsynth_slices_total", { status: "RESOURCE_EXHAUSTED" }), 1);
    assert.equal(await scrape(metricsPort, "medsynth_slices_total", { status: "OK" }), 1);
  });
});

describe("text a client sends", () => {
  const served = useTestServer();

  it("is never echoed beyond a short prefix: a 90 KB model name gets a short status, and the connection serves on", async () => {
    const huge = "m".repeat(90_000);
    const call = served.client.translate();
    const done = collect(call);
    call.write(options(Direction.MR_TO_CT, { model: huge }));
    call.end();
    const { error } = await done;
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.equal(error.details, "options.model: 90000 characters, more than the 256 a model name may have; ListModels shows the loaded ones");

    const unknown = "x".repeat(200);
    const second = served.client.translate();
    const secondDone = collect(second);
    second.write(options(Direction.MR_TO_CT, { model: unknown }));
    second.end();
    const { error: notFound } = await secondDone;
    assert.equal(notFound?.code, status.NOT_FOUND);
    assert.match(notFound.details, new RegExp(`^options\\.model: no model named "${"x".repeat(64)}"… \\(200 characters\\); loaded: \\S+ \\((mr2ct|ct2mr)\\)(, \\S+ \\((mr2ct|ct2mr)\\))*$`));

    // The same connection still carries streams.
    const after = served.client.translate();
    const afterDone = collect(after);
    after.write(options(Direction.MR_TO_CT));
    after.write(sliceRequest(0, mrImage()));
    after.end();
    assert.deepEqual(kinds((await afterDone).responses), ["result 0"]);
  });
});
