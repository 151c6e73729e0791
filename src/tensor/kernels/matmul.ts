// Batched matmul over strided operands. Batch dims must flatten to one stride per operand
// (true for contiguous tensors, their transposes and broadcasts of a single matrix).
//
// Three kernels:
// - "simple" (shaders/matmul.wgsl): a 4×4 register tile per invocation reading A and B through
//   their strides. Works on any adapter, records into the shared runtime batch, best for small
//   products. ≈ 5 GFLOP/s on lavapipe.
// - "tex" (shaders/matmul_tex.wgsl + matmul_pack_{a,b}.wgsl): for lavapipe-like adapters
//   (subgroups of exactly 8 lanes). A and B are first packed into zero-padded rgba32float textures,
//   then one subgroup computes a 32 × 64 tile of C sharing A values by subgroupShuffle. On the
//   2-core CI machine (`npm run bench -- --quick`, 2026-12-03): 33 GFLOP/s wall at 1024³, 35–36 at
//   the GPT-2 shapes (packing included), 35–38 per second of lavapipe worker-thread CPU. Packing
//   costs 3–10 %. See matmul_tex.wgsl for why textures and this tile.
// - "tiled" (shaders/matmul_tiled.wgsl): workgroup-shared tiles and 4×4 or 8×8 register blocks,
//   the usual GPU design, for adapters that are not CPUs (on lavapipe it makes 5–11 GFLOP/s).
//
// The tex path binds textures, which `runtime.dispatch` (buffers only) cannot, so it flushes the
// runtime's batch and submits its own command buffer (one extra submit, ≈ 0.1 ms, per call). It is
// only chosen where the modelled time says it wins, which also keeps that overhead off tiny ops.
// The two packing textures are kept between calls (grown on demand, up to 256 MiB each; not counted
// in memoryStats()), as are the storage buffers the packing kernels write where they fit one
// binding (a texel buffer copied into the texture: half the cost of storing into the texture on
// lavapipe); releaseMatmulScratch() frees them.
import { ctx } from '../../gpu/device.ts';
import { bindingLimit, pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';

export interface MatOperand {
  storage: Storage;
  offset: number;
  batchStride: number;
  rowStride: number;
  colStride: number;
}

export type MatmulStrategy = 'auto' | 'simple' | 'tex' | 'tiled';

let strategy: MatmulStrategy = 'auto';

/** Forces a kernel (tests, benchmarks). 'tex' still falls back to 'simple' where it cannot run; 'tiled' runs anywhere. */
export function setMatmulStrategy(s: MatmulStrategy): void {
  strategy = s;
}

/**
 * The kernel variant the last matmulKernel call used: 'simple', 'tiled…', or 'tex(a:…,b:…)' naming
 * each operand's packing load ('vec4' or 'gather'), with ';textureStore' where an operand was
 * packed straight into its texture. Tests use it to check that every variant ran.
 */
export let lastMatmulKernel = 'none';

/** C = A·B into a new [batch, M, N] storage of `outDtype`; operands may be f32 or f16 (f32 sums either way). */
export function matmulKernel(a: MatOperand, b: MatOperand, batch: number, M: number, N: number, K: number, outDtype: 'f32' | 'f16' = 'f32'): Storage {
  const out = Storage.allocate(batch * M * N, outDtype);
  if (batch * M * N === 0) return out;
  // B shared by every batch entry and A's matrices back to back: one tall matrix [batch·M, K].
  if (batch > 1 && b.batchStride === 0 && (M === 1 || a.batchStride === M * a.rowStride) && batch * M <= MAX_ROWS) {
    a = M === 1 ? { ...a, rowStride: a.batchStride } : a;
    M *= batch;
    batch = 1;
  }
  const tiled = tiledBlock(batch, M, N, K);
  if (useTex(batch, M, N, K)) {
    lastMatmulKernel = texMatmul(out, a, b, batch, M, N, K);
  } else if (tiled) {
    lastMatmulKernel = tiledMatmul(out, a, b, batch, M, N, K, tiled);
  } else {
    simpleMatmul(out, a, b, batch, M, N, K);
    lastMatmulKernel = 'simple';
  }
  return out;
}

// ---------------------------------------------------------------- simple kernel

const simpleSources = new Map<string, string>();

function simpleMatmul(out: Storage, a: MatOperand, b: MatOperand, batch: number, M: number, N: number, K: number): void {
  const words = [M, N, K, a.offset, a.batchStride, a.rowStride, a.colStride, b.offset, b.batchStride, b.rowStride, b.colStride, 0];
  const types = { A_TYPE: a.storage.dtype, B_TYPE: b.storage.dtype, C_TYPE: out.dtype };
  const key = Object.values(types).join();
  let source = simpleSources.get(key);
  if (!source) simpleSources.set(key, (source = fillTemplate('matmul', { PARAMS: paramsBlock(words.length), ...types })));
  dispatchPerBatch(pipeline(source, 'matmul'), words, out, a, b, batch, M * N, [Math.ceil(N / 32), Math.ceil(M / 32)]);
}

/** A product's shape for profiles: grids alone do not tell the LM head's dX from a layer's x·W. */
function shapeTag(batch: number, M: number, K: number, N: number): string {
  return `${batch > 1 ? `${batch}× ` : ''}[${M}×${K}]·[${K}×${N}]`;
}

/**
 * Dispatches a kernel taking matmul.wgsl's parameter words (3 A offset, 7 B offset, 11 C offset)
 * with the batch on wid.z; more than 65,535 matrices are split into several dispatches.
 */
function dispatchPerBatch(pipe: GPUComputePipeline, words: number[], out: Storage, a: MatOperand, b: MatOperand, batch: number, cPerBatch: number, gridXY: [number, number]): void {
  const tag = runtime.profiling ? shapeTag(batch, words[0], words[2], words[1]) : undefined;
  for (let b0 = 0; b0 < batch; b0 += 65535) {
    const w = [...words];
    w[3] = a.offset + b0 * a.batchStride;
    w[7] = b.offset + b0 * b.batchStride;
    w[11] = b0 * cPerBatch;
    runtime.dispatch(pipe, new Uint32Array(w), [out, a.storage, b.storage].map((s) => ({ buffer: s.buffer })), [...gridXY, Math.min(65535, batch - b0)], tag);
  }
}

// ---------------------------------------------------------------- tiled kernel (GPUs)

/**
 * The register block (4 or 8) of the tiled kernel for this product, or 0 for none. On GPUs it
 * takes every product big enough to fill its tiles: 128×128 tiles when there are enough of them
 * to keep a large GPU busy, 64×64 ones otherwise. Not measured on a GPU yet (no device was lent):
 * the thresholds are the usual SGEMM choices, to be tuned with `npm run bench` there.
 */
function tiledBlock(batch: number, M: number, N: number, K: number): 0 | 4 | 8 {
  if (strategy === 'simple' || strategy === 'tex' || K === 0) return 0;
  if (strategy === 'auto' && (ctx().isCpu || M < 32 || N < 32 || K < 16)) return 0;
  return batch * Math.ceil(M / 128) * Math.ceil(N / 128) >= 128 ? 8 : 4;
}

const TILE_K = 16;
const tiledSources = new Map<string, string>();

/** The unrolled parts of matmul_tiled.wgsl for a T×T block (T/4 row quads × T/4 column quads). */
function tiledBody(T: 4 | 8, aFast: 'k' | 'm', bFast: 'k' | 'n'): Record<string, string | number> {
  const G = T / 4;
  const BM = 64 * G;
  const acc: string[] = [];
  const fma: string[] = [];
  const store: string[] = [];
  for (let g = 0; g < G; g++) fma.push(`      let a${g} = As[kk * Q + ty + ${16 * g}u];`);
  for (let h = 0; h < G; h++) fma.push(`      let b${h} = Bs[kk * Q + tx + ${16 * h}u];`);
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < 4; i++) {
      for (let h = 0; h < G; h++) {
        const v = `c${g}_${i}_${h}`;
        acc.push(`  var ${v} = vec4<f32>(0.0);`);
        fma.push(`      ${v} = fma(vec4<f32>(a${g}[${i}]), b${h}, ${v});`);
        store.push(`  store(m0 + (ty + ${16 * g}u) * 4u + ${i}u, n0 + (tx + ${16 * h}u) * 4u, M, N, cBase, ${v});`);
      }
    }
  }
  const [am, ak] = aFast === 'k' ? ['e / BK', 'e % BK'] : ['e % BM', 'e / BM'];
  const [bn, bk] = bFast === 'n' ? ['e % BM', 'e / BM'] : ['e / BK', 'e % BK'];
  const copy = [
    `      let am = ${am};`,
    `      let ak = ${ak};`,
    `      As[ak * Q + am / 4u][am % 4u] = loadA(aBase, m0 + am, k0 + ak, M, K);`,
    `      let bn = ${bn};`,
    `      let bk = ${bk};`,
    `      Bs[bk * Q + bn / 4u][bn % 4u] = loadB(bBase, k0 + bk, n0 + bn, K, N);`,
  ];
  const j = (x: string[]) => x.join('\n');
  return { BM, BK: TILE_K, T, A_FAST: aFast, B_FAST: bFast, ACC: j(acc), FMA: j(fma), STORE: j(store), COPY: j(copy) };
}

