/**
 * medsynth client library: typed access to the Translator service (MR ↔ CT
 * slice synthesis). NOT FOR CLINICAL USE.
 *
 * @example A viewer plugin translating the slice on screen
 * ```ts
 * import { createClient, Encoding, isSliceError, TranslatorError } from "medsynth";
 *
 * const client = createClient("127.0.0.1:50051", { deadlineMs: 5_000 });
 * try {
 *   const result = await client.translateSlice(
 *     { direction: "mr2ct", outputEncoding: Encoding.RAW },
 *     { index: 0n, image: { encoding: Encoding.PNG, data: pngBytes } },
 *   );
 *   // RAW output: float32 little-endian, physical units (HU for CT)
 *   const hu = new Float32Array(result.image!.data.slice().buffer);
 * } catch (error) {
 *   if (error instanceof TranslatorError) console.error(error.code, error.details);
 * }
 *
 * // A whole series: answers come back in order, one per slice; reading of
 * // `slices` (any async iterable) slows down when the service does.
 * for await (const answer of client.translate({ direction: "ct2mr" }, slices)) {
 *   if (isSliceError(answer)) console.warn(answer.index, answer.message);
 *   else show(answer.index, answer.image, answer.quality);
 * }
 * client.close();
 * ```
 */
export {
  createClient,
  isSliceError,
  resolveTarget,
  type ClientOptions,
  type SliceInit,
  type TranslateOptions,
  type TranslatorClient,
} from "./client/client.js";
export { TranslatorError, statusName } from "./client/errors.js";
export type { ClientTlsFiles } from "./contract/credentials.js";
export { DEFAULT_WINDOW, MAX_MESSAGE_BYTES } from "./contract/limits.js";
export { directionName, directionOf, type DirectionName } from "./contract/direction.js";
export { serviceDefinition, type ServiceDefinitionOf } from "./contract/service.js";
export { status } from "@grpc/grpc-js";
export {
  Direction,
  Encoding,
  PixelType,
  ImageSchema,
  SliceSchema,
  SliceResultSchema,
  SliceErrorSchema,
  StreamOptionsSchema,
  Translator,
  type Image,
  type ModelInfo,
  type Quality,
  type Slice,
  type SliceError,
  type SliceResult,
  type StreamOptions,
  type Timing,
} from "./gen/medsynth/v1/translator_pb.js";
