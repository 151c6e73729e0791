// Fused causal attention forward: out [B, H, T, D] contiguous and the logsumexp of each row's
// scaled, masked scores [B, H, T], from strided q, k, v views whose last axis is contiguous
// (GPT-2's heads are permuted views of one qkv buffer: no copies).
//
// Two kernels, the same results:
// - "subgroup" (shaders/attention.wgsl), for lavapipe: one 8-lane subgroup per 16 query rows,
//   k/v rows handed between lanes by subgroupShuffle. Needs subgroups whose 8 lanes are the
//   workgroup's 8 invocations.
// - "tiled" (shaders/attention_tiled.wgsl), for everything else (GPUs): 64 invocations per 64 query
//   rows, k/v tiles in workgroup memory. Core WebGPU only, so it runs on any adapter; on lavapipe
//   tests force it with setAttentionKernel('tiled').
// D is baked into both shaders, so each head size compiles its own pipeline (GPT-2 uses one).
import { ctx } from '../../gpu/device.ts';
import { pipeline, runtime } from '../../gpu/runtime.ts';
import { fillTemplate, paramsBlock } from '../../gpu/shaders.ts';
import { Storage } from '../storage.ts';

export interface AttnOperand {
  storage: Storage;
  offset: number;
  /** Strides of the batch, head and row (time) axes; the D axis has stride 1. */
  strides: [number, number, number];
}

/**
 * Largest head size the fused kernel is used for: registers per lane and the cold shader compile
 * time grow with D (D = 64, GPT-2's, is the largest measured and tested).
 */
export const MAX_FUSED_HEAD_DIM = 64;

export type AttentionKernel = 'auto' | 'subgroup' | 'tiled';
let kernelChoice: AttentionKernel = 'auto';

/** Forces one forward kernel (tests, benchmarks); 'subgroup' still falls back to 'tiled' where it cannot run. */
export function setAttentionKernel(k: AttentionKernel): void {
  kernelChoice = k;
}

/** The kernel the last attentionKernel call ran (tests check that both ran). */
export let lastAttentionKernel: 'subgroup' | 'tiled' | 'none' = 'none';

/** Whether this adapter has the 8-lane subgroups the lavapipe kernel needs. */
export function subgroupKernelRuns(): boolean {
  return ctx().eightLaneSubgroups;
}

/** Query rows per invocation and invocations per workgroup of each kernel. */
const SHAPES = {
  // Measured on lavapipe: see shaders/attention.wgsl for why 2 rows per lane.
  subgroup: { R: 2, WG: 8 },
  // First guesses, not yet tuned on a GPU (none lent so far): 64 rows per workgroup, 32-key tiles.
  tiled: { R: 1, WG: 64 },
} as const;
const TILE_KEYS = 32;

const sources = new Map<string, string>();

/**
 * The parameter words and bindings both kernels declare ({{IO}} in their shaders). P: 0 T, 1 H,
 * 2 q offset, 3 q batch stride, 4 q head stride, 5 q row stride, 6..9 the same for k, 10..13 for
 * v, 14 scale (f32 bits), 15 first (batch·head) of this dispatch; offsets and strides count
 * elements of the bound arrays (vec4s when q, k, v are read as vec4).
 */
const ioBlock = (elem: string) =>
  [
    paramsBlock(16),
    '@group(0) @binding(1) var<storage, read_write> out: array<f32>;',
    '@group(0) @binding(2) var<storage, read_write> lse: array<f32>;',
    ...['q', 'k', 'v'].map((n, i) => `@group(0) @binding(${i + 3}) var<storage, read> ${n}: array<${elem}>;`),
    '',
    '// Masked scores: finite, so exp() of them is exactly 0 and no inf − inf can appear.',
    'const NEG = -3.0e38;',
  ].join('\n');

/**
 * The shader of `kind` for head size D: per-row and per-element statements unrolled, elements
 * ≥ D left out. With `vec4`, q, k, v are bound as vec4 arrays (one load per 4 floats: D % 4 = 0
 * and every offset and stride a multiple of 4).
 */