function tiledMatmul(out: Storage, a: MatOperand, b: MatOperand, batch: number, M: number, N: number, K: number, T: 4 | 8): string {
  // Walk each operand's contiguous dimension across invocations (A [M, K]: k if its columns are
  // adjacent; B [K, N]: n if its columns are).
  const aFast = a.colStride <= a.rowStride ? 'k' : 'm';
  const bFast = b.colStride <= b.rowStride ? 'n' : 'k';
  const types = { A_TYPE: a.storage.dtype, B_TYPE: b.storage.dtype, C_TYPE: out.dtype };
  const key = [...Object.values(types), T, aFast, bFast].join();
  let source = tiledSources.get(key);
  if (!source) tiledSources.set(key, (source = fillTemplate('matmul_tiled', { PARAMS: paramsBlock(12), ...types, ...tiledBody(T, aFast, bFast) })));
  const BM = 16 * T;
  const words = [M, N, K, a.offset, a.batchStride, a.rowStride, a.colStride, b.offset, b.batchStride, b.rowStride, b.colStride, 0];
  dispatchPerBatch(pipeline(source, 'matmul-tiled'), words, out, a, b, batch, M * N, [Math.ceil(N / BM), Math.ceil(M / BM)]);
  return `tiled${T}(a:${aFast},b:${bFast})`;
}

