/** Image-quality metrics of synthetic slices; see README.md for the rules. */
export { computeQuality, type QualityOptions, type QualityReport, type QualityValues, type TargetWindow } from "./quality.js";
export { QualityPool, DEFAULT_QUALITY_POOL_OPTIONS, type QualityPoolOptions, type PooledQuality } from "./quality-pool.js";
export { mae, psnr, ssim, uqi, vifp, type Plane, type SsimOptions } from "./kernels.js";
export { foregroundMask, type Box, type Foreground } from "./mask.js";
