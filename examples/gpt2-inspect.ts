// Inspect a GPT-2 on one batch: logits, loss, every gradient and (optionally) an exact
// Hessian-vector product, written to one safetensors file for comparison with PyTorch.
//
//   tsx examples/gpt2-inspect.ts --model DIR --tokens FILE.json --out OUT.safetensors [--hvp-vector V.safetensors]
//     [--steps N --optimizer sgd|adam|adamw|sophia-g|sophia-h [--lr --weight-decay --beta1 --beta2 --eps
//       --momentum --dampening --nesterov --amsgrad --rho --gamma --hess-every --clip-threshold --bias-correct-h]]
//     [--hessian-diag gnb|hutchinson --samples S --seed N] [--probe rademacher|gaussian]
//
// --steps runs N optimizer steps on the batch and adds param.<name> and state.<name>.<key>;
// hyperparameters not given take the optimizer's defaults (torch.optim's for SGD, Adam, AdamW).
// --hessian-diag adds hdiag.<name>, the mean of S estimates of the Hessian's diagonal (GNB in the
// paper's scale, B·ĝ⊙ĝ; Hutchinson u⊙Hu with --probe vectors, Rademacher by default) at the
// loaded weights. N and S are positive integers: --steps 0 is refused (it would write the loaded
// weights back as param.* and no optimizer state, which reads like a step that changed nothing).
//
// FILE.json: {"inputs": [[...]], "targets": [[...]]} (B×T token ids; targets may use -100 to ignore).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as E from '../src/index.ts';
import { functionalCall, headLogits, loadGPT2, readSafetensors, writeSafetensors, type HostTensor } from '../src/nn/index.ts';
import * as O from '../src/optim/index.ts';

const USAGE =
  'usage: tsx examples/gpt2-inspect.ts --model DIR --tokens FILE.json --out OUT.safetensors [--hvp-vector V.safetensors]\n' +
  '       [--steps N --optimizer sgd|adam|adamw|sophia-g|sophia-h [--lr X --weight-decay X --beta1 X --beta2 X --eps X --momentum X --dampening X\n' +
  '        --nesterov --amsgrad --rho X --gamma X --hess-every K --clip-threshold X --bias-correct-h]]\n' +
  '       [--hessian-diag gnb|hutchinson --samples S --seed N] [--probe rademacher|gaussian]\n' +
  '       --steps N and --samples S are positive integers (1, 2, ...); S defaults to 1';
