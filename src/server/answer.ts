import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { catchError, map, of, type Observable } from "rxjs";
import { QueueFullError } from "../batcher/micro-batcher.js";
import { directionName } from "../contract/direction.js";
import { SliceFault } from "../contract/slice-errors.js";
import { SliceErrorSchema, SliceResultSchema, type Slice, type SliceError, type SliceResult } from "../gen/medsynth/v1/translator_pb.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import { WorkerCrash } from "../workers/worker-pool.js";
import type { Logger } from "./log.js";
import { translateSlice, type PipelineDeps, type StreamContext } from "./pipeline.js";

export interface AnswerDeps {
  pipeline: PipelineDeps;
  telemetry: Pick<Telemetry, "slice">;
  log: Logger;
  /** Largest message the server sends (--max-message-bytes): a larger answer becomes the slice's RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
}

/** A failure the caller can act on, as its status and message; undefined for anything internal. */
function callerFault(error: unknown): { code: status; message: string } | undefined {
  if (error instanceof SliceFault) return { code: error.code, message: error.message };
  if (error instanceof QueueFullError) return { code: status.RESOURCE_EXHAUSTED, message: error.message };
  if (error instanceof WorkerCrash) {
    const next = error.replaced ? "a new worker is starting: send the slice again" : "no worker will take its place: the server must be restarted";
    return { code: status.UNAVAILABLE, message: `${error.message}; ${next}` };
  }
  return undefined;
}

/**
 * Bytes the answer takes on the wire, at most: the result without its pixel
 * data (small), plus the data, plus room for the length prefixes that grow
 * with it and the TranslateResponse around it.
 */
function answerBytes(result: SliceResult): number {
  const data = result.image?.data ?? new Uint8Array();
  const rest = toBinary(SliceResultSchema, { ...result, image: result.image && { ...result.image, data: new Uint8Array() } });
  return rest.length + data.length + 16;
}

/**
 * The one answer to one slice, for a Translate stream and a TranslateSlice
 * call alike: its SliceResult, or the SliceError it failed with (an answer
 * larger than the message limit is the slice's RESOURCE_EXHAUSTED), counted
 * once by status. A slice whose worker died is UNAVAILABLE: while the pool
 * replaces its workers, sent again it goes to a live one. Internal details stay in the server log: the caller gets
 * `internal error (ref <id>)` and the log line carries the same id. Cold,
 * like translateSlice: unsubscribing abandons the slice, uncounted.
 */
export function answerSlice(deps: AnswerDeps, ctx: StreamContext, slice: Slice): Observable<SliceResult | SliceError> {
  const count = (code: status) => deps.telemetry.slice(directionName(ctx.model.direction), ctx.model.name, status[code]);
  return translateSlice(deps.pipeline, ctx, slice).pipe(
    map((result): SliceResult | SliceError => {
      const bytes = answerBytes(result);
      if (bytes > deps.maxMessageBytes) {
        count(status.RESOURCE_EXHAUSTED);
        const message =
          `slice.image: the answer would be ${bytes} bytes, more than the limit of ${deps.maxMessageBytes} (--max-message-bytes); ` +
          `ask for a compressed output_encoding (PNG or DICOM), send a smaller slice, or raise the limit on both ends`;
        return create(SliceErrorSchema, { index: slice.index, code: status.RESOURCE_EXHAUSTED, message });
      }
      count(status.OK);
      return result;
    }),
    catchError((error: unknown) => {
      let fault = callerFault(error);
      if (!fault) {
        const ref = randomBytes(4).toString("hex");
        deps.log.error("slice failed", { ref, model: ctx.model.name, index: Number(slice.index), error: (error as Error).message });
        fault = { code: status.INTERNAL, message: `internal error (ref ${ref})` };
      }
      count(fault.code);
      return of(create(SliceErrorSchema, { index: slice.index, ...fault }));
    }),
  );
}
