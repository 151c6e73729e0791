// fast-check properties of the autodiff: linearity, symmetry, and random op graphs.
import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as E from '../../src/index.ts';
import { NDArray } from '../../src/reference/ndarray.ts';
import { expectClose, fdGrad, gpu, randomArray, ref, scalarOf, toGpu, type Backend } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

const dot = async (a: E.Tensor[], b: E.Tensor[]) => {
  let s = 0;
  for (let k = 0; k < a.length; k++) {
    const [x, y] = [await a[k].toArray(), await b[k].toArray()];
    for (let i = 0; i < x.length; i++) s += x[i] * y[i];
  }
  return s;
};

// A smooth non-quadratic test function of two tensors.
const f = (x: E.Tensor, w: E.Tensor) => E.sum(E.tanh(E.matmul(E.softmax(x), w)));

describe('properties', () => {
  it('vjp is linear in the cotangent', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.double({ min: -3, max: 3, noNaN: true }), async (seed, alpha) => {
        const x = toGpu(randomArray([2, 3], seed));
        const u = toGpu(randomArray([2, 3], seed + 1));
        const v = toGpu(randomArray([2, 3], seed + 2));
        const g = (c: E.Tensor) => E.vjp((a) => E.exp(E.mul(a, a)), [x], c).vjp[0];
        const lhs = await g(E.add(E.mul(u, alpha), v)).toArray();
        const r1 = await g(u).toArray();
        const r2 = await g(v).toArray();
        expectClose(lhs, Array.from(r1, (a, i) => alpha * a + r2[i]), 1e-4, 1e-4, 'linearity');
      }),
      { numRuns: 10 },
    );
  });

  it('the Hessian is symmetric: uᵀ(Hv) = vᵀ(Hu)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), async (seed) => {
        const params = [toGpu(randomArray([2, 3], seed)), toGpu(randomArray([3, 2], seed + 1))];
        const u = [toGpu(randomArray([2, 3], seed + 2)), toGpu(randomArray([3, 2], seed + 3))];
        const v = [toGpu(randomArray([2, 3], seed + 4)), toGpu(randomArray([3, 2], seed + 5))];
        const uHv = await dot(u, E.hvp(f, params, v));
        const vHu = await dot(v, E.hvp(f, params, u));
        expect(Math.abs(uHv - vHu)).toBeLessThan(1e-4 * (1 + Math.abs(uHv)));
      }),
      { numRuns: 8 },
    );
  });

  it('HVP is linear in v', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e6 }), fc.double({ min: -2, max: 2, noNaN: true }), async (seed, alpha) => {
        const params = [toGpu(randomArray([2, 3], seed)), toGpu(randomArray([3, 2], seed + 1))];
        const u = [toGpu(randomArray([2, 3], seed + 2)), toGpu(randomArray([3, 2], seed + 3))];
        const v = [toGpu(randomArray([2, 3], seed + 4)), toGpu(randomArray([3, 2], seed + 5))];
        const comb = E.hvp(f, params, u.map((ui, k) => E.add(E.mul(ui, alpha), v[k])));
        const hu = E.hvp(f, params, u);
        const hv = E.hvp(f, params, v);
        for (let k = 0; k < 2; k++) {
          const [c, a, b] = [await comb[k].toArray(), await hu[k].toArray(), await hv[k].toArray()];
          expectClose(c, Array.from(a, (x, i) => alpha * x + b[i]), 1e-3, 1e-4, `component ${k}`);
        }
      }),
      { numRuns: 8 },
    );
  });

  // Random expression graphs: a small op language evaluated by both backends.
  type Node = { op: string; args: Node[] } | { leaf: number };
  const unaryOps = ['tanh', 'exp', 'neg', 'sin', 'square', 'sigmoid', 'softmax', 'sum1'] as const;
  const binaryOps = ['add', 'sub', 'mul', 'matmulT'] as const;
  const nodeArb: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ leaf: fc.integer({ min: 0, max: 1 }) }),
      fc.record({ op: fc.constantFrom(...unaryOps), args: fc.tuple(tie('node')) }),
      fc.record({ op: fc.constantFrom(...binaryOps), args: fc.tuple(tie('node'), tie('node')) }),
    ),
  })).node;

  function evalNode<X>(o: Backend<X>, n: Node, leaves: X[], depth = 0): X {
    if ('leaf' in n || depth >= 4) return leaves['leaf' in n ? n.leaf : 0];
    const [a, b] = n.args.map((c) => evalNode(o, c, leaves, depth + 1));
    switch (n.op) {
      case 'softmax':
        return o.softmax(a, -1);
      case 'sum1':
        return o.add(a, o.mul(o.sum(a, 1, true), 0.1)); // keeps the [3, 3] shape
      case 'matmulT':
        return o.mul(o.matmul(a, o.transpose(b)), 0.3);
      case 'exp':
        return o.exp(o.mul(a, 0.3));
      default:
        return (o as unknown as Record<string, (...x: X[]) => X>)[n.op](a, ...(b === undefined ? [] : [b]));
    }
  }

  it('random op graphs of depth ≤ 4: values and gradients match the reference', async () => {
    await fc.assert(
      fc.asyncProperty(nodeArb, fc.integer({ min: 1, max: 1e6 }), async (node, seed) => {
        const xs = [randomArray([3, 3], seed), randomArray([3, 3], seed + 1)];
        const L = <X>(o: Backend<X>, l: X[]) => o.sum(o.mul(evalNode(o, node, l), l[1]));
        const expected = scalarOf(L(ref, xs) as NDArray);
        const { value, grads } = E.valueAndGrad((a: E.Tensor, b: E.Tensor) => L(gpu, [a, b]))(...xs.map(toGpu));
        expectClose([await value.item()], [expected], 1e-4, 1e-4, `value of ${JSON.stringify(node)}`);
        const fd = fdGrad((l) => scalarOf(L(ref, l) as NDArray), xs);
        for (let k = 0; k < 2; k++) expectClose(await grads[k].toArray(), fd[k], 2e-3, 2e-4, `grad ${k} of ${JSON.stringify(node)}`);
      }),
      { numRuns: 30 },
    );
  });
});
