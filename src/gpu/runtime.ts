// Command batching: kernels are recorded into one command encoder and submitted together.
//
// Every dispatch gets its small parameter block (shapes, strides, scalars) in one shared uniform
// "ring" that is uploaded with a single writeBuffer right before the submit. Nothing here waits on
// the GPU except `readBuffer`, which is the only way data comes back (always async).
import { ctx, throwIfGpuError } from './device.ts';
import { beforeWrite } from './hazards.ts';
import { pool } from './pool.ts';
import { startingWait } from './poll.ts';
import { Profiler } from './profile.ts';

const SLOT = 256; // minUniformBufferOffsetAlignment on every adapter we know
const RING_BYTES = 64 * 1024 * 4;
const MAX_DISPATCHES_PER_SUBMIT = 512;

/** A storage buffer (a window of it with offset/size), or a texture view (`view`). */
export type Binding = { buffer: GPUBuffer; offset?: number; size?: number; view?: undefined } | { view: GPUTextureView; buffer?: undefined };

let limitOverride: number | null = null;
/** Tests shrink the storage-binding limit to exercise the windowed kernels on small tensors. */
export function setBindingLimit(bytes: number | null): void {
  limitOverride = bytes;
}
/** The largest storage binding kernels may use (the adapter's maxStorageBufferBindingSize). */
export function bindingLimit(): number {
  return limitOverride ?? ctx().limits.maxStorageBufferBindingSize;
}