// ---------------------------------------------------------------- tex kernel

const R = 32; // rows per subgroup tile
const COLS = 64; // columns per subgroup tile
const TEX_W = 8192; // texture width in texels (the index math in the shaders hard-codes 8192)
const MAX_TEXELS = TEX_W * 2048; // per texture: 256 MiB
const MAX_ROWS = 65535 * R;

function texSupported(): boolean {
  const c = ctx();
  return c.eightLaneSubgroups && c.limits.maxTextureDimension2D >= TEX_W;
}

let texOk: boolean | null = null;

/** Texels of one packed A ([row tile][K4][R]) and one packed B ([panel][Kp][16]). */
function texels(M: number, N: number, K: number): [number, number] {
  const K4 = Math.ceil(K / 4);
  return [Math.ceil(M / R) * R * K4, Math.ceil(N / COLS) * K4 * 4 * (COLS / 4)];
}

function useTex(batch: number, M: number, N: number, K: number): boolean {
  if (strategy === 'simple' || strategy === 'tiled' || K === 0) return false;
  texOk ??= texSupported();
  if (!texOk) return false;
  // Grid limits (x: column panels, y: row tiles) and one matrix's packing must fit a texture.
  if (Math.ceil(N / COLS) > 65535 || Math.ceil(M / R) > 65535 || Math.ceil(K / 16) * R > 65535 * 64) return false;
  const [ta, tb] = texels(M, N, K);
  if (ta > MAX_TEXELS || tb > MAX_TEXELS) return false;
  if (strategy === 'tex') return true;
  // The cost model below is lavapipe's; a GPU with 8-lane subgroups gets the tiled kernel.
  if (!ctx().isCpu) return false;
  // Modelled wall time (seconds) of both paths on lavapipe; tiles are padded, so small or thin
  // products waste part of the tex kernel's work.
  const pad = (x: number, m: number) => Math.ceil(x / m) * m;
  const simple = (2 * batch * pad(M, 4) * pad(N, 4) * K) / 5e9 + 30e-6;
  const tex = (2 * batch * pad(M, R) * pad(N, COLS) * pad(K, 4)) / 40e9 + (batch * (ta + tb) * 4) / 1.5e9 + 200e-6;
  return tex < simple;
}

