// The public API.
import { gpuContext, type GpuContext } from './gpu/device.ts';
import './autograd/methods.ts';

/** Opens the WebGPU device (once). Call before creating tensors. */
export function init(): Promise<GpuContext> {
  return gpuContext();
}

export { gpuContext, describeAdapter, NoAdapterError, SETUP_COMMAND } from './gpu/device.ts';
export { memoryStats, resetPeakMemory } from './gpu/pool.ts';
export { profile, runtime } from './gpu/runtime.ts';
export { Tensor } from './tensor/tensor.ts';
export { tidy, keep } from './tensor/scope.ts';
export * from './autograd/ops/index.ts';
export { noGrad, enableGrad, isGradEnabled } from './autograd/graph.ts';
export { backward, grad, gradOf, valueAndGrad, vjp, vjpOf, hvp, jvp } from './autograd/functional.ts';
