import { status, type ServiceError } from "@grpc/grpc-js";

/**
 * A failed call (or a stream that ended with a non-OK status). `code` is the
 * gRPC status code, e.g. `status.NOT_FOUND` for an unknown model,
 * `status.UNAVAILABLE` when no server answers or the server is draining.
 * Per-slice problems are not thrown: they come back as SliceError values.
 */
export class TranslatorError extends Error {
  constructor(
    readonly code: status,
    readonly details: string,
    options?: { cause?: unknown },
  ) {
    super(`${statusName(code)}: ${details}`, options);
    this.name = "TranslatorError";
  }
}

/** "RESOURCE_EXHAUSTED" for 8, and so on; "CODE_<n>" for codes grpc-js does not name. */
export function statusName(code: number): string {
  return status[code] ?? `CODE_${code}`;
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === "number";
}

/** Wraps a grpc-js error in a TranslatorError; anything else passes through. */
export function toTranslatorError(error: unknown): unknown {
  if (error instanceof TranslatorError || !isServiceError(error)) return error;
  return new TranslatorError(error.code, error.details || error.message, { cause: error });
}
