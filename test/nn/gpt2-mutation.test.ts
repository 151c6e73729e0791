// The PyTorch fixture test must fail when any single backward rule is wrong. Every differentiable
// op records its backward through autograd's record(); here record() is wrapped so that the rule
// of one chosen op returns its gradients scaled by 1 + 1e-3 (an error 10× the fixture tolerance on
// the largest entries, and far subtler than a typical bug: a dropped term or a wrong sign). Each op
// whose rule runs in GPT-2's gradient is broken in turn, and the fixture comparison of every parameter gradient
// (the same comparison and tolerance as gpt2-pytorch.test.ts) must notice each one.
//
// LayerNorm runs composed here (mean, square, mean, rsqrt: more rules to check, and the same
// code every other op uses); the last test checks the two rules of its statistics kernel, which
// GPT-2 runs by default.
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as E from '../../src/index.ts';
import { functionalCall, loadGPT2, readSafetensors, setLayerNormStrategy, type GPT2, type HostTensor } from '../../src/nn/index.ts';

const fault = vi.hoisted(() => ({
  op: null as string | null,
  /** Or: the rules of the nodes that consume this tensor (one layer's use of one parameter). */
  consumer: null as unknown,
  /**
   * 'every': the rule is wrong wherever it runs. 'second': only for nodes that a backward rule
   * recorded (the gradient's own graph) when hvp's second pass differentiates them.
   */
  where: 'every' as 'every' | 'second',
  ran: new Set<string>(), // ops whose backward rule ran
  perturb: null as ((g: unknown) => unknown) | null,
}));

vi.mock('../../src/autograd/graph.ts', async (importOriginal) => {
  const graph = await importOriginal<typeof import('../../src/autograd/graph.ts')>();
  let depth = 0; // > 0 while a backward rule runs: nodes recorded then belong to the backward graph
  const record: typeof graph.record = (out, op, inputs, backward) => {
    const ofBackward = depth > 0;
    return graph.record(out, op, inputs, (g, needs) => {
      const target = fault.where === 'every' || (ofBackward && !graph.isGradEnabled());
      if (target) fault.ran.add(op);
      depth++;
      let grads;
      try {
        grads = backward(g, needs);
      } finally {
        depth--;
      }
      if (!target) return grads;
      // Targeted rules' outputs are realised in every run, broken or not, so that a broken run
      // fuses the same kernels as the clean one plus a single scaling kernel (each new fused
      // kernel is a shader compile, and compiles would dominate this test's time).
      for (const x of grads) x?.realize();
      if (op !== fault.op && !(fault.consumer !== null && inputs.includes(fault.consumer as never))) return grads;
      return grads.map((x) => (x === null ? x : (fault.perturb!(x) as typeof x)));
    });
  };
  return { ...graph, record };
});

const dir = fileURLToPath(new URL('../fixtures/gpt2/', import.meta.url));
let model: GPT2;
let ref: Map<string, HostTensor>;
let inputs: E.Tensor;
let targets: E.Tensor;
let hvpVector: E.Tensor[];

beforeAll(async () => {
  await E.init();
  setLayerNormStrategy('composed');
  fault.perturb = (g) => E.mul(g as E.Tensor, 1 + 1e-3).realize();
  model = loadGPT2(dir + 'model');
  ref = readSafetensors(dir + 'reference.safetensors').tensors;
  const shape = ref.get('inputs')!.shape;
  inputs = E.tensor(ref.get('inputs')!.data as Int32Array, shape, 'i32');
  targets = E.tensor(ref.get('targets')!.data as Int32Array, shape, 'i32');
  const vec = readSafetensors(dir + 'hvp_vector.safetensors').tensors;
  hvpVector = model.namedParameters().map(([n]) => E.tensor(vec.get(n)!.data as Float32Array, vec.get(n)!.shape));
});

afterAll(() => setLayerNormStrategy('auto'));

const loss = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(inputs, targets));

/**
 * Names of the parameters whose gradient (or, for 'hvp', Hessian-vector product) misses PyTorch's
 * by more than 1e-4 of its largest entry.
 */
