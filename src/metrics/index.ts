/** Image-quality metrics of synthetic slices; see README.md for the rules. */
export { computeQuality, type QualityOptions, type QualityReport, type QualityValues, type TargetWindow } from "./quality.js";
export { MetricsPool, type MetricsPoolOptions, type PooledQuality } from "./pool.js";
export { mae, psnr, ssim, uqi, vifp, type Plane, type SsimOptions } from "./kernels.js";
export { foregroundMask, type Box, type Foreground } from "./mask.js";