class GrowTexture {
  private tex: GPUTexture | null = null;
  private view: GPUTextureView | null = null;
  constructor(private readonly label: string) {}
  /** A texture of at least `count` texels (grown, never shrunk; a replaced one dies after its work). */
  get(count: number): { texture: GPUTexture; view: GPUTextureView } {
    const height = Math.max(1, Math.ceil(count / TEX_W));
    if (!this.tex || this.tex.height < height) {
      // Recorded dispatches may still name the old texture: submit them before destroying it.
      if (this.tex) runtime.flush();
      this.tex?.destroy();
      this.tex = ctx().device.createTexture({
        size: [TEX_W, Math.min(MAX_TEXELS / TEX_W, Math.max(height, 2 ** Math.ceil(Math.log2(height))))],
        format: 'rgba32float',
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
        label: this.label,
      });
      this.view = this.tex.createView();
    }
    return { texture: this.tex, view: this.view! };
  }
  release(): void {
    if (this.tex) runtime.flush();
    this.tex?.destroy();
    this.tex = this.view = null;
  }
}

/** A storage buffer of at least `bytes` (grown, never shrunk) that packing kernels write texels to. */
class GrowBuffer {
  private buf: GPUBuffer | null = null;
  constructor(private readonly label: string) {}
  get(bytes: number): GPUBuffer {
    if (!this.buf || this.buf.size < bytes) {
      this.release();
      const size = Math.min(bindingLimit(), Math.max(bytes, 2 ** Math.ceil(Math.log2(bytes))));
      this.buf = ctx().device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, label: this.label });
    }
    return this.buf;
  }
  release(): void {
    if (this.buf) runtime.flush();
    this.buf?.destroy();
    this.buf = null;
  }
}

const texA = new GrowTexture('matmul-a');
const texB = new GrowTexture('matmul-b');
const stageA = new GrowBuffer('matmul-a-texels');
const stageB = new GrowBuffer('matmul-b-texels');

/** Frees the packing textures and buffers (they are kept between calls and regrown on demand). */
export function releaseMatmulScratch(): void {
  for (const s of [texA, texB, stageA, stageB]) s.release();
}

/**
 * Records one packing kernel into `tex`: through a texel buffer and a copy where `texels` fit one
 * binding, else with textureStore.
 */
