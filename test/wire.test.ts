// Protobuf for image-carrying messages (src/contract/wire.ts): one copy of
// each large `bytes` value on the way out, none on the way in.
import { test } from "node:test";
import assert from "node:assert/strict";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { fromGrpcMessage, LARGE_BYTES, ownsBuffer, toBinaryOnce } from "../src/contract/wire.js";
import {
  Encoding,
  PixelType,
  SliceSchema,
  TranslateRequestSchema,
  TranslateResponseSchema,
  type Image,
} from "../src/gen/medsynth/v1/translator_pb.js";

/** Decoded from a plain Uint8Array view, as the service decodes (fromBinary of a Buffer would give Buffer views). */
const plain = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

const image = (n: number, seed: number): MessageInitShape<typeof SliceSchema>["image"] => ({
  encoding: Encoding.RAW,
  data: bytes(n, seed),
  width: n / 4,
  height: 1,
  pixelType: PixelType.FLOAT32,
  rescaleSlope: 1.5,
  rescaleIntercept: -1024,
});

/** The message as grpc-js hands it to a deserializer: its own buffer, after a 5-byte frame header. */
function framed(message: Uint8Array): Buffer {
  const buffer = Buffer.allocUnsafe(message.byteLength + 5);
  buffer.set(message, 5);
  return buffer.subarray(5);
}

test("toBinaryOnce decodes to the same message as toBinary, large bytes included, one level deep or three", () => {
  const requests = [
    create(TranslateRequestSchema, { kind: { case: "slice", value: { index: 7n, image: image(256 * 256 * 4, 1), reference: image(256 * 256 * 4, 2), frame: 3 } } }),
    create(TranslateRequestSchema, { kind: { case: "slice", value: { index: 8n, image: image(LARGE_BYTES, 3), reference: image(64, 4) } } }),
    create(TranslateRequestSchema, { kind: { case: "options", value: { model: "m", outputEncoding: Encoding.PNG } } }),
  ];
  for (const request of requests) {
    assert.deepEqual(fromBinary(TranslateRequestSchema, plain(toBinaryOnce(TranslateRequestSchema, request))), fromBinary(TranslateRequestSchema, toBinary(TranslateRequestSchema, request)));
  }
  const response = create(TranslateResponseSchema, {
    kind: { case: "result", value: { index: 9n, image: image(4 * 300 * 300, 5), model: "m", quality: { psnr: 30, ssim: 0.9 }, timing: { batchSize: 4, totalMs: 12.5 } } },
  });
  const once = toBinaryOnce(TranslateResponseSchema, response);
  assert.deepEqual(fromBinary(TranslateResponseSchema, plain(once)), fromBinary(TranslateResponseSchema, toBinary(TranslateResponseSchema, response)));
  assert.equal(once.byteLength, toBinary(TranslateResponseSchema, response).byteLength, "the same bytes, the image field moved to its message's end");
});

test("a message without large bytes encodes exactly as toBinary encodes it", () => {
  const small = create(TranslateRequestSchema, { kind: { case: "slice", value: { index: 1n, image: image(LARGE_BYTES - 4, 6) } } });
  assert.deepEqual(toBinaryOnce(TranslateRequestSchema, small), toBinary(TranslateRequestSchema, small));
  const error = create(TranslateResponseSchema, { kind: { case: "error", value: { index: 2n, code: 3, message: "slice.image.data: empty" } } });
  assert.deepEqual(toBinaryOnce(TranslateResponseSchema, error), toBinary(TranslateResponseSchema, error));
});

test("a received message's bytes are views into grpc-js's buffer, which is owned; anything else is not", () => {
  const request = create(TranslateRequestSchema, { kind: { case: "slice", value: { index: 5n, image: image(64 * 64 * 4, 7), reference: image(64 * 64 * 4, 8) } } });
  const wire = framed(toBinary(TranslateRequestSchema, request));
  const received = fromGrpcMessage(TranslateRequestSchema, wire);
  assert.equal(received.kind.case, "slice");
  const slice = received.kind.value as { image: Image; reference: Image };
  assert.deepEqual(slice.image.data, bytes(64 * 64 * 4, 7));
  assert.equal(Object.getPrototypeOf(slice.image.data), Uint8Array.prototype, "a plain Uint8Array, not a Buffer");
  assert.equal(slice.image.data.buffer, wire.buffer, "not copied");
  assert.ok(ownsBuffer(slice.image.data) && ownsBuffer(slice.reference.data));

  // A view into a larger buffer (e.g. several messages in one chunk) or a small pooled one is not the message's own.
  const shared = Buffer.allocUnsafe(wire.byteLength + 100);
  wire.copy(shared, 5);
  const inShared = fromGrpcMessage(TranslateRequestSchema, shared.subarray(5, 5 + wire.byteLength));
  assert.ok(!ownsBuffer((inShared.kind.value as { image: Image }).image.data));
  const tiny = fromGrpcMessage(TranslateRequestSchema, framed(toBinary(TranslateRequestSchema, create(TranslateRequestSchema, { kind: { case: "slice", value: { image: image(64, 9) } } }))));
  assert.ok(!ownsBuffer((tiny.kind.value as { image: Image }).image.data), "below the Buffer pool's size nothing is owned");
});
