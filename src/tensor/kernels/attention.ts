// Fused causal attention forward (shaders/attention.wgsl): out [B, H, T, D] contiguous and the
// logsumexp of each row's scaled, masked scores [B, H, T], from strided q, k, v views whose last
// axis is contiguous (GPT-2's heads are permuted views of one qkv buffer: no copies).
//
// The kernel needs 8-lane subgroups whose lanes are the workgroup's 8 invocations (lavapipe);
// fusedAttentionSupported() says whether this adapter has them. D is baked into the shader, so
// each head size compiles its own pipeline (GPT-2 uses one).
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

let supported: boolean | null = null;

export function fusedAttentionSupported(): boolean {
  if (supported !== null) return supported;
  const c = ctx();
  const info = c.adapterInfo as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  supported = c.hasSubgroups && info.subgroupMinSize === 8 && info.subgroupMaxSize === 8;
  return supported;
}

/** Query rows per lane (see shaders/attention.wgsl for the measurements behind 2). */
const R = 2;
const ROWS = 8 * R;

const sources = new Map<string, string>();

/**
 * The shader for head size D: per-row and per-element statements unrolled, elements ≥ D left
 * out. With `vec4`, q, k, v are bound as vec4 arrays (one load per 4 floats: D % 4 = 0 and every
 * offset and stride a multiple of 4).
 */
export function attentionSource(D: number, vec4: boolean): string {
  const key = `${D}/${vec4}`;
  let s = sources.get(key);
  if (s) return s;
  const D4 = Math.ceil(D / 4);
  const chunks = Array.from({ length: D4 }, (_, c) => c);
  const rows = Array.from({ length: R }, (_, r) => r);
  // Elements 4c … 4c+3 of the row at `base` in `buf`, as a vec4 (zeros past D).
  const load = (buf: string, base: string, c: number) =>
    vec4
      ? `${buf}[${base} + ${c}u]`
      : `vec4<f32>(${[0, 1, 2, 3].map((e) => (4 * c + e < D ? `${buf}[${base} + ${4 * c + e}u]` : '0.0')).join(', ')})`;
  const each = (f: (c: number) => string) => chunks.map(f).join('\n');
  const initRow = (r: number) => [
    `  let i${r} = wid.x * ${ROWS}u + ${8 * r}u + lane;`,
    `  let row${r} = min(i${r}, T - 1u);`,
    `  let qr${r} = qb + row${r} * P(5u);`,
    each((c) => `  let q${r}_${c} = ${load('q', `qr${r}`, c)} * scale;`),
    each((c) => `  var acc${r}_${c} = vec4<f32>(0.0);`),
    `  var m${r} = NEG;`,
    `  var l${r} = 0.0;`,
  ].join('\n');
  const perKeyRow = (r: number) => [
    `      let s${r} = select(${chunks.map((c) => `dot(q${r}_${c}, kk${c})`).join(' + ')}, NEG, j0 + jj > row${r});`,
    `      if (subgroupAny(s${r} > m${r} + 8.0)) {`,
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
  s = fillTemplate('attention', {
    PARAMS: paramsBlock(16),
    ELEM: vec4 ? 'vec4<f32>' : 'f32',
    D,
    D4,
    R,
    ROWS,
    INIT_ROWS: rows.map(initRow).join('\n'),
    LOAD_KV: [each((c) => `    let k${c} = ${load('k', 'kr', c)};`), each((c) => `    let v${c} = ${load('v', 'vr', c)};`)].join('\n'),
    PER_KEY: [
      each((c) => `      let kk${c} = subgroupShuffle(k${c}, jj);`),
      each((c) => `      let vv${c} = subgroupShuffle(v${c}, jj);`),
      ...rows.map(perKeyRow),
    ].join('\n'),
    STORE: rows.map(storeRow).join('\n'),
  });
  sources.set(key, s);
  return s;
}

/** Runs the fused forward; returns new storages out [B·H·T·D] and lse [B·H·T]. */
export function attentionKernel(q: AttnOperand, k: AttnOperand, v: AttnOperand, B: number, H: number, T: number, D: number): { out: Storage; lse: Storage } {
  if (!fusedAttentionSupported()) throw new Error('fused causal attention needs an adapter with 8-lane subgroups (lavapipe); nn.causalAttention uses the composed op elsewhere');
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
  const pipe = pipeline(attentionSource(D, vec4), `attention_d${D}${vec4 ? '_vec4' : ''}`);
  const bindings = [out, lse, q.storage, k.storage, v.storage].map((s) => ({ buffer: s.buffer }));
  // wid.y carries (batch, head); more than 65,535 of them go in several dispatches.
  for (let bh0 = 0; bh0 < B * H; bh0 += 65535) {
    const w = words.slice();
    w[15] = bh0;
    runtime.dispatch(pipe, w, bindings, [Math.ceil(T / ROWS), Math.min(65535, B * H - bh0)]);
  }
  return { out, lse };
}
