/** Worker thread of QualityPool: computes one QualityReport per request. */
import { serveWorker } from "../workers/serve.js";
import type { QualityMethods } from "./quality-pool.js";
import { computeQuality } from "./quality.js";
import { RETAINED_MEMORY_BYTES, wasmMetrics } from "./wasm.js";

serveWorker<QualityMethods>("quality-worker.js", () => ({
  handlers: {
    compute: ({ synthetic, reference, target, options }) => ({
      value: computeQuality(synthetic, reference, target, options),
      // The WebAssembly memory grew for a large image and would stay that large: a fresh thread gives it back.
      retire: (wasmMetrics()?.memoryBytes ?? 0) > RETAINED_MEMORY_BYTES,
    }),
  },
}));