export function attentionSource(kind: 'subgroup' | 'tiled', D: number, vec4: boolean): string {
  const key = `${kind}/${D}/${vec4}`;
  let s = sources.get(key);
  if (s) return s;
  const { R, WG } = SHAPES[kind];
  const ROWS = R * WG;
  const D4 = Math.ceil(D / 4);
  const chunks = Array.from({ length: D4 }, (_, c) => c);
  const rows = Array.from({ length: R }, (_, r) => r);
  // Elements 4c … 4c+3 of the row at `base` in `buf`, as a vec4 (zeros past D).
  const load = (buf: string, base: string, c: number) =>
    vec4
      ? `${buf}[${base} + ${c}u]`
      : `vec4<f32>(${[0, 1, 2, 3].map((e) => (4 * c + e < D ? `${buf}[${base} + ${4 * c + e}u]` : '0.0')).join(', ')})`;
  const each = (f: (c: number) => string) => chunks.map(f).join('\n');
  const lane = kind === 'subgroup' ? 'lane' : 't';
  const initRow = (r: number) => [
    `  let i${r} = wid.x * ${ROWS}u + ${WG * r}u + ${lane};`,
    `  let row${r} = min(i${r}, T - 1u);`,
    `  let qr${r} = qb + row${r} * P(5u);`,
    each((c) => `  let q${r}_${c} = ${load('q', `qr${r}`, c)} * scale;`),
    each((c) => `  var acc${r}_${c} = vec4<f32>(0.0);`),
    `  var m${r} = NEG;`,
    `  var l${r} = 0.0;`,
  ].join('\n');
  // The subgroup kernel rescales when any lane's row needs it (one uniform branch); the tiled
  // kernel's invocations decide for themselves.
  const needsRescale = (r: number) => (kind === 'subgroup' ? `subgroupAny(s${r} > m${r} + 8.0)` : `s${r} > m${r} + 8.0`);
  const perKeyRow = (r: number) => [
    `      let s${r} = select(${chunks.map((c) => `dot(q${r}_${c}, kk${c})`).join(' + ')}, NEG, j > row${r});`,
    `      if (${needsRescale(r)}) {`,
    `        let mNew = max(m${r}, s${r});`,
    `        let corr = exp(m${r} - mNew);`,
    `        l${r} *= corr;`,
    each((c) => `        acc${r}_${c} *= corr;`),
    `        m${r} = mNew;`,
    `      }`,
    `      let p${r} = exp(s${r} - m${r});`,
    `      l${r} += p${r};`,
    each((c) => `      acc${r}_${c} += p${r} * vv${c};`),
  ].join('\n');
  const storeRow = (r: number) => [
    `  if (i${r} < T) {`,
    `    let inv = 1.0 / l${r};`,
    `    let ob = (bh * T + i${r}) * ${D}u;`,
    ...chunks.flatMap((c) => [0, 1, 2, 3].filter((e) => 4 * c + e < D).map((e) => `    out[ob + ${4 * c + e}u] = acc${r}_${c}[${e}] * inv;`)),
    `    lse[bh * T + i${r}] = m${r} + log(l${r});`,
    `  }`,
  ].join('\n');
  const common = {
    IO: ioBlock(vec4 ? 'vec4<f32>' : 'f32'),
    D,
    D4,
    R,
    ROWS,
    INIT_ROWS: rows.map(initRow).join('\n'),
    STORE: rows.map(storeRow).join('\n'),
  };
  if (kind === 'subgroup') {
    s = fillTemplate('attention', {
      ...common,
      LOAD_KV: [each((c) => `    let k${c} = ${load('k', 'kr', c)};`), each((c) => `    let v${c} = ${load('v', 'vr', c)};`)].join('\n'),
      PER_KEY: [
        `      let j = j0 + jj;`,
        each((c) => `      let kk${c} = subgroupShuffle(k${c}, jj);`),
        each((c) => `      let vv${c} = subgroupShuffle(v${c}, jj);`),
        ...rows.map(perKeyRow),
      ].join('\n'),
    });
  } else {
    // chunkK/chunkV: elements 4c … 4c+3 of a k or v row with c only known at run time.
    const chunkFn = (buf: string) =>
      vec4
        ? `fn chunk${buf.toUpperCase()}(base: u32, c: u32) -> vec4<f32> { return ${buf}[base + c]; }`
        : [
            `fn chunk${buf.toUpperCase()}(base: u32, c: u32) -> vec4<f32> {`,
            `  var x = vec4<f32>(0.0);`,
            `  for (var e = 0u; e < 4u; e++) { if (4u * c + e < ${D}u) { x[e] = ${buf}[base + 4u * c + e]; } }`,
            `  return x;`,
            `}`,
          ].join('\n');
    s = fillTemplate('attention_tiled', {
      ...common,
      WG,
      BC: TILE_KEYS,
      BC_D4: TILE_KEYS * D4,
      LAST_ROW: `row${R - 1}`,
      CHUNK_FNS: [chunkFn('k'), chunkFn('v')].join('\n'),
      PER_KEY: [each((c) => `      let kk${c} = ks[jj * ${D4}u + ${c}u];`), each((c) => `      let vv${c} = vs[jj * ${D4}u + ${c}u];`), ...rows.map(perKeyRow)].join('\n'),
    });
  }
  sources.set(key, s);
  return s;
}

/** Runs the fused forward; returns new storages out [B·H·T·D] and lse [B·H·T]. */
export function attentionKernel(q: AttnOperand, k: AttnOperand, v: AttnOperand, B: number, H: number, T: number, D: number): { out: Storage; lse: Storage } {
  if (D < 1 || D > MAX_FUSED_HEAD_DIM) throw new Error(`fused causal attention supports head sizes 1…${MAX_FUSED_HEAD_DIM}, got D = ${D}; nn.causalAttention uses the composed op for larger heads`);
  const out = Storage.allocate(B * H * T * D, 'f32');
  const lse = Storage.allocate(B * H * T, 'f32');
  if (B * H * T * D === 0) return { out, lse };
  // vec4 loads need every offset and stride (in floats) to be a multiple of 4.
  const vec4 = D % 4 === 0 && [q, k, v].every((o) => o.offset % 4 === 0 && o.strides.every((st) => st % 4 === 0));
  const unit = vec4 ? 4 : 1;
  const words = new Uint32Array(16);
  words.set([T, H, ...[q, k, v].flatMap((o) => [o.offset, ...o.strides].map((w) => w / unit))]);
  new Float32Array(words.buffer)[14] = 1 / Math.sqrt(D);
  const kind = kernelChoice !== 'tiled' && subgroupKernelRuns() ? 'subgroup' : 'tiled';
  lastAttentionKernel = kind;
  const ROWS = SHAPES[kind].R * SHAPES[kind].WG;
  const pipe = pipeline(attentionSource(kind, D, vec4), `attention_${kind}_d${D}${vec4 ? '_vec4' : ''}`);
  const bindings = [out, lse, q.storage, k.storage, v.storage].map((s) => ({ buffer: s.buffer }));
  // wid.y carries (batch, head); more than 65,535 of them go in several dispatches.
  for (let bh0 = 0; bh0 < B * H; bh0 += 65535) {
    const w = words.slice();
    w[15] = bh0;
    runtime.dispatch(pipe, w, bindings, [Math.ceil(T / ROWS), Math.min(65535, B * H - bh0)]);
  }
  return { out, lse };
}
