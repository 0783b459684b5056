/** Worker thread of TransformPool: decodes and normalises a slice for its model, or maps a model output back. */
import { invalidArgument } from "../contract/slice-errors.js";
import { decodeImage } from "../imaging/codec.js";
import { serveWorker } from "../workers/serve.js";
import type { TransformMethods } from "./transform-pool.js";
import { fromModelOutput, outputRange, toModelInput } from "./transforms.js";

serveWorker<TransformMethods>("transform-worker.js", () => ({
  handlers: {
    prepare: async ({ image, reference, frame, maxDimension, spec }) => {
      const options = { maxDimension, frame };
      const decoded = await decodeImage(image, "slice.image", options);
      const referenced = reference ? (await decodeImage(reference, "slice.reference", options)).raster : undefined;
      const { width, height } = decoded.raster;
      if (referenced && (referenced.width !== width || referenced.height !== height)) {
        throw invalidArgument("slice.reference", `is ${referenced.width}×${referenced.height} but slice.image is ${width}×${height}; they must match`);
      }
      const input = toModelInput(decoded.raster, spec);
      const transfer = [input.buffer as ArrayBuffer];
      if (referenced) transfer.push(referenced.data.buffer as ArrayBuffer);
      return {
        value: { input, size: { width, height }, encoding: decoded.encoding, dicom: decoded.dicom, reference: referenced },
        transfer,
      };
    },
    denormalise: ({ output, channels, spec, reference, size }) => {
      const range = outputRange(spec, reference);
      const synthetic = fromModelOutput(output, channels, spec, range, size);
      const transfer = [synthetic.data.buffer as ArrayBuffer];
      if (reference) transfer.push(reference.data.buffer as ArrayBuffer);
      return { value: { synthetic, range, reference }, transfer };
    },
  },
}));