/** A size for messages: whole MiB from 1 MiB up, else KiB (a shrunken test limit is not "0 MiB"). */
export function formatBytes(bytes: number): string {
  return bytes >= 2 ** 20 ? `${(bytes / 2 ** 20).toFixed(0)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

const F16_USE = /\bf16\b/;
const pipelines = new Map<string, GPUComputePipeline>();

/**
 * Bind groups are cached per pipeline and buffer set: the parameter block comes from the uniform
 * ring at a dynamic offset, so one group serves every dispatch over the same buffers (pooled
 * buffers recur from step to step). createBindGroup is most of a dispatch's JavaScript cost.
 */
interface BindCache {
  layout: GPUBindGroupLayout;
  resourceBindings: number;
  groups: Map<string, GPUBindGroup>;
}
const bindCaches = new WeakMap<GPUComputePipeline, BindCache>();
const liveCaches = new Set<BindCache>();
let cachedGroups = 0;
const MAX_CACHED_GROUPS = 16384;
const resourceIds = new WeakMap<GPUBuffer | GPUTextureView, number>();
let nextResourceId = 1;
const resourceId = (r: GPUBuffer | GPUTextureView) => resourceIds.get(r) ?? (resourceIds.set(r, nextResourceId), nextResourceId++);

/** Forgets every cached bind group (their buffers are about to be destroyed, or too many are held). */
export function clearBindGroupCache(): void {
  for (const c of liveCaches) c.groups.clear();
  cachedGroups = 0;
}

pool.beforeTrim.push(clearBindGroupCache);

const DECL = /@group\(0\)\s*@binding\((\d+)\)\s*var(?:<([^>]*)>)?\s+\w+\s*:\s*([^;]*);/g;

/**
 * The explicit layout of a shader whose bindings are the params uniform (0) and then storage
 * buffers, f32 textures or write-only rgba32float storage textures (1…n, in order); null for
 * anything else, which keeps layout 'auto'.
 */
function explicitLayout(device: GPUDevice, source: string): { layout: GPUBindGroupLayout; resourceBindings: number } | null {
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (const m of source.matchAll(DECL)) {
    const [binding, space, type] = [Number(m[1]), m[2]?.replace(/\s/g, '') ?? '', m[3].replace(/\s/g, '')];
    if (binding !== entries.length) return null;
    if (binding === 0) {
      if (space !== 'uniform') return null;
      entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } });
    } else if (space === 'storage' || space === 'storage,read') {
      entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } });
    } else if (space === 'storage,read_write') {
      entries.push({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } });
    } else if (type === 'texture_2d<f32>') {
      entries.push({ binding, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float' } });
    } else if (type === 'texture_storage_2d<rgba32float,write>') {
      entries.push({ binding, visibility: GPUShaderStage.COMPUTE, storageTexture: { access: 'write-only', format: 'rgba32float' } });
    } else {
      return null;
    }
  }
  if (entries.length === 0) return null;
  return { layout: device.createBindGroupLayout({ entries }), resourceBindings: entries.length - 1 };
}

/** Per pipeline, the indices in dispatch()'s `buffers` of the storage buffers it may write. */
const writtenBindings = new WeakMap<GPUComputePipeline, number[]>();

function writtenBuffers(source: string): number[] {
  const out: number[] = [];
  for (const m of source.matchAll(DECL)) if ((m[2] ?? '').replace(/\s/g, '') === 'storage,read_write') out.push(Number(m[1]) - 1);
  return out;
}

/** Compiles (once per distinct source) and caches a compute pipeline. */
export function pipeline(source: string, label = 'kernel'): GPUComputePipeline {
  let p = pipelines.get(source);
  if (!p) {
    const { device } = ctx();
    // Only shaders that touch f16 enable it (it must come before any declaration).
    const code = F16_USE.test(source) ? `enable f16;\n${source}` : source;
    const module = device.createShaderModule({ code, label });
    const explicit = explicitLayout(device, source);
    const layout = explicit ? device.createPipelineLayout({ bindGroupLayouts: [explicit.layout] }) : 'auto';
    p = device.createComputePipeline({ layout, compute: { module, entryPoint: 'main' }, label });
    if (explicit) {
      const cache = { ...explicit, groups: new Map<string, GPUBindGroup>() };
      bindCaches.set(p, cache);
      liveCaches.add(cache);
    }
    writtenBindings.set(p, writtenBuffers(source));
    pipelines.set(source, p);
  }
  return p;
}

export function pipelineCount(): number {
  return pipelines.size;
}

class Runtime {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private ring = new ArrayBuffer(RING_BYTES);
  private ringU32 = new Uint32Array(this.ring);
  private ringUsed = 0;
  private ringBuffer: GPUBuffer | null = null;
  private dispatches = 0;
  /** Buffers to return to the pool once the current batch is submitted. */
  private afterSubmit: GPUBuffer[] = [];
  stats = { dispatches: 0, submits: 0 };
  /** Set while profile() runs: every dispatch gets its own timestamped pass. */
  profiler: Profiler | null = null;
  /** Whether a profile is being taken (callers then name their dispatches in more detail). */
  get profiling(): boolean {
    return this.profiler !== null;
  }

  private ensurePass(): GPUComputePassEncoder {
    const { device } = ctx();
    this.ringBuffer ??= device.createBuffer({ size: RING_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.encoder ??= device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  private timedPass(label: string): GPUComputePassEncoder {
    this.ensurePass();
    this.pass!.end();
    this.pass = this.encoder!.beginComputePass({ timestampWrites: this.profiler!.passStamps(label) });
    return this.pass;
  }

  /** A compute pass on `encoder` for kernels recorded outside dispatch() (timestamped while profiling). */
  beginPass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    return encoder.beginComputePass(this.profiler ? { timestampWrites: this.profiler.passStamps(label) } : {});
  }

  private endPass(): GPUCommandEncoder {
    this.ensurePass();
    this.pass!.end();
    this.pass = null;
    return this.encoder!;
  }

  /**
   * Records one dispatch. `params` are 32-bit words (write floats through a Float32Array view of
   * the same ArrayBuffer); they arrive as binding 0, the buffers as bindings 1, 2, ... `detail`
   * (e.g. a matmul's shape) joins the kernel's label in profiles; build it only when `profiling`.
   */
  dispatch(pipe: GPUComputePipeline, params: Uint32Array, buffers: Binding[], workgroups: [number, number?, number?], detail?: string): void {
    // Deferred kernels that read a buffer this one writes are recorded first (they may dispatch).
    for (const i of writtenBindings.get(pipe) ?? []) {
      const b = buffers[i]?.buffer;
      if (b) beforeWrite(b);
    }
    const bytes = Math.max(16, Math.ceil(params.byteLength / 16) * 16); // whole vec4s, as declared
    const slotBytes = Math.ceil(bytes / SLOT) * SLOT;
    if (this.ringUsed + slotBytes > RING_BYTES || this.dispatches >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
    if (this.profiler && this.pass) this.endPass();
    // Profiles tell kernels of one family apart by their grid.
    const pass = this.profiler ? this.timedPass(`${pipe.label} ${workgroups.map((n) => n ?? 1).join('×')}${detail ? ` ${detail}` : ''}`) : this.ensurePass();
    const offset = this.ringUsed;
    this.ringU32.set(params, offset / 4);
    this.ringUsed += slotBytes;
    const maxBinding = bindingLimit();
    for (const b of buffers) {
      if (!b.buffer) continue;
      // (kernels split work into binding windows first; this guards the ones that cannot)
      const size = b.size ?? b.buffer.size - (b.offset ?? 0);
      if (size > maxBinding) {
        throw new Error(`${pipe.label}: a ${formatBytes(size)} buffer exceeds this adapter's maxStorageBufferBindingSize (${formatBytes(maxBinding)}); split the work into smaller tensors`);
      }
    }
    // The uniform at `uniformOffset` (0 where the offset is dynamic), then the buffers: built only
    // when a bind group is created.
    const entries = (uniformOffset: number): GPUBindGroupEntry[] => [
      { binding: 0, resource: { buffer: this.ringBuffer!, offset: uniformOffset, size: bytes } },
      ...buffers.map((b, i) => ({ binding: i + 1, resource: b.buffer ? { buffer: b.buffer, offset: b.offset ?? 0, size: b.size ?? b.buffer.size - (b.offset ?? 0) } : b.view })),
    ];
    const cache = bindCaches.get(pipe);
    pass.setPipeline(pipe);
    if (cache) {
      if (buffers.length !== cache.resourceBindings) throw new Error(`${pipe.label}: the shader declares ${cache.resourceBindings} resources after its parameters, the dispatch binds ${buffers.length}`);
      const key = `${bytes}|${buffers.map((b) => (b.buffer ? `${resourceId(b.buffer)}:${b.offset ?? 0}:${b.size ?? -1}` : `t${resourceId(b.view)}`)).join('|')}`;
      let group = cache.groups.get(key);
      if (!group) {
        if (cachedGroups >= MAX_CACHED_GROUPS) clearBindGroupCache();
        group = ctx().device.createBindGroup({ layout: cache.layout, entries: entries(0) });
        cache.groups.set(key, group);
        cachedGroups++;
      }
      pass.setBindGroup(0, group, [offset]);
    } else {
      pass.setBindGroup(0, ctx().device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: entries(offset) }));
    }
    const [x, y = 1, z = 1] = workgroups;
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.endPass();
    this.dispatches++;
    this.stats.dispatches++;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    beforeWrite(dst);
    this.endPass().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /**
   * Copies `rows` rows of 16-byte texels (rowTexels per row) from `src` into the top of a
   * 2-D texture, in order with the dispatches recorded around it.
   */
  copyToTexture(src: GPUBuffer, dst: GPUTexture, rowTexels: number, rows: number): void {
    this.endPass().copyBufferToTexture({ buffer: src, bytesPerRow: rowTexels * 16 }, { texture: dst }, [rowTexels, rows]);
  }

  /** Uploads host data. Flushes first: writeBuffer jumps ahead of unsubmitted recorded work. */
  write(dst: GPUBuffer, dstOffset: number, data: ArrayBufferView): void {
    beforeWrite(dst);
    this.flush();
    ctx().device.queue.writeBuffer(dst, dstOffset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Returns `buf` to the pool after the work recorded so far has been submitted. */
  releaseAfterSubmit(buf: GPUBuffer): void {
    this.afterSubmit.push(buf);
  }

  /** Submits everything recorded so far. Does not wait. */
  flush(): void {
    if (!this.encoder) return;
    const { device } = ctx();
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (this.ringUsed > 0) device.queue.writeBuffer(this.ringBuffer!, 0, this.ring, 0, this.ringUsed);
    device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.ringUsed = 0;
    this.dispatches = 0;
    this.stats.submits++;
    for (const b of this.afterSubmit) pool.release(b);
    this.afterSubmit.length = 0;
  }

  /** Resolves when everything submitted so far has run (Dawn's polling is paced, see poll.ts). */
  private async waitDone(): Promise<void> {
    startingWait();
    await ctx().device.queue.onSubmittedWorkDone();
  }

  /** Copies `bytes` from `src` back to the host. The only place the engine waits for the GPU. */
  async readBuffer(src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
    const aligned = Math.ceil(bytes / 4) * 4;
    const staging = pool.acquire(aligned, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    this.copy(src, offset, staging, 0, aligned);
    this.flush();
    // mapAsync resolves once the copy (and so everything before it) has run.
    startingWait();
    await staging.mapAsync(GPUMapMode.READ, 0, aligned);
    const out = staging.getMappedRange(0, aligned).slice(0, bytes);
    staging.unmap();
    pool.release(staging);
    throwIfGpuError();
    return out;
  }

  /** Resolves when all submitted work has finished (for benchmarks). */
  async sync(): Promise<void> {
    this.flush();
    await this.waitDone();
  }
}

export const runtime = new Runtime();

/**
 * Runs `fn` (which records GPU work) with every kernel timed, waits for it, and returns the GPU
 * milliseconds and dispatch counts per kernel label, largest first. Needs 'timestamp-query'.
 */
export async function profile(fn: () => void): Promise<Map<string, { ms: number; count: number }>> {
  if (!ctx().features.has('timestamp-query')) throw new Error("profile(): this adapter lacks the 'timestamp-query' feature");
  await runtime.sync();
  runtime.profiler = new Profiler();
  try {
    fn();
    await runtime.sync();
    return await runtime.profiler.report();
  } finally {
    runtime.profiler = null;
  }
}
