import { createRequire } from "node:module";
import dcmjsCodecs from "dcmjs-codecs";
import { invalidArgument, unimplemented } from "../contract/slice-errors.js";
import { TransferSyntax } from "./transfer-syntax.js";

// dcmjs-codecs reads files with its own copy of dcmjs, whose warnings quote
// attribute values (patient data, e.g. every private element): silenced as
// dcmjs-silent.ts silences the project's copy.
const requireFromCodecs = createRequire(createRequire(import.meta.url).resolve("dcmjs-codecs"));
(requireFromCodecs("dcmjs") as { log: { setLevel(level: string): void } }).log.setLevel("silent");

const NATIVE = new Set<string>(Object.values(TransferSyntax));

/** Encapsulated syntaxes dcmjs-codecs decodes (RLE, JPEG, JPEG-LS, JPEG 2000, ...), by its own list. */
const DECODABLE = new Map(
  Object.entries(dcmjsCodecs.constants.TransferSyntax)
    .filter(([, uid]) => !NATIVE.has(uid))
    .map(([name, uid]) => [uid, name]),
);

/** Common encapsulated syntaxes no codec here decodes, named for the error message. */
const UNSUPPORTED_NAMES: Record<string, string> = {
  "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
  "1.2.840.10008.1.2.4.57": "JPEG Lossless (Process 14)",
  "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component Lossless",
  "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component",
  "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile",
  "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264",
};

export const isNative = (syntax: string): boolean => NATIVE.has(syntax);

let initialized: Promise<void> | undefined;

/** Loads the codecs' WebAssembly once, on the first compressed instance. */
function codecsReady(): Promise<void> {
  initialized ??= dcmjsCodecs.NativeCodecs.isInitialized()
    ? Promise.resolve()
    : dcmjsCodecs.NativeCodecs.initializeAsync();
  return initialized;
}

/**
 * Decompresses an encapsulated Part-10 file into an Explicit VR Little
 * Endian one. UNIMPLEMENTED for a syntax no codec here decodes; pixel data
 * the codec cannot decode is INVALID_ARGUMENT.
 */
export async function decompressPart10(file: ArrayBuffer, syntax: string, field: string): Promise<ArrayBuffer> {
  const name = DECODABLE.get(syntax);
  if (name === undefined) {
    const known = UNSUPPORTED_NAMES[syntax];
    throw unimplemented(
      field,
      `transfer syntax ${syntax}${known ? ` (${known})` : ""} cannot be decoded here; send the instance uncompressed ` +
        `or as RLE, JPEG baseline, JPEG lossless (SV1), JPEG-LS or JPEG 2000`,
    );
  }
  await codecsReady();
  try {
    const transcoder = new dcmjsCodecs.Transcoder(file);
    transcoder.transcode(TransferSyntax.explicitLittle);
    return transcoder.getDicomPart10();
  } catch (error) {
    throw invalidArgument(field, `${name} pixel data (${syntax}) could not be decoded: ${(error as Error).message}`);
  }
}