const NUM = ['steps', 'lr', 'weight-decay', 'beta1', 'beta2', 'eps', 'momentum', 'dampening', 'rho', 'gamma', 'hess-every', 'clip-threshold', 'samples', 'seed'] as const;
let args;
try {
  args = parseArgs({
    options: {
      model: { type: 'string' },
      tokens: { type: 'string' },
      out: { type: 'string' },
      'hvp-vector': { type: 'string' },
      optimizer: { type: 'string' },
      'hessian-diag': { type: 'string' },
      probe: { type: 'string' },
      help: { type: 'boolean' },
      nesterov: { type: 'boolean' },
      amsgrad: { type: 'boolean' },
      'bias-correct-h': { type: 'boolean' },
      ...Object.fromEntries(NUM.map((k) => [k, { type: 'string' as const }])),
    },
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

const num = (k: (typeof NUM)[number], dflt: number): number => {
  const v = (args as Record<string, string | undefined>)[k];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) {
    console.error(`--${k} must be a number, got '${v}'\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
/** A count flag: a whole number ≥ 1 (a fractional --samples would rescale the mean; 0 steps or samples write nothing useful). */
const count = (k: 'steps' | 'samples', dflt: number): number => {
  const n = num(k, dflt);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${k} must be a positive integer (1, 2, ...), got '${(args as Record<string, string | undefined>)[k]}'\n${USAGE}`);
    process.exit(2);
  }
  return n;
};
// Checked before the GPU and the model load, so a bad count fails at once.
const steps = count('steps', 1);
const samples = count('samples', 1);
const OPTS = ['sgd', 'adam', 'adamw', 'sophia-g', 'sophia-h'];
if (args.optimizer && !OPTS.includes(args.optimizer)) {
  console.error(`--optimizer must be one of ${OPTS.join(', ')}; got '${args.optimizer}'`);
  process.exit(2);
}
if (args['hessian-diag'] && !['gnb', 'hutchinson'].includes(args['hessian-diag'])) {
  console.error(`--hessian-diag must be gnb or hutchinson; got '${args['hessian-diag']}'`);
  process.exit(2);
}
if (args.probe && !['rademacher', 'gaussian'].includes(args.probe)) {
  console.error(`--probe must be rademacher or gaussian; got '${args.probe}'`);
  process.exit(2);
}
if (((args as Record<string, unknown>).steps !== undefined) !== (args.optimizer !== undefined)) {
  console.error(`--steps N and --optimizer (${OPTS.join(', ')}) go together: one names the optimizer, the other how many steps it takes`);
  process.exit(2);
}
const probe = (args.probe ?? 'rademacher') as O.Probe;

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

await E.initOrExit();
const model = loadGPT2(args.model!);
const batch = readBatch(args.tokens!);
const [B, T] = [batch.inputs.length, batch.inputs[0].length];
const V = model.config.vocabSize;
for (const id of batch.inputs.flat()) if (id < 0 || id >= V) throw new Error(`${args.tokens}: input id ${id} is outside the vocabulary [0, ${V})`);
// Targets < 0 (PyTorch's -100) are left unscored; anything else must be a token of the vocabulary.
for (const id of batch.targets.flat()) if (id >= V) throw new Error(`${args.tokens}: target id ${id} is outside the vocabulary [0, ${V}) (use -100 to leave a position unscored)`);
const inputs = E.tensor(new Int32Array(batch.inputs.flat()), [B, T], 'i32');
const targets = E.tensor(new Int32Array(batch.targets.flat()), [B, T], 'i32');
// Sophia's batch size B counts the scored tokens (targets ≥ 0), as the training run's does.
const scoredTokens = Math.max(1, batch.targets.flat().filter((t) => t >= 0).length);
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
  // The LM head as training computes it: in vocabulary slices where W exceeds one storage binding.
  return E.reshape(headLogits(E.reshape(h, [B * T, -1]), model.wte), [B, T, V]);
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
const paramsNamed = () => model.namedParameters().map(([name, param]) => ({ name, param }));

if (args['hessian-diag']) {
  const kind = args['hessian-diag'];
  const gen = new E.Generator(num('seed', 0));
  const named2 = paramsNamed();
  const sum = new Map<string, E.Tensor>();
  for (let s = 0; s < samples; s++) {
    const est =
      kind === 'gnb'
        ? O.gnbEstimate((...ps) => functionalCall(model, ps, () => model.sampledLoss(inputs, targets, gen)), named2, scoredTokens, 'paper')
        : O.hutchinsonEstimate(loss, named2, gen, probe);
    for (const [n, t] of est) sum.set(n, E.keep(sum.has(n) ? E.add(sum.get(n)!, t).realize() : t));
  }
  for (const [n, t] of sum) out.set(`hdiag.${n}`, { dtype: 'F32', shape: [...t.shape], data: await E.mul(t, 1 / samples).toArray() });
  console.log(`\nwrote ${sum.size} Hessian-diagonal estimates (${kind}, ${samples} sample${samples > 1 ? 's' : ''})`);
}

if ((args as Record<string, unknown>).steps !== undefined) {
  const lr = num('lr', 1e-3);
  // Only what was given: the rest keep each optimizer's own defaults (AdamW decays 0.01, Sophia 0.1).
  const given = <K extends (typeof NUM)[number]>(k: K, key: string) => ((args as Record<string, unknown>)[k] === undefined ? {} : { [key]: num(k, 0) });
  const betas = (args as Record<string, unknown>).beta1 !== undefined || (args as Record<string, unknown>).beta2 !== undefined
    ? { betas: [num('beta1', args.optimizer!.startsWith('sophia') ? 0.965 : 0.9), num('beta2', args.optimizer!.startsWith('sophia') ? 0.99 : 0.999)] as [number, number] }
    : {};
  const base = { lr, ...given('weight-decay', 'weightDecay') };
  const named2 = paramsNamed();
  const opt: O.Optimizer =
    args.optimizer === 'sgd'
      ? new O.SGD(named2, { ...base, ...given('momentum', 'momentum'), ...given('dampening', 'dampening'), nesterov: args.nesterov ?? false })
      : args.optimizer === 'adam' || args.optimizer === 'adamw'
        ? new (args.optimizer === 'adam' ? O.Adam : O.AdamW)(named2, { ...base, ...betas, ...given('eps', 'eps'), amsgrad: args.amsgrad ?? false })
        : new O.Sophia(named2, {
            ...base,
            ...betas,
            ...given('eps', 'eps'),
            form: args.optimizer === 'sophia-g' ? 'official' : 'paper',
            ...given('rho', 'rho'),
            ...given('gamma', 'gamma'),
            ...given('hess-every', 'hessianEvery'),
            ...given('clip-threshold', 'clipThreshold'),
            biasCorrection: args['bias-correct-h'] ?? false,
          });
  for (const [flag, applies] of [['nesterov', 'sgd'], ['amsgrad', 'adam'], ['bias-correct-h', 'sophia']] as const) {
    if ((args as Record<string, unknown>)[flag] && !args.optimizer!.startsWith(applies)) console.warn(`note: --${flag} applies to ${applies}; ignored for ${args.optimizer}`);
  }
  const gen = new E.Generator(num('seed', 0));
  for (let s = 0; s < steps; s++) {
    if (opt instanceof O.Sophia && opt.wantsHessian()) {
      const est =
        args.optimizer === 'sophia-g'
          ? O.gnbEstimate((...ps) => functionalCall(model, ps, () => model.sampledLoss(inputs, targets, gen)), named2, scoredTokens, 'official')
          : O.hutchinsonEstimate(loss, named2, gen, probe);
      opt.updateHessian(est, scoredTokens);
    }
    E.tidy(() => model.loss(inputs, targets).backward());
    opt.step();
    opt.zeroGrad();
  }
  for (const [n, p] of model.namedParameters()) out.set(`param.${n}`, { dtype: 'F32', shape: [...p.shape], data: await p.toArray() });
  for (const [k, t] of opt.stateDict().tensors) if (k.startsWith('state.')) out.set(k, { dtype: 'F32', shape: [...t.shape], data: await t.toArray() });
  console.log(`\nran ${steps} ${args.optimizer} step${steps > 1 ? 's' : ''}; wrote parameters and optimizer state`);
}

writeSafetensors(args.out!, out, { loss: String(lossValue) });
console.log(`\nwrote ${out.size} tensors to ${args.out}`);
