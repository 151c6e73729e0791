// Inspect a GPT-2 on one batch: logits, loss, every gradient and (optionally) an exact
// Hessian-vector product, written to one safetensors file for comparison with PyTorch.
//
//   tsx examples/gpt2-inspect.ts --model DIR --tokens FILE.json --out OUT.safetensors [--hvp-vector V.safetensors]
//
// FILE.json: {"inputs": [[...]], "targets": [[...]]} (B×T token ids; targets may use -100 to ignore).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as E from '../src/index.ts';
import { functionalCall, loadGPT2, readSafetensors, writeSafetensors, type HostTensor } from '../src/nn/index.ts';

const USAGE = 'usage: tsx examples/gpt2-inspect.ts --model DIR --tokens FILE.json --out OUT.safetensors [--hvp-vector V.safetensors]';
let args;
try {
  args = parseArgs({
    options: { model: { type: 'string' }, tokens: { type: 'string' }, out: { type: 'string' }, 'hvp-vector': { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
  }).values;
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
for (const k of ['model', 'tokens', 'out'] as const) {
  if (!args[k]) {
    console.error(`missing --${k}\n${USAGE}`);
    process.exit(2);
  }
}

function readBatch(file: string): { inputs: number[][]; targets: number[][] } {
  let j: { inputs?: unknown; targets?: unknown };
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: cannot read JSON (${(e as Error).message})`);
  }
  const ok = (m: unknown): m is number[][] => Array.isArray(m) && m.length > 0 && m.every((r) => Array.isArray(r) && r.length === (m as number[][])[0].length && r.every(Number.isInteger));
  if (!ok(j.inputs) || !ok(j.targets)) throw new Error(`${file}: expected {"inputs": [[ids]], "targets": [[ids]]} with equal-length integer rows`);
  if (j.inputs.length !== j.targets.length || j.inputs[0].length !== j.targets[0].length) throw new Error(`${file}: inputs and targets must have the same B×T shape`);
  return { inputs: j.inputs, targets: j.targets };
}

await E.init();
const model = loadGPT2(args.model!);
const batch = readBatch(args.tokens!);
const [B, T] = [batch.inputs.length, batch.inputs[0].length];
const V = model.config.vocabSize;
for (const id of batch.inputs.flat()) if (id < 0 || id >= V) throw new Error(`${args.tokens}: input id ${id} is outside the vocabulary [0, ${V})`);
const inputs = E.tensor(new Int32Array(batch.inputs.flat()), [B, T], 'i32');
const targets = E.tensor(new Int32Array(batch.targets.flat()), [B, T], 'i32');
const named = model.namedParameters();
const out = new Map<string, HostTensor>();

const stats = async (t: E.Tensor) => {
  const a = await t.toArray();
  let s = 0, s2 = 0, m = 0;
  for (const v of a) (s += v), (s2 += v * v), (m = Math.max(m, Math.abs(v)));
  const mean = s / a.length;
  return `mean ${mean.toExponential(3).padStart(11)}  std ${Math.sqrt(Math.max(0, s2 / a.length - mean * mean)).toExponential(3)}  max|x| ${m.toExponential(3)}`;
};

console.log(`model: ${model.config.nLayer} layers, ${model.config.nHead} heads, ${model.config.nEmbd} wide, vocab ${V}; batch ${B}×${T}`);
const traced: [string, E.Tensor][] = [];
const logits = E.noGrad(() => {
  const h = model.hidden(inputs, (name, x) => traced.push([name, x]));
  return E.reshape(E.matmul(E.reshape(h, [B * T, -1]), E.transpose(model.wte)), [B, T, V]);
});
console.log('\nactivations');
for (const [name, x] of traced) console.log(`  ${name.padEnd(12)} ${await stats(x)}`);
out.set('logits', { dtype: 'F32', shape: [B, T, V], data: await logits.toArray() });

const loss = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(inputs, targets));
const { value, grads } = E.valueAndGrad(loss)(...model.parameters());
const lossValue = await value.item();
out.set('loss', { dtype: 'F32', shape: [], data: new Float32Array([lossValue]) });
console.log(`\nloss ${lossValue.toFixed(6)}\n\ngradients`);
for (let i = 0; i < named.length; i++) {
  const g = await grads[i].toArray();
  out.set(`grad.${named[i][0]}`, { dtype: 'F32', shape: [...named[i][1].shape], data: g });
  console.log(`  ${named[i][0].padEnd(28)} ${await stats(grads[i])}`);
}

if (args['hvp-vector']) {
  const vec = readSafetensors(args['hvp-vector']).tensors;
  const v = named.map(([n, p]) => {
    const t = vec.get(n);
    if (!t) throw new Error(`${args['hvp-vector']}: missing vector for parameter '${n}'`);
    if (t.shape.join() !== p.shape.join()) throw new Error(`${args['hvp-vector']}: '${n}' has shape [${t.shape}], the parameter [${p.shape}]`);
    return E.tensor(t.data as Float32Array, t.shape);
  });
  const hv = E.hvp(loss, model.parameters(), v);
  for (let i = 0; i < named.length; i++) out.set(`hvp.${named[i][0]}`, { dtype: 'F32', shape: [...named[i][1].shape], data: await hv[i].toArray() });
  console.log(`\nwrote ${named.length} Hessian-vector products`);
}
writeSafetensors(args.out!, out, { loss: String(lossValue) });
console.log(`\nwrote ${out.size} tensors to ${args.out}`);
