/** How one slice can fail: SliceError values as callers read them, SliceFault as the server raises them. */
import { status } from "@grpc/grpc-js";
import type { SliceError, SliceResult } from "../gen/medsynth/v1/translator_pb.js";

/** Whether a Translate answer is the slice's error rather than its result. */
export function isSliceError(value: SliceResult | SliceError): value is SliceError {
  return value.$typeName === "medsynth.v1.SliceError";
}

/**
 * A problem with one slice: it becomes that slice's SliceError (or the status
 * of a TranslateSlice call) and the stream goes on. `field` names what the
 * caller must fix, e.g. "slice.image.data".
 */
export class SliceFault extends Error {
  constructor(
    readonly code: status,
    readonly field: string,
    readonly detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = "SliceFault";
  }
}

export const invalidArgument = (field: string, detail: string): SliceFault =>
  new SliceFault(status.INVALID_ARGUMENT, field, detail);

export const unimplemented = (field: string, detail: string): SliceFault =>
  new SliceFault(status.UNIMPLEMENTED, field, detail);

/** Characters of a caller's text quoted back in an error message; the rest is summarised. */
const QUOTED_CHARS = 64;

/**
 * Caller-sent text as an error message quotes it: at most 64 characters,
 * and the length of anything longer, so a message never echoes what a
 * caller made arbitrarily large.
 */
export function quote(text: string): string {
  return text.length <= QUOTED_CHARS ? JSON.stringify(text) : `${JSON.stringify(text.slice(0, QUOTED_CHARS))}… (${text.length} characters)`;
}
