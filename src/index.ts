// The public API.
import { gpuContext, NoAdapterError, type GpuContext } from './gpu/device.ts';
import './autograd/methods.ts';

/** Opens the WebGPU device (once). Call before creating tensors. */
export function init(): Promise<GpuContext> {
  return gpuContext();
}

/**
 * init() for command-line entry points: without an adapter it prints the NoAdapterError's
 * message (which names the set-up command) and exits with status 1, instead of a stack trace.
 */
export async function initOrExit(): Promise<GpuContext> {
  try {
    return await gpuContext();
  } catch (e) {
    if (!(e instanceof NoAdapterError)) throw e;
    console.error(e.message);
    process.exit(1);
  }
}

export { gpuContext, describeAdapter, NoAdapterError, SETUP_COMMAND } from './gpu/device.ts';
export { memoryStats, resetPeakMemory } from './gpu/pool.ts';
export { profile, runtime } from './gpu/runtime.ts';
export { Tensor } from './tensor/tensor.ts';
export { tidy, keep } from './tensor/scope.ts';
export * from './autograd/ops/index.ts';
export { noGrad, enableGrad, isGradEnabled } from './autograd/graph.ts';
export { backward, grad, gradOf, valueAndGrad, vjp, vjpOf, hvp, jvp } from './autograd/functional.ts';
