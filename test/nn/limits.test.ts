// GPT-2 when its embedding is larger than one storage binding (gpt2's 154 MB table vs lavapipe's
// 128 MiB): every kernel splits the work. A shrunken limit makes a small model exercise it.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import * as E from '../../src/index.ts';
import { setBindingLimit } from '../../src/gpu/runtime.ts';
import { causalAttention, functionalCall, generate, GPT2, gpt2Config, lastAttention, setAttentionStrategy } from '../../src/nn/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});
afterAll(() => {
  setBindingLimit(null);
  setAttentionStrategy('auto');
});

/** Token ids i·a + b (mod V) in a [B, T] batch. */
const ids = (B: number, T: number, a: number, b: number, V: number) => E.tensor(Int32Array.from({ length: B * T }, (_, i) => (i * a + b) % V), [B, T], 'i32');

/** Runs `fn` with the binding limit shrunk to `limit` bytes (null: the adapter's own), then restores it. */
async function underLimit<T>(limit: number | null, fn: () => Promise<T>): Promise<T> {
  setBindingLimit(limit);
  try {
    return await fn();
  } finally {
    setBindingLimit(null);
  }
}

/** A GPT-2's loss, every gradient and an HVP along 0.01·(i+1)·1 for parameter i, read back. */
async function derivatives(m: GPT2, inputs: E.Tensor, targets: E.Tensor) {
  const params = m.parameters();
  const f = (...ps: E.Tensor[]) => functionalCall(m, ps, () => m.loss(inputs, targets));
  const { value, grads } = E.valueAndGrad(f)(...params);
  const hv = E.hvp(f, params, params.map((p, i) => E.mul(E.ones([...p.shape]), 0.01 * (i + 1))));
  return { loss: await value.item(), grads: await Promise.all(grads.map((g) => g.toArray())), hv: await Promise.all(hv.map((h) => h.toArray())) };
}

function expectSameDerivatives(tight: Awaited<ReturnType<typeof derivatives>>, free: Awaited<ReturnType<typeof derivatives>>) {
  expect(Math.abs(tight.loss - free.loss)).toBeLessThan(1e-5);
  free.grads.forEach((g, i) => expectClose(tight.grads[i], g, 1e-4, 1e-6, `grad ${i}`));
  free.hv.forEach((h, i) => expectClose(tight.hv[i], h, 1e-4, 1e-6, `hvp ${i}`));
}

describe('an embedding larger than the binding limit', () => {
  it('loss, every gradient, an HVP, a clipped SGD step and generation agree with the unlimited run', async () => {
    const cfg = gpt2Config('tiny', { vocabSize: 300, nEmbd: 32, nHead: 2, nLayer: 1, nPositions: 8 });
    const [inputs, targets] = [ids(2, 8, 37, 0, 300), ids(2, 8, 91, 5, 300)];
    const run = (limit: number | null) =>
      underLimit(limit, async () => {
        const m = new GPT2(cfg, 4);
        const d = await derivatives(m, inputs, targets);
        // SGD (linear in the gradient): Adam would turn the rounding noise of the key bias's
        // exactly-zero gradient into ±lr steps that differ between the two runs.
        const opt = new O.SGD(m.namedParameters().map(([name, param]) => ({ name, param })), { lr: 0.1, momentum: 0.9 });
        E.tidy(() => m.loss(inputs, targets).backward());
        O.clipGradNorm(m.parameters(), 0.5);
        opt.step();
        const sample = await generate(m, [1, 2, 3], { maxNewTokens: 3, temperature: 0 });
        return { ...d, after: await Promise.all(m.parameters().map((p) => p.toArray())), sample };
      });
    const free = await run(null);
    const tight = await run(16 * 1024); // wte is 300 × 32 × 4 B = 38.4 KB: three vocabulary slices
    expectSameDerivatives(tight, free);
    free.after.forEach((p, i) => expectClose(tight.after[i], p, 1e-5, 1e-6, `param ${i} after clipping + SGD`));
    expect(tight.sample).toEqual(free.sample);
  });
});

describe('activations larger than the binding limit', () => {
  it("GPT-2 whose MLP and qkv activations exceed it (as GPT-2 small's do at 16×1024 on lavapipe): loss, gradients, an HVP and an SGD step agree", async () => {
    // In the proportions of GPT-2 small at B·T = 16,384: the MLP's [128, 128] (64 KiB) and
    // c_attn's [128, 96] (48 KiB) activations and their gradients exceed 40 KiB, the residual
    // stream [128, 32] (16 KiB) and the scores [8, 2, 16, 16] (16 KiB) do not. Their products go
    // in pieces (matmul), their bias gradients reduce blocks of rows, and the HVP's gradients
    // accumulated through transposed products are realised in halves of a second axis.
    const cfg = gpt2Config('tiny', { vocabSize: 300, nEmbd: 32, nHead: 2, nLayer: 2, nPositions: 16 });
    const [inputs, targets] = [ids(8, 16, 37, 0, 300), ids(8, 16, 91, 5, 300)];
    const run = (limit: number | null) =>
      underLimit(limit, async () => {
        const m = new GPT2(cfg, 4);
        const d = await derivatives(m, inputs, targets);
        const opt = new O.SGD(m.namedParameters().map(([name, param]) => ({ name, param })), { lr: 0.1 });
        E.tidy(() => m.loss(inputs, targets).backward());
        opt.step();
        return { ...d, after: await Promise.all(m.parameters().map((p) => p.toArray())) };
      });
    const free = await run(null);
    const tight = await run(40 * 1024);
    expectSameDerivatives(tight, free);
    free.after.forEach((p, i) => expectClose(tight.after[i], p, 1e-5, 1e-6, `param ${i} after SGD`));
  });
});