async function wrong(what: 'grad' | 'hvp', onLeaves = false): Promise<string[]> {
  const named = model.namedParameters();
  // onLeaves: the graph consumes the model's own parameters (so a node can be picked by the
  // parameter it reads), not grad()'s stand-ins for them.
  const grads = E.tidy(() =>
    onLeaves ? E.gradOf(model.loss(inputs, targets), model.parameters()) : what === 'grad' ? E.grad(loss)(...model.parameters()) : E.hvp(loss, model.parameters(), hvpVector),
  );
  const wrong: string[] = [];
  for (let i = 0; i < named.length; i++) {
    const got = await grads[i].toArray();
    const want = ref.get(`${what}.${named[i][0]}`)!.data;
    const scale = Math.max(...Array.from(want, Math.abs));
    if (got.some((x, j) => !(Math.abs(x - want[j]) <= 1e-4 * scale))) wrong.push(named[i][0]);
    grads[i].dispose();
  }
  return wrong;
}

/** The ops of `ops` whose rule, broken alone, leaves the `what` comparison passing. */
async function unnoticed(ops: string[], what: 'grad' | 'hvp'): Promise<string[]> {
  const missed: string[] = [];
  for (const op of ops) {
    fault.op = op;
    if ((await wrong(what)).length === 0) missed.push(op);
  }
  fault.op = null;
  return missed;
}

describe('the GPT-2 fixture test catches a wrong backward rule', () => {
  it('passes with the real rules, fails with each single rule off by 0.1 %', async () => {
    fault.op = null;
    fault.where = 'every';
    fault.ran.clear();
    expect(await wrong('grad')).toEqual([]);
    const ops = [...fault.ran].sort();
    // Ops behind each layer: embeddings, LayerNorm, attention, GELU, linear layers and the LM head,
    // cross-entropy (the fixture's vocabulary is small enough for the composed logsumexp).
    for (const op of ['indexSelect', 'rsqrt', 'causalAttention', 'tanh', 'matmul', 'log', 'exp']) expect(ops).toContain(op);
    expect(await unnoticed(ops, 'grad'), `backward rules whose error the fixture comparison does not see (of ${ops.join(', ')})`).toEqual([]);
  }, 300_000);

  it('fails when one layer alone has a wrong backward: the rule of the op reading any single parameter, off by 0.1 %', async () => {
    fault.op = null;
    fault.where = 'every';
    fault.consumer = null;
    expect(await wrong('grad', true)).toEqual([]);
    const missed: string[] = [];
    for (const [name, p] of model.namedParameters()) {
      fault.consumer = p;
      if ((await wrong('grad', true)).length === 0) missed.push(name);
    }
    fault.consumer = null;
    expect(missed, 'parameters whose consuming op can have a wrong backward unnoticed').toEqual([]);
  }, 300_000);

  it("catches each rule off by 0.1 % in the HVP's second pass alone (the gradient stays right)", async () => {
    fault.op = null;
    fault.where = 'second';
    fault.ran.clear();
    expect(await wrong('hvp')).toEqual([]);
    const ops = [...fault.ran].sort();
    // The gradient's graph is built from the backward rules' own ops: products, sums, views, the
    // embedding's scatter and the LM head's matmuls among them.
    for (const op of ['matmul', 'mul', 'sum', 'expand', 'scatterAdd']) expect(ops).toContain(op);
    const missed = await unnoticed(ops, 'hvp');
    fault.where = 'every';
    expect(missed, `second-pass rules whose error the fixture HVP does not see (of ${ops.join(', ')})`).toEqual([]);
  }, 300_000);

  it("catches each rule of LayerNorm's statistics kernel off by 0.1 % (the default LayerNorm)", async () => {
    setLayerNormStrategy('stats-kernel');
    try {
      fault.op = null;
      fault.where = 'every';
      fault.ran.clear();
      expect(await wrong('grad')).toEqual([]);
      const ops = ['layerNormMean', 'layerNormRstd'];
      for (const op of ops) expect([...fault.ran]).toContain(op);
      expect(await unnoticed(ops, 'grad'), 'LayerNorm statistics rules whose error the fixture comparison does not see').toEqual([]);
    } finally {
      setLayerNormStrategy('composed');
    }
  }, 300_000);
});
