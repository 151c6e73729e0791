// `npm run demo`: a gradient and an exact Hessian-vector product computed on the GPU, checked
// against finite differences, with the adapter that ran them.
import { describeAdapter, grad, hvp, init, matmul, mean, NoAdapterError, softmax, sum, tanh, tensor, type Tensor } from '../src/index.ts';

const c = await init().catch((e: unknown) => {
  if (!(e instanceof NoAdapterError)) throw e;
  console.error(e.message); // says what to run; a stack trace from inside Dawn would not
  process.exit(1);
});
console.log(`adapter: ${describeAdapter(c)}\n`);

// A small smooth "loss": mean(tanh(x·W)) weighted by a softmax over each row.
const x = tensor([0.5, -1.2, 0.3, 0.8, 0.1, -0.4], [2, 3]);
const f = (w: Tensor) => {
  const h = tanh(matmul(x, w));
  return mean(sum(h.mul(softmax(h)), -1));
};
const w = tensor([0.2, -0.5, 0.1, 0.7, -0.3, 0.4], [3, 2]);
const v = tensor([1, 0, 0, 0, 0, 0], [3, 2]);

const [g] = grad(f)(w);
const [hv] = hvp(f, [w], [v]);
const gArr = await g.toArray();
const hvArr = await hv.toArray();

// Finite differences of the GPU gradient along v: (∇f(w + εv) − ∇f(w − εv)) / 2ε.
const eps = 1e-2;
const shifted = async (s: number) => (await grad(f)(w.add(v.mul(s * eps)))[0].toArray()) as Float32Array;
const [gp, gm] = [await shifted(1), await shifted(-1)];
const fd = gp.map((p, i) => (p - gm[i]) / (2 * eps));

const row = (a: ArrayLike<number>) => Array.from(a, (n) => n.toFixed(5).padStart(9)).join(' ');
console.log(`f(w)              = ${(await f(w).item()).toFixed(6)}`);
console.log(`∇f(w)             = ${row(gArr)}`);
console.log(`H·v (double bwd)  = ${row(hvArr)}`);
console.log(`H·v (finite diff) = ${row(fd)}   (f32, ε = ${eps}: agrees to ~1e-4)`);
c.device.destroy();
