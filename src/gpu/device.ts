// The one WebGPU device of this process, obtained from Dawn (npm `webgpu`).
//
// We ask for the adapter's own maxima of the buffer limits: lavapipe caps a storage binding at
// 128 MiB, a real GPU allows far more, and kernels consult `limits` to decide when to split.
import { create, globals } from 'webgpu';
import { paceDawnPolling } from './poll.ts';

// GPUBufferUsage, GPUMapMode, ... as globals, the way browsers provide them.
Object.assign(globalThis, globals);

export const SETUP_COMMAND = 'npm run setup';

export interface GpuContext {
  /** Held so the Dawn instance is not garbage-collected while the device lives (that crashes). */
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo;
  features: Set<string>;
  limits: GPUSupportedLimits;
  hasF16: boolean;
  hasSubgroups: boolean;
  /** Subgroups of exactly 8 lanes (lavapipe's): the tex matmul and the subgroup attention kernel need them. */
  eightLaneSubgroups: boolean;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader): kernels that favour few, long-running invocations win there. */
  isCpu: boolean;
}

export class NoAdapterError extends Error {
  constructor(detail: string) {
    super(
      `No WebGPU adapter is available (${detail}). ` +
        `On a Debian machine without a GPU, run \`${SETUP_COMMAND}\` once: it installs the Vulkan loader ` +
        `and Mesa's CPU driver (lavapipe) from bookworm-backports. On a GPU machine, install its Vulkan driver.`,
    );
    this.name = 'NoAdapterError';
  }
}

let pending: Promise<GpuContext> | null = null;
let firstError: string | null = null;

/** Throws the first WebGPU validation error seen since the last call, if any. */
export function throwIfGpuError(): void {
  if (firstError === null) return;
  const msg = firstError;
  firstError = null;
  throw new Error(`WebGPU reported an error (an engine bug; please report it):\n${msg}`);
}
let current: GpuContext | null = null;

const WANTED_FEATURES: GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'] as GPUFeatureName[];
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
] as const;

async function open(): Promise<GpuContext> {
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
  paceDawnPolling();
  let gpu: GPU;
  try {
    gpu = create([]);
  } catch (e) {
    throw new NoAdapterError(`Dawn failed to start: ${(e as Error).message}`);
  }
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new NoAdapterError(`Dawn could not enumerate adapters: ${(e as Error).message}`);
  }
  if (!adapter) throw new NoAdapterError('Dawn found no Vulkan/Metal/D3D12 adapter');
  const features = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) requiredLimits[name] = adapter.limits[name] as number;
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: features, requiredLimits });
  } catch (e) {
    const name = `${adapter.info.vendor} ${adapter.info.device}`.trim() || 'the adapter';
    throw new Error(`${name} offered an adapter but refused a device with its own limits and features (${features.join(', ') || 'none'}): ${(e as Error).message}. Run \`npm run doctor\` to see what it reports; on a CPU-only Debian machine \`npm run setup\` installs a driver that works.`);
  }
  device.addEventListener('uncapturederror', (ev) => {
    // Validation errors mean an engine bug: the next readback throws instead of returning
    // silently wrong numbers.
    firstError ??= (ev as GPUUncapturedErrorEvent).error.message;
  });
  const set = new Set<string>(features);
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  return {
    gpu,
    adapter,
    device,
    adapterInfo: adapter.info,
    features: set,
    limits: device.limits,
    hasF16: set.has('shader-f16'),
    hasSubgroups: set.has('subgroups'),
    eightLaneSubgroups: set.has('subgroups') && info.subgroupMinSize === 8 && info.subgroupMaxSize === 8,
    isCpu: adapter.info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${adapter.info.device} ${adapter.info.description}`),
  };
}

/** Throws unless the device has `shader-f16` (f16 tensors need it). */
export function requireF16(): void {
  if (ctx().hasF16) return;
  throw new Error(
    `f16 tensors need the WebGPU feature 'shader-f16', which this adapter (${describeAdapter(ctx())}) does not offer. ` +
      'Use f32 tensors (or --precision f32) on this adapter.',
  );
}

/** Opens the device on first call; later calls return the same one. */
export function gpuContext(): Promise<GpuContext> {
  pending ??= open().then((c) => (current = c));
  return pending;
}

/** The device, once `gpuContext()` has resolved (tensor ops are synchronous and need it). */
export function ctx(): GpuContext {
  if (!current) {
    throw new Error('The GPU is not initialised yet: `await init()` (from src/index.ts) before creating tensors.');
  }
  return current;
}

export function describeAdapter(c: GpuContext): string {
  const i = c.adapterInfo;
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' ');
}