function pack(kind: 'a' | 'b', dtype: 'f32' | 'f16', vec4: boolean, words: Uint32Array, src: Storage, tex: GPUTexture, view: GPUTextureView, texels: number, grid: [number, number, number], tag?: string): boolean {
  const rows = Math.ceil(texels / TEX_W);
  const bytes = rows * TEX_W * 16;
  const staged = packThroughBuffer && bytes <= bindingLimit();
  const pipe = pipeline(source(kind, dtype, vec4, staged), `matmul-pack-${kind}`);
  if (!staged) {
    runtime.dispatch(pipe, words, [{ buffer: src.buffer }, { view }], grid, tag);
    return false;
  }
  const stage = (kind === 'a' ? stageA : stageB).get(bytes);
  runtime.dispatch(pipe, words, [{ buffer: src.buffer }, { buffer: stage, size: bytes }], grid, tag);
  runtime.copyToTexture(stage, tex, TEX_W, rows);
  return true;
}

let packThroughBuffer = true;
/** Packs with textureStore even where a texel buffer fits (tests check that both paths agree). */
export function setPackThroughBuffer(on: boolean): void {
  packThroughBuffer = on;
}

/** The unrolled parts of matmul_tex.wgsl for an R × 64 tile. */
function body(): Record<string, string> {
  const acc: string[] = [];
  const load: string[] = [];
  const fma: string[] = [];
  const store: string[] = [];
  for (let r = 0; r < R; r++) acc.push(`  var c${r}_0 = vec4<f32>(0.0);\n  var c${r}_1 = vec4<f32>(0.0);`);
  for (let i = 0; i < R / 8; i++) load.push(`    let a${i} = texel(at, ai + ${8 * i}u);`);
  for (let q = 0; q < 4; q++) load.push(`    let b${q}_0 = texel(bt, bi + ${16 * q}u);\n    let b${q}_1 = texel(bt, bi + ${16 * q + 8}u);`);
  for (let r = 0; r < R; r++) {
    for (let q = 0; q < 4; q++) {
      const v = `s${r}_${q}`;
      fma.push(`    let ${v} = vec4<f32>(subgroupShuffle(a${r >> 3}[${q}], ${r & 7}u));`);
      fma.push(`    c${r}_0 = fma(${v}, b${q}_0, c${r}_0);\n    c${r}_1 = fma(${v}, b${q}_1, c${r}_1);`);
    }
  }
  for (let r = 0; r < R; r++) {
    store.push(`  tile[${2 * r}] = c${r}_0;\n  tile[${2 * r + 1}] = c${r}_1;`);
  }
  const j = (x: string[]) => x.join('\n');
  return { ACC: j(acc), LOAD: j(load), FMA: j(fma), STORE: j(store) };
}

// load4 of matmul_pack_{a,b}.wgsl: a strided gather with zeros past `n`, or one aligned vec4 load.
// f16 operands are widened here, so the textures (and the matmul loop) are f32 either way.
const GATHER4 = `  if (i0 + 3u < n) {
    return vec4<f32>(f32(src[base + i0 * cs]), f32(src[base + (i0 + 1u) * cs]), f32(src[base + (i0 + 2u) * cs]), f32(src[base + (i0 + 3u) * cs]));
  }
  var v = vec4<f32>(0.0);
  for (var q = 0u; q < 4u; q++) {
    if (i0 + q < n) { v[q] = f32(src[base + (i0 + q) * cs]); }
  }
  return v;`;
const VEC4 = '  return vec4<f32>(src[(base + i0) >> 2u]);';

// The packing kernels' destination: the texture, or a texel buffer in the same order.
const TO_TEXTURE = {
  DST: '@group(0) @binding(2) var dst: texture_storage_2d<rgba32float, write>;',
  STORE: 'textureStore(dst, vec2<u32>(t & 8191u, t >> 13u), v);',
};
const TO_BUFFER = { DST: '@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;', STORE: 'dst[t] = v;' };

