/**
 * Protobuf for messages that carry images, without copying the images more
 * than once. Decoding: protobuf-es returns `bytes` fields as views into its
 * input, so the image data of a received message aliases the message's
 * buffer instead of being copied out of it. Encoding: protobuf-es's writer
 * starts at 128 bytes and doubles, copying as it grows, then shifts each
 * enclosing message when it learns its length and copies the result once
 * more: five or six copies of a 256 KB slice and as many large allocations.
 * Here the large `bytes` fields are written once, into one buffer of the
 * exact size, after the rest of their message.
 */
import { fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** `bytes` values at least this long go straight into the output instead of through protobuf-es's writer. */
export const LARGE_BYTES = 16 * 1024;

type Fields = Record<string, unknown>;

const carriersCache = new WeakMap<DescMessage, readonly DescField[]>();

/**
 * The singular `bytes` and message fields of `desc` through which a large
 * `bytes` value can be reached. A message type met again below itself is
 * left to protobuf-es (still correct, only not split).
 */
function carriersOf(desc: DescMessage, above: ReadonlySet<DescMessage> = new Set()): readonly DescField[] {
  const known = carriersCache.get(desc);
  if (known) return known;
  const path = new Set(above).add(desc);
  const found = desc.fields.filter(
    (field) =>
      (field.fieldKind === "scalar" && field.scalar === ScalarType.BYTES) ||
      (field.fieldKind === "message" && !path.has(field.message) && carriersOf(field.message, path).length > 0),
  );
  if (above.size === 0) carriersCache.set(desc, found);
  return found;
}

/** A singular field's value, or undefined when unset (or another member of its oneof is set). */
function valueOf(message: Fields, field: DescField): unknown {
  if (!field.oneof) return message[field.localName];
  const oneof = message[field.oneof.localName] as { case: string | undefined; value?: unknown };
  return oneof.case === field.localName ? oneof.value : undefined;
}

function isLarge(field: DescField, value: unknown): boolean {
  if (value === undefined) return false;
  if (field.fieldKind === "scalar") return (value as Uint8Array).byteLength >= LARGE_BYTES;
  if (field.fieldKind !== "message") return false;
  return carriersOf(field.message).some((inner) => isLarge(inner, valueOf(value as Fields, inner)));
}

/** google.protobuf.FeatureSet.FieldPresence.IMPLICIT (proto3 fields without `optional`). */
const IMPLICIT = 2;

/** A shallow copy of `message` with `fields` unset, so that toBinary writes everything else. */
function without(message: Fields, fields: readonly DescField[]): Fields {
  const rest = { ...message };
  for (const field of fields) {
    if (field.oneof) rest[field.oneof.localName] = { case: undefined };
    else if (field.fieldKind === "scalar" && field.presence === IMPLICIT) rest[field.localName] = new Uint8Array(0);
    else rest[field.localName] = undefined;
  }
  return rest;
}

/** The tag (wire type 2, length-delimited) and length of a field of `length` bytes. */
function fieldHeader(number: number, length: number): Uint8Array {
  const header: number[] = [];
  for (let value = ((number << 3) | 2) >>> 0; ; ) {
    header.push(value > 0x7f ? (value & 0x7f) | 0x80 : value);
    if (value <= 0x7f) break;
    value >>>= 7;
  }
  for (let value = length; ; ) {
    header.push(value > 0x7f ? (value & 0x7f) | 0x80 : value);
    if (value <= 0x7f) break;
    value >>>= 7;
  }
  return Uint8Array.from(header);
}

/** Appends the pieces of `message`'s encoding to `parts`; returns their length. */
function encodeParts(desc: DescMessage, message: Fields, parts: Uint8Array[]): number {
  const large = carriersOf(desc).filter((field) => isLarge(field, valueOf(message, field)));
  const rest = toBinary(desc, (large.length === 0 ? message : without(message, large)) as MessageShape<DescMessage>);
  parts.push(rest);
  let length = rest.byteLength;
  for (const field of large) {
    const value = valueOf(message, field);
    if (field.fieldKind === "scalar") {
      const bytes = value as Uint8Array;
      const header = fieldHeader(field.number, bytes.byteLength);
      parts.push(header, bytes);
      length += header.byteLength + bytes.byteLength;
      continue;
    }
    const inner: Uint8Array[] = [];
    const innerLength = encodeParts((field as DescField & { fieldKind: "message" }).message, value as Fields, inner);
    const header = fieldHeader(field.number, innerLength);
    parts.push(header, ...inner);
    length += header.byteLength + innerLength;
  }
  return length;
}

/**
 * `message` in the protobuf binary format, like toBinary, with every large
 * `bytes` value reached through singular fields copied once into a buffer
 * of the exact size. Those fields come after the rest of their message (any
 * field order is valid protobuf); a message without one encodes exactly as
 * toBinary encodes it.
 */
export function toBinaryOnce<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  const parts: Uint8Array[] = [];
  const length = encodeParts(schema, message as unknown as Fields, parts);
  if (parts.length === 1) return parts[0];
  // Every byte is written below: no need to zero it first.
  const out = Buffer.allocUnsafe(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** The gRPC frame header (compressed flag and length) before each message. */
const GRPC_FRAME_HEADER = 5;

/** Received messages whose whole ArrayBuffer is theirs alone (see ownsBuffer()). */
const owned = new WeakSet<ArrayBufferLike>();

/**
 * Decodes a message as grpc-js hands it over, without copying it: its
 * `bytes` fields are plain Uint8Array views (decoding a Uint8Array, not the
 * Buffer) into it. grpc-js gives each message its own buffer, the 5-byte
 * gRPC frame header then the message (a fresh allocation for anything
 * image-sized); a buffer that holds exactly that and is larger than Node's
 * Buffer pool (Buffer.poolSize, 8 KiB) is recorded as owned.
 */
export function fromGrpcMessage<D extends DescMessage>(schema: D, bytes: Buffer): MessageShape<D> {
  const { buffer, byteOffset, byteLength } = bytes;
  if (byteOffset === GRPC_FRAME_HEADER && buffer.byteLength === byteLength + GRPC_FRAME_HEADER && buffer.byteLength > Buffer.poolSize) {
    owned.add(buffer);
  }
  return fromBinary(schema, new Uint8Array(buffer, byteOffset, byteLength));
}

/**
 * Whether `view` lies in a received message's buffer that nothing else
 * uses, so that transferring that buffer to a worker (detaching every view
 * of the message here) takes nothing from anyone else.
 */
export function ownsBuffer(view: Uint8Array): boolean {
  return owned.has(view.buffer);
}
