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
