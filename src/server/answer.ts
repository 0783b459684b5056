import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import { catchError, map, of, type Observable } from "rxjs";
import { QueueFullError } from "../batcher/micro-batcher.js";
import { directionName } from "../contract/direction.js";
import { SliceFault } from "../contract/slice-errors.js";
import { SliceErrorSchema, type Slice, type SliceError, type SliceResult } from "../gen/medsynth/v1/translator_pb.js";
import type { Telemetry } from "../telemetry/telemetry.js";
import type { Logger } from "./log.js";
import { translateSlice, type PipelineDeps, type StreamContext } from "./pipeline.js";

export interface AnswerDeps {
  pipeline: PipelineDeps;
  telemetry: Pick<Telemetry, "slice">;
  log: Logger;
}

/** A failure the caller can act on, as its status and message; undefined for anything internal. */
function callerFault(error: unknown): { code: status; message: string } | undefined {
  if (error instanceof SliceFault) return { code: error.code, message: error.message };
  if (error instanceof QueueFullError) return { code: status.RESOURCE_EXHAUSTED, message: error.message };
  return undefined;
}

/**
 * The one answer to one slice, for a Translate stream and a TranslateSlice
 * call alike: its SliceResult, or the SliceError it failed with, counted
 * once by status. Internal details stay in the server log: the caller gets
 * `internal error (ref <id>)` and the log line carries the same id. Cold,
 * like translateSlice: unsubscribing abandons the slice, uncounted.
 */
export function answerSlice(deps: AnswerDeps, ctx: StreamContext, slice: Slice): Observable<SliceResult | SliceError> {
  const count = (code: status) => deps.telemetry.slice(directionName(ctx.model.direction), ctx.model.name, status[code]);
  return translateSlice(deps.pipeline, ctx, slice).pipe(
    map((result): SliceResult | SliceError => {
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
