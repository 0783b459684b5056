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
