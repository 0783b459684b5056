/** Worker thread of TransformPool: normalises a slice for its model or maps a model output back. */
import { serveWorker } from "../workers/serve.js";
import type { TransformMethods } from "./transform-pool.js";
import { fromModelOutput, outputRange, toModelInput } from "./transforms.js";

serveWorker<TransformMethods>("transform-worker.js", () => ({
  handlers: {
    normalise: ({ raster, spec }) => {
      const input = toModelInput(raster, spec);
      return { value: input, transfer: [input.buffer as ArrayBuffer] };
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
