import { status } from "@grpc/grpc-js";

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
