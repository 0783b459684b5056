/** Worker thread of QualityPool: computes one QualityReport per request (serveWorker replaces a thread whose WebAssembly memory grew). */
import { serveWorker } from "../workers/serve.js";
import type { QualityMethods } from "./quality-pool.js";
import { computeQuality } from "./quality.js";

serveWorker<QualityMethods>("quality-worker.js", () => ({
  handlers: {
    compute: ({ synthetic, reference, target, options }) => ({ value: computeQuality(synthetic, reference, target, options) }),
  },
}));
