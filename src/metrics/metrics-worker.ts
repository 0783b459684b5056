/** Worker thread of MetricsPool: computes one QualityReport per request. */
import { serveRequests } from "../workers/serve.js";
import type { MetricsRequest } from "./pool.js";
import { computeQuality, type QualityReport } from "./quality.js";

serveRequests<MetricsRequest, QualityReport>("metrics-worker.js", (request) => ({
  value: computeQuality(request.synthetic, request.reference, request.target, request.options),
}));
