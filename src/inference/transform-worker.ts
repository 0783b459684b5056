/** Worker thread of TransformPool: normalises a slice for its model or maps a model output back. */
import { serveRequests } from "../workers/serve.js";
import type { TransformReply, TransformRequest } from "./transform-pool.js";
import { fromModelOutput, outputRange, toModelInput } from "./transforms.js";

serveRequests<TransformRequest, TransformReply>("transform-worker.js", (request) => {
  if (request.kind === "normalise") {
    const input = toModelInput(request.raster, request.spec);
    return { value: input, transfer: [input.buffer as ArrayBuffer] };
  }
  const { output, channels, spec, reference, size } = request;
  const range = outputRange(spec, reference);
  const synthetic = fromModelOutput(output, channels, spec, range, size);
  const transfer = [synthetic.data.buffer as ArrayBuffer];
  if (reference) transfer.push(reference.data.buffer as ArrayBuffer);
  return { value: { synthetic, range, reference }, transfer };
});