const sourceCache = new Map<string, string>();
/** Pack kernels per operand dtype (`dtype`) and destination (`staged`: a buffer), the main kernel per output dtype. */
function source(kind: 'a' | 'b' | 'main', dtype: 'f32' | 'f16' | 'i32', vec4 = false, staged = false): string {
  const key = `${kind}${dtype}${vec4}${staged}`;
  let s = sourceCache.get(key);
  if (!s) {
    if (kind === 'main') s = fillTemplate('matmul_tex', { PARAMS: paramsBlock(7), R, R2: 2 * R, C_TYPE: dtype, ...body() });
    else s = fillTemplate(`matmul_pack_${kind}`, { PARAMS: paramsBlock(8), R, ELEM: vec4 ? `vec4<${dtype}>` : dtype, LOAD4: vec4 ? VEC4 : GATHER4, ...(staged ? TO_BUFFER : TO_TEXTURE) });
    sourceCache.set(key, s);
  }
  return s;
}

function texMatmul(out: Storage, a: MatOperand, b: MatOperand, batch: number, M: number, N: number, K: number): string {
  const aBroadcast = batch > 1 && a.batchStride === 0;
  const bBroadcast = batch > 1 && b.batchStride === 0;
  const K4 = Math.ceil(K / 4);
  const Kp = K4 * 4;
  const rowTiles = Math.ceil(M / R);
  const panels = Math.ceil(N / COLS);
  const [perA, perB] = texels(M, N, K);
  // Contiguous, 16-byte-aligned rows of whole vec4s are read with vec4 loads.
  const aligned = (o: MatOperand, n: number) => o.colStride === 1 && n % 4 === 0 && o.offset % 4 === 0 && o.rowStride % 4 === 0 && o.batchStride % 4 === 0;
  const aVec = aligned(a, K);
  const bVec = aligned(b, N);
  const pMain = pipeline(source('main', out.dtype), 'matmul-tex');
  const chunk = Math.max(1, Math.min(65535, Math.floor(MAX_TEXELS / Math.max(aBroadcast ? 0 : perA, bBroadcast ? 0 : perB, 1))));
  // Recorded with everything else: within a pass each dispatch sees the writes of the ones
  // before it, so the packing textures can be rewritten by the next product straight away.
  let staged = true;
  for (let b0 = 0; b0 < batch; b0 += chunk) {
    const nb = Math.min(chunk, batch - b0);
    const na = aBroadcast ? 1 : nb;
    const nbB = bBroadcast ? 1 : nb;
    const A = texA.get(na * perA);
    const B = texB.get(nbB * perB);
    const words = (w: number[]) => Uint32Array.from(w);
    const tag = runtime.profiling ? shapeTag(nb, M, K, N) : undefined;
    const aWords = words([M, K, K4, a.offset + b0 * a.batchStride, a.batchStride, a.rowStride, a.colStride, perA]);
    const aStaged = pack('a', a.storage.dtype as 'f32' | 'f16', aVec, aWords, a.storage, A.texture, A.view, na * perA, [Math.ceil((Math.ceil(K4 / 4) * R) / 64), rowTiles, na], tag);
    const bWords = words([N, K, Kp, b.offset + b0 * b.batchStride, b.batchStride, b.rowStride, b.colStride, perB]);
    const bStaged = pack('b', b.storage.dtype as 'f32' | 'f16', bVec, bWords, b.storage, B.texture, B.view, nbB * perB, [Math.ceil((K4 * 16) / 64), panels, nbB], tag);
    staged = staged && aStaged && bStaged;
    runtime.dispatch(pMain, words([M, N, K4, aBroadcast ? 0 : perA, bBroadcast ? 0 : perB, b0 * M * N, Kp * 16]), [{ buffer: out.buffer }, { view: A.view }, { view: B.view }], [panels, rowTiles, nb], tag);
  }
  return `tex(a:${aVec ? 'vec4' : 'gather'},b:${bVec ? 'vec4' : 'gather'}${staged ? '' : ';textureStore'})`;
}
