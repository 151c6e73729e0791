// The fused causal-attention op (one forward kernel, backward in engine ops) against the float64
// reference: values and row logsumexp on odd shapes, causality, gradients, exact HVPs (the
// backward's saved logsumexp must not be a constant), and agreement with the composed version.
// Each test runs with both forward kernels: the subgroup one (lavapipe, CI; skipped elsewhere)
// and the tiled one for GPUs (forced here, it runs on any adapter).
import { afterAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as N from '../../src/nn/index.ts';
import * as raw from '../../src/tensor/ops.ts';
import { lastAttentionKernel, setAttentionKernel, subgroupKernelRuns } from '../../src/tensor/kernels/attention.ts';
import * as R from '../../src/reference/ndarray.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import { expectClose, fdGrad, fdHvp, randomArray, toGpu } from '../helpers.ts';

await E.init();
afterAll(() => {
  N.setAttentionStrategy('auto');
  setAttentionKernel('auto');
});

const KERNELS = ['subgroup', 'tiled'] as const;
/** One it() per forward kernel, with that kernel forced; checks it is the one that ran. */
function itFused(name: string, body: () => Promise<void>): void {
  for (const kernel of KERNELS) {
    it.runIf(kernel === 'tiled' || subgroupKernelRuns())(`${name} (${kernel} kernel)`, async () => {
      setAttentionKernel(kernel);
      try {
        await body();
        expect(lastAttentionKernel).toBe(kernel);
      } finally {
        setAttentionKernel('auto');
      }
    });
  }
}

/** Scaled, causally masked scores of the f64 reference, and softmax(·)·v. */
function refScores(q: NDArray, k: NDArray): NDArray {
  const [, , T, D] = q.shape;
  const s = R.mul(R.matmul(q, R.transpose(k)), 1 / Math.sqrt(D));
  const mask = NDArray.from(Array.from({ length: T * T }, (_, i) => (Math.floor(i / T) >= i % T ? 1 : 0)), [T, T]);
  return R.where(mask, s, -Infinity);
}
const refAttention = (q: NDArray, k: NDArray, v: NDArray) => R.matmul(R.softmax(refScores(q, k)), v);

const inputs = (shape: number[], seed: number) => [randomArray(shape, seed, -2, 2), randomArray(shape, seed + 1, -2, 2), randomArray(shape, seed + 2)];

describe('fused causal attention: forward', () => {
  // T = 1; T not a multiple of the 16-row block; D = 32 and 64; D not a multiple of 4 (scalar
  // loads); T over two of the tiled kernel's 64-row blocks and several 32-key tiles.
  const shapes = [[2, 1, 1, 32], [2, 3, 21, 32], [1, 2, 37, 64], [1, 2, 9, 3], [1, 1, 150, 8]];
  for (const shape of shapes) {
    itFused(`[${shape}] matches softmax(q·kᵀ/√D, causal)·v and its row logsumexp in float64`, async () => {
        const [q, k, v] = inputs(shape, shape[2]);
      const { out, lse } = raw.causalAttention(toGpu(q), toGpu(k), toGpu(v));
      expectClose(await out.toArray(), refAttention(q, k, v).data, 1e-5, 1e-6, 'attention');
      expectClose(await lse.toArray(), R.logsumexp(refScores(q, k), -1).data, 1e-5, 1e-6, 'logsumexp');
    });
  }
  itFused('reads strided views of one qkv buffer (GPT-2 heads) without copies, at any offset', async () => {
    // D = 32 at offset 4 takes the vec4-load kernel; D = 4 at offset 1 (not a multiple of 4
    // floats) the scalar-load one.
    for (const [D, offset] of [[32, 4], [4, 1]]) {
      const [B, T, H] = [2, 19, 2];
      const qkv = randomArray([B, T, 3 * H * D + offset], 5, -2, 2);
      const g = toGpu(qkv);
      const cols = (p: number): [number, number] => [offset + p * H * D, offset + (p + 1) * H * D];
      const want = [0, 1, 2].map((p) => R.permute(R.reshape(R.slice(qkv, [null, null, cols(p)]), [B, T, H, D]), [0, 2, 1, 3]));
      const views = [0, 1, 2].map((p) => E.permute(E.reshape(E.slice(g, [null, null, cols(p)]), [B, T, H, D]), [0, 2, 1, 3]));
      expect(views[0].isContiguous()).toBe(false);
      expectClose(await raw.causalAttention(views[0], views[1], views[2]).out.toArray(), refAttention(want[0], want[1], want[2]).data, 1e-5, 1e-6, `D=${D}, offset ${offset}`);
    }
  });
  itFused('no position sees the future: new keys/values after t leave rows ≤ t bit-identical', async () => {
    const [B, H, T, D] = [1, 2, 40, 32];
    const [q, k, v] = inputs([B, H, T, D], 7);
    const cut = 23;
    const [k2, v2] = [k, v].map((a) => new NDArray(a.data.map((x, i) => (Math.floor(i / D) % T > cut ? x + 3 : x)), a.shape));
    const y1 = await E.fusedCausalAttention(toGpu(q), toGpu(k), toGpu(v)).toArray();
    const y2 = await E.fusedCausalAttention(toGpu(q), toGpu(k2), toGpu(v2)).toArray();
    for (let i = 0; i < y1.length; i++) {
      if (Math.floor(i / D) % T <= cut) expect(y2[i]).toBe(y1[i]);
      else expect(y2[i]).not.toBe(y1[i]);
    }
  });
  it('rejects mismatched shapes with a message naming them', () => {
    const a = E.zeros([1, 2, 5, 4]);
    expect(() => N.causalAttention(a, E.zeros([1, 2, 6, 4]), a)).toThrow(/q, k and v must all be \[B, H, T, D\] of the same shape, got q \[1, 2, 5, 4\], k \[1, 2, 6, 4\]/);
    expect(() => E.fusedCausalAttention(E.zeros([2, 5, 4]), E.zeros([2, 5, 4]), E.zeros([2, 5, 4]))).toThrow(/\[B, H, T, D\]/);
  });
  it('heads larger than the fused kernel takes: the op says so, nn.causalAttention composes', async () => {
    const big = E.zeros([1, 1, 3, 80]);
    expect(() => E.fusedCausalAttention(big, big, big)).toThrow(/head sizes 1…64, got D = 80/);
    N.setAttentionStrategy('auto');
    N.causalAttention(big, big, big).dispose();
    expect(N.lastAttention).toBe('composed');
  });
});

describe('fused causal attention: derivatives', () => {
  const shape = [1, 2, 5, 4];
  const [q0, k0, v0] = inputs(shape, 11);
  const w = randomArray(shape, 99, 0.5, 1.5); // fixed weights: every output element matters
  const refLoss = ([q, k, v]: NDArray[]) => R.sum(R.mul(refAttention(q, k, v), w)).data[0];
  const loss = (q: E.Tensor, k: E.Tensor, v: E.Tensor) => E.sum(E.mul(E.fusedCausalAttention(q, k, v), toGpu(w)));

  itFused('gradients match central differences of the float64 reference', async () => {
    const expected = fdGrad(refLoss, [q0, k0, v0]);
    const grads = E.grad(loss)(toGpu(q0), toGpu(k0), toGpu(v0));
    for (let i = 0; i < 3; i++) expectClose(await grads[i].toArray(), expected[i], 1e-3, 1e-4, `d/d${'qkv'[i]}`);
  });
  itFused('HVP (double backward) matches finite differences of gradients, in every direction', async () => {
    // A direction moving q and k changes the saved row logsumexp: a backward that treated it as
    // a constant would pass the gradient test above and fail this one.
    const dir = [q0, k0, v0].map((x, i) => randomArray([...x.shape], 50 + i));
    const expected = fdHvp(refLoss, [q0, k0, v0], dir);
    const hv = E.hvp(loss, [q0, k0, v0].map(toGpu), dir.map(toGpu));
    for (let i = 0; i < 3; i++) expectClose(await hv[i].toArray(), expected[i], 2e-3, 2e-3, `(Hv)_${'qkv'[i]}`);
  });
  itFused('gradients and HVP equal the composed implementation at GPT-2-like head sizes', async () => {
    const [q, k, v] = inputs([2, 2, 21, 32], 21).map(toGpu);
    const ww = toGpu(randomArray([2, 2, 21, 32], 98, 0.5, 1.5));
    const dir = inputs([2, 2, 21, 32], 31).map(toGpu);
    const run = (strategy: 'fused' | 'composed') => {
      N.setAttentionStrategy(strategy);
      const f = (a: E.Tensor, b: E.Tensor, c: E.Tensor) => E.sum(E.mul(N.causalAttention(a, b, c), ww));
      const g = E.grad(f)(q, k, v);
      expect(N.lastAttention).toBe(strategy);
      return [...g, ...E.hvp(f, [q, k, v], dir)];
    };
    const a = run('fused');
    const b = run('composed');
    for (let i = 0; i < a.length; i++) {
      const want = await b[i].toArray();
      const scale = want.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expectClose(await a[i].toArray(), want, 1e-4, 1e-4 * scale, i < 3 ? `grad ${i}` : `hvp ${i - 3}`);
    }
  });
});
