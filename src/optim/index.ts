export * from './optimizer.ts';
export { SGD, type SGDOptions } from './sgd.ts';
export { Adam, AdamW, type AdamOptions } from './adam.ts';
export { Sophia, type SophiaOptions, type SophiaForm, type HessianEstimate, type HessianEstimator } from './sophia.ts';
export { gnbEstimate, gnbFromDelta, gnbFromLogits, hutchinsonEstimate, meanCrossEntropy, type Probe } from './estimators.ts';
export * from './schedule.ts';
export { clipGradNorm } from './clip.ts';
export { saveOptimizer, loadOptimizer } from './checkpoint.ts';
export { GradScaler, type GradScalerOptions } from './scaler.ts';
