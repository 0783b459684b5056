/** Worker thread of QualityPool: computes one QualityReport per request. */
import { serveRequests } from "../workers/serve.js";
import type { QualityRequest } from "./quality-pool.js";
import { computeQuality, type QualityReport } from "./quality.js";

serveRequests<QualityRequest, QualityReport>("quality-worker.js", (request) => ({
  value: computeQuality(request.synthetic, request.reference, request.target, request.options),
}));
