// GPT-2 when its embedding is larger than one storage binding (gpt2's 154 MB table vs lavapipe's
// 128 MiB): every kernel splits the work. A shrunken limit makes a small model exercise it.
import { afterAll, beforeAll, describe, it, expect } from 'vitest';
import * as E from '../../src/index.ts';
import { setBindingLimit } from '../../src/gpu/runtime.ts';
import { functionalCall, generate, GPT2, gpt2Config } from '../../src/nn/index.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});
afterAll(() => setBindingLimit(null));

describe('an embedding larger than the binding limit', () => {
  it('loss, every gradient, an HVP, a clipped SGD step and generation agree with the unlimited run', async () => {
    const cfg = gpt2Config('tiny', { vocabSize: 300, nEmbd: 32, nHead: 2, nLayer: 1, nPositions: 8 });
    const ids = E.tensor(Int32Array.from({ length: 16 }, (_, i) => (i * 37) % 300), [2, 8], 'i32');
    const tg = E.tensor(Int32Array.from({ length: 16 }, (_, i) => (i * 91 + 5) % 300), [2, 8], 'i32');
    const run = async (limit: number | null) => {
      setBindingLimit(limit);
      try {
        const m = new GPT2(cfg, 4);
        const params = m.parameters();
        const f = (...ps: E.Tensor[]) => functionalCall(m, ps, () => m.loss(ids, tg));
        const { value, grads } = E.valueAndGrad(f)(...params);
        const v = params.map((p, i) => E.mul(E.ones([...p.shape]), 0.01 * (i + 1)));
        const hv = E.hvp(f, params, v);
        // SGD (linear in the gradient): Adam would turn the rounding noise of the key bias's
        // exactly-zero gradient into ±lr steps that differ between the two runs.
        const opt = new O.SGD(m.namedParameters().map(([name, param]) => ({ name, param })), { lr: 0.1, momentum: 0.9 });
        E.tidy(() => m.loss(ids, tg).backward());
        O.clipGradNorm(params, 0.5);
        opt.step();
        const sample = await generate(m, [1, 2, 3], { maxNewTokens: 3, temperature: 0 });
        return {
          loss: await value.item(),
          grads: await Promise.all(grads.map((g) => g.toArray())),
          hv: await Promise.all(hv.map((h) => h.toArray())),
          after: await Promise.all(params.map((p) => p.toArray())),
          sample,
        };
      } finally {
        setBindingLimit(null);
      }
    };
    const free = await run(null);
    const tight = await run(16 * 1024); // wte is 300 × 32 × 4 B = 38.4 KB: three vocabulary slices
    expect(Math.abs(tight.loss - free.loss)).toBeLessThan(1e-5);
    free.grads.forEach((g, i) => expectClose(tight.grads[i], g, 1e-4, 1e-6, `grad ${i}`));
    free.hv.forEach((h, i) => expectClose(tight.hv[i], h, 1e-4, 1e-6, `hvp ${i}`));
    free.after.forEach((p, i) => expectClose(tight.after[i], p, 1e-5, 1e-6, `param ${i} after clipping + SGD`));
    expect(tight.sample).toEqual(free.sample);
  });
});
