import { create } from "@bufbuild/protobuf";
import { TranslatorError } from "../client/errors.js";
import { SliceErrorSchema, type SliceError, type SliceResult } from "../gen/medsynth/v1/translator_pb.js";

/**
 * The answers of one Translate stream, and then, if the stream fails as a
 * whole (a TranslatorError), one SliceError with the stream's status for each
 * slice `unanswered()` names: the commands account for every slice in one
 * place whether its own answer or its stream's failure settled it.
 */
export async function* everyAnswer(
  answers: AsyncIterable<SliceResult | SliceError>,
  unanswered: () => Iterable<bigint>,
): AsyncGenerator<SliceResult | SliceError> {
  try {
    yield* answers;
  } catch (error) {
    if (!(error instanceof TranslatorError)) throw error;
    for (const index of unanswered()) yield create(SliceErrorSchema, { index, code: error.code, message: error.details });
  }
}

/** Slice indices `from` up to (not including) `to`. */
export function* indices(from: number, to: number): Iterable<bigint> {
  for (let index = from; index < to; index++) yield BigInt(index);
}
