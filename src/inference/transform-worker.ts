/** Worker thread of TransformPool: prepares a received slice for its model, or finishes a model output into an answer. */
import { Direction, Encoding } from "../gen/medsynth/v1/translator_pb.js";
import { invalidArgument } from "../contract/slice-errors.js";
import { decodeImage, encodeImage, type DecodedImage } from "../imaging/codec.js";
import { serveWorker } from "../workers/serve.js";
import type { TransformMethods } from "./transform-pool.js";
import { fromModelOutput, isConstant, outputRange, toModelInput } from "./transforms.js";

serveWorker<TransformMethods>("transform-worker.js", () => ({
  handlers: {
    prepare: async ({ slice, spec }) => {
      const started = performance.now();
      const options = { maxDimension: slice.maxDimension, frame: slice.frame };
      const [from, to] = spec.direction === Direction.MR_TO_CT ? (["MR", "CT"] as const) : (["CT", "MR"] as const);
      const image = checkModality(await decodeImage(slice.image, "slice.image", options), from, "image", spec.name);
      const reference = slice.reference
        ? checkModality(await decodeImage(slice.reference, "slice.reference", options), to, "reference", spec.name).raster
        : undefined;
      const { width, height } = image.raster;
      if (reference && (reference.width !== width || reference.height !== height)) {
        throw invalidArgument("slice.reference", `is ${reference.width}×${reference.height} but slice.image is ${width}×${height}; they must match`);
      }
      const decodeMs = performance.now() - started;
      // The decoded pixels are this worker's own: normalise them in place where the shapes allow.
      const input = toModelInput(image.raster, spec, true);
      // Judged on what the model sees: zero padding, one stray pixel in an empty slice (its percentile window has
      // zero width) and CT padding below the window all come out flat.
      const blank = isConstant(input);
      const transfer = [input.buffer as ArrayBuffer];
      if (reference) transfer.push(reference.data.buffer as ArrayBuffer);
      return { value: { input, size: { width, height }, encoding: image.encoding, dicom: image.dicom, reference, decodeMs, blank }, transfer };
    },
    finish: async ({ output, channels, spec, reference, size, encoding, keepSynthetic }) => {
      const range = outputRange(spec, reference);
      const synthetic = fromModelOutput(output, channels, spec, range, size, true);
      const transfer = reference ? [reference.data.buffer as ArrayBuffer] : [];
      if (encoding === Encoding.DICOM) {
        transfer.push(synthetic.data.buffer as ArrayBuffer);
        return { value: { image: undefined, synthetic, range, reference, encodeMs: 0 }, transfer };
      }
      const started = performance.now();
      // RAW data is a view of the pixels it encodes, so pixels kept for the metrics are a copy.
      const kept = keepSynthetic ? (encoding === Encoding.RAW ? { ...synthetic, data: synthetic.data.slice() } : synthetic) : undefined;
      const encoded = await encodeImage(synthetic, encoding);
      // PNG bytes are sharp's Buffer (possibly a view into more): posted as an exact copy.
      const image = encoding === Encoding.RAW ? encoded : { ...encoded, data: new Uint8Array(encoded.data) };
      const encodeMs = performance.now() - started;
      transfer.push(image.data.buffer as ArrayBuffer);
      if (kept) transfer.push(kept.data.buffer as ArrayBuffer);
      return { value: { image, synthetic: kept, range, reference, encodeMs }, transfer };
    },
  },
}));

/** A DICOM CT or MR instance must be the modality the model reads (or, as the reference, writes); others (OT, SC) are taken as they are. */
function checkModality(image: DecodedImage, expected: "MR" | "CT", role: "image" | "reference", model: string): DecodedImage {
  const modality = image.dicom?.modality;
  if ((modality === "CT" || modality === "MR") && modality !== expected) {
    const what = `is a ${modality} instance (Modality ${modality}), but the model ${model}`;
    throw invalidArgument(
      `slice.${role}.data`,
      role === "reference"
        ? `${what} makes ${expected}; send the real ${expected} slice as the reference`
        : `${what} reads ${expected}; send ${expected} slices, or open the stream with direction ${expected === "MR" ? "ct2mr" : "mr2ct"}`,
    );
  }
  return image;
}