describe('attention scores larger than the binding limit', () => {
  // GPT-2 small at B = 8, T = 1024 holds 403 MB of [B, H, T, T] scores (the composition's forward,
  // the fused kernel's backward); lavapipe binds 128 MiB. Here q, k, v [2, 3, 64, 8] (6 KiB each)
  // fit, the scores (96 KiB, 16 KiB a head) do not: attention runs on blocks of batch entries
  // (limit 50 KiB) or of heads (limit 40 KiB: blocks of 2 and 1 heads).
  const [B, H, T, D] = [2, 3, 64, 8];
  const data = (seed: number) => Float32Array.from({ length: B * H * T * D }, (_, i) => Math.sin(i * 0.37 + seed) * 0.8);
  const run = async (limit: number | null) => {
    const [q, k, v] = [1, 2, 3].map((s) => E.tensor(data(s), [B, H, T, D]));
    const dir = [4, 5, 6].map((s) => E.tensor(data(s), [B, H, T, D]));
    const seed = E.tensor(data(7), [B, H, T, D]);
    return underLimit(limit, async () => {
      // A scalar whose gradient and Hessian go through every block: ⟨attention(q, k, v)², seed⟩.
      const f = (qq: E.Tensor, kk: E.Tensor, vv: E.Tensor) => {
        const o = causalAttention(qq, kk, vv);
        return E.sum(E.mul(E.mul(o, o), seed));
      };
      const { value, grads } = E.valueAndGrad(f)(q, k, v);
      const hv = E.hvp(f, [q, k, v], dir);
      const out = causalAttention(q, k, v);
      return {
        out: await out.toArray(),
        value: await value.item(),
        grads: await Promise.all(grads.map((g) => g.toArray())),
        hv: await Promise.all(hv.map((h) => h.toArray())),
        used: lastAttention,
      };
    });
  };
  for (const strategy of ['fused', 'composed'] as const) {
    it(`${strategy}: output, gradients and an HVP agree with the unsplit run, over batch blocks and over head blocks`, async () => {
      setAttentionStrategy(strategy);
      try {
        const free = await run(null);
        expect(free.used).toBe(strategy);
        for (const limit of [50 * 1024, 40 * 1024]) {
          const tight = await run(limit);
          expect(tight.used).toBe(strategy);
          expectClose(tight.out, free.out, 1e-5, 1e-6, `output at ${limit}`);
          expect(Math.abs(tight.value - free.value)).toBeLessThan(1e-4 * Math.abs(free.value));
          free.grads.forEach((g, i) => expectClose(tight.grads[i], g, 1e-4, 1e-6, `grad ${i} at ${limit}`));
          free.hv.forEach((h, i) => expectClose(tight.hv[i], h, 1e-4, 1e-6, `hvp ${i} at ${limit}`));
        }
      } finally {
        setAttentionStrategy('auto');
      }
    });
  }
  it('GPT-2 whose attention scores exceed the limit: loss, gradients and an HVP agree with the unlimited run', async () => {
    // The scores [2, 4, 64, 64] are 128 KiB; the logits (150 KiB) take the head's own chunks.
    const cfg = gpt2Config('tiny', { vocabSize: 300, nEmbd: 16, nHead: 4, nLayer: 1, nPositions: 64 });
    const [inputs, targets] = [ids(2, 64, 37, 0, 300), ids(2, 64, 91, 5, 300)];
    const gpt = (limit: number | null) => underLimit(limit, () => derivatives(new GPT2(cfg, 4), inputs, targets));
    // At 20 KiB the MLP's [128, 64] (32 KiB) and c_attn's [128, 48] (24 KiB) exceed it too.
    const free = await gpt(null);
    for (const limit of [40 * 1024, 20 * 1024]) expectSameDerivatives(await gpt(limit), free);
  });
  it('one head\'s scores over the limit are refused with the sizes and what to do', async () => {
    const q = E.zeros([1, 1, T, D]);
    await underLimit(8 * 1024, async () => {
      expect(() => causalAttention(q, q, q)).toThrow(/one head's 64×64 f32 scores \(16.0 KiB\) exceed this adapter's maxStorageBufferBindingSize \(8.0 KiB\); use a shorter context/);
    });
  });
});
