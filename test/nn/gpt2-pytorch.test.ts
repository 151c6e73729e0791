// GPT-2 against PyTorch (float64), like llm.c's test_gpt2: logits, loss, every parameter's
// gradient and an exact Hessian-vector product. Fixture: scripts/gpt2_fixture.py.
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { functionalCall, loadGPT2, readSafetensors, type GPT2, type HostTensor } from '../../src/nn/index.ts';
import { expectClose } from '../helpers.ts';

const dir = fileURLToPath(new URL('../fixtures/gpt2/', import.meta.url));
let model: GPT2;
let ref: Map<string, HostTensor>;
let inputs: E.Tensor;
let targets: E.Tensor;

beforeAll(async () => {
  await E.init();
  model = loadGPT2(dir + 'model');
  ref = readSafetensors(dir + 'reference.safetensors').tensors;
  const shape = ref.get('inputs')!.shape;
  inputs = E.tensor(ref.get('inputs')!.data as Int32Array, shape, 'i32');
  targets = E.tensor(ref.get('targets')!.data as Int32Array, shape, 'i32');
});

// Tolerances (stated, not tuned to pass): logits/loss 1e-5 relative (+1e-5 absolute for logits
// near zero); gradients 1e-4 relative to the tensor's largest entry; HVP the same.
function expectTensorClose(actual: Float32Array, expected: HostTensor, rel: number, what: string) {
  const scale = Math.max(...Array.from(expected.data, Math.abs));
  expectClose(actual, expected.data, 0, rel * scale, what);
}

describe('GPT-2 matches PyTorch', () => {
  it('logits and loss', async () => {
    const logits = model.forward(inputs);
    expectClose(await logits.toArray(), ref.get('logits')!.data, 1e-5, 1e-5, 'logits');
    const loss = await model.loss(inputs, targets).item();
    expect(Math.abs(loss - ref.get('loss')!.data[0]) / ref.get('loss')!.data[0]).toBeLessThan(1e-5);
  });

  it('every parameter gradient', async () => {
    const named = model.namedParameters();
    const grads = E.grad((...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(inputs, targets)))(...model.parameters());
    for (let i = 0; i < named.length; i++) expectTensorClose(await grads[i].toArray(), ref.get('grad.' + named[i][0])!, 1e-4, `grad.${named[i][0]}`);
  });

  it('the exact Hessian-vector product of the loss', async () => {
    const named = model.namedParameters();
    const vec = readSafetensors(dir + 'hvp_vector.safetensors').tensors;
    const v = named.map(([n]) => E.tensor(vec.get(n)!.data as Float32Array, vec.get(n)!.shape));
    const hv = E.hvp((...ps) => functionalCall(model, ps, () => model.loss(inputs, targets)), model.parameters(), v);
    for (let i = 0; i < named.length; i++) expectTensorClose(await hv[i].toArray(), ref.get('hvp.' + named[i][0])!, 1e-4, `hvp.${named[i][0]}`);
  });
});

describe('GPT-2 training steps match PyTorch', () => {
  it('three AdamW steps (lr 1e-2, betas 0.9/0.95, weight decay 0.1 on every tensor) give the same parameters', async () => {
    const { AdamW } = await import('../../src/optim/index.ts');
    const m = loadGPT2(dir + 'model');
    const opt = new AdamW(m.namedParameters().map(([name, param]) => ({ name, param })), { lr: 1e-2, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
    for (let i = 0; i < 3; i++) {
      E.tidy(() => m.loss(inputs, targets).backward());
      opt.step();
      opt.zeroGrad();
    }
    // Coordinates whose true gradient is zero (the attention key bias: softmax ignores a constant
    // added to every score of a row) get f32 rounding noise as gradient, which Adam normalises
    // into real steps; there only Adam's bound |Δθ| ≤ 3·lr (3 steps) holds. Elsewhere: 1e-4 of scale.
    const initial = readSafetensors(dir + 'model/model.safetensors').tensors;
    for (const [name, p] of m.namedParameters()) {
      const got = await p.toArray();
      const want = ref.get('adamw.' + name)!.data;
      const g = ref.get('grad.' + name)!.data;
      const gScale = Math.max(...Array.from(g, Math.abs));
      const scale = Math.max(...Array.from(want, Math.abs));
      const p0 = initial.get(name)!.data;
      for (let i = 0; i < got.length; i++) {
        if (Math.abs(g[i]) > 1e-7 * gScale) expect(Math.abs(got[i] - want[i]), `adamw.${name}[${i}]`).toBeLessThanOrEqual(1e-4 * scale);
        else expect(Math.abs(got[i] - p0[i]), `adamw.${name}[${i}] (zero gradient)`).toBeLessThanOrEqual(3 * 1e-2 * (1 + 1e-3) + 3 * 1e-3 * Math.abs(p0[i]));
      }
    }
  });
});
