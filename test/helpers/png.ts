import { deflateSync } from "node:zlib";

/** IHDR colour types, as the PNG specification numbers them. */
export const PNG_GREY = 0;
export const PNG_PALETTE = 3;

export interface HandMadePng {
  width: number;
  height: number;
  /** Bits per sample: 1, 2, 4, 8 or 16. */
  bits: number;
  /** IHDR colour type (greyscale when left out). */
  colour?: number;
  /** PLTE: red, green, blue of each entry. */
  palette?: readonly number[];
  /** The image data before compression: each row led by its filter byte. */
  rows: ArrayLike<number>;
}

/** A PNG written chunk by chunk from the specification (IHDR, PLTE, one IDAT, IEND), independent of any PNG library. */
export function handMadePng({ width, height, bits, colour = PNG_GREY, palette, rows }: HandMadePng): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = bits;
  header[9] = colour;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    ...(palette ? [chunk("PLTE", Buffer.from(palette))] : []),
    chunk("IDAT", deflateSync(Buffer.from(Array.from(rows)))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

/** One-sample pixels packed `bits` each, high bits first, each row led by filter 0 (None) and starting on a fresh byte. */
export function unfilteredRows(samples: ArrayLike<number>, width: number, bits: number): Uint8Array {
  const height = samples.length / width;
  const stride = Math.ceil((width * bits) / 8);
  const rows = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1) + 1;
    for (let x = 0; x < width; x++) {
      const value = samples[y * width + x];
      const bit = x * bits;
      if (bits === 16) rows.set([value >> 8, value & 0xff], row + 2 * x);
      else rows[row + (bit >> 3)] |= value << (8 - bits - (bit & 7));
    }
  }
  return rows;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function crc32(bytes: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
