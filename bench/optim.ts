// `npm run bench:optim`: optimizer step time per parameter on the parameter sets of the GPT-2
// presets (SGD with momentum, Adam, AdamW, Sophia-G's step, and AdamW as it ran before the fused
// kernels), next to torch.optim on the CPU with the same shapes in the same run; then Sophia-G
// (GNB every k = 10) and Sophia-H (Hutchinson, exact HVP, every k = 10) amortised over k training
// steps vs AdamW's training steps. Variants are interleaved round by round and the best round is
// kept (the machine is shared). A benchmark, not a test: it prints a table and writes JSON.
//
//   npm run bench:optim -- [presets=tiny,small|none] [amortised=tiny|none] [B=8] [T=64] [rounds=3]
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as E from '../src/index.ts';
import { functionalCall, GPT2, gpt2Config } from '../src/nn/index.ts';
import * as O from '../src/optim/index.ts';
import { trainStep } from '../src/train/step.ts';

const arg = (i: number, dflt: string) => process.argv[2 + i] ?? dflt;
const presets = arg(0, 'tiny,small') === 'none' ? [] : arg(0, 'tiny,small').split(',');
const amortisedPreset = arg(1, 'tiny');
const B = Number(arg(2, '8'));
const T = Number(arg(3, '64'));
const rounds = Number(arg(4, '3'));
const ctx = await E.initOrExit();

/** AdamW as it ran before fused updates: one kernel per state tensor, each re-reading the rest
 * (it does share this change's leaf deduplication, so the gap shown is the fusion's alone). */
class AdamWUnfused extends O.AdamW {
  protected override update(p: O.NamedParam, grad: E.Tensor, lr: number, wd: number, finite: E.Tensor | null, t: number): void {
    const [b1, b2] = this.betas;
    const write = (target: E.Tensor, next: E.Tensor) => E.assign(target, finite ? E.where(finite, next, target) : next);
    const theta = wd !== 0 ? E.mul(p.param, 1 - lr * wd) : p.param;
    const m = this.buf(p, 'm');
    const v = this.buf(p, 'v');
    write(m, E.add(E.mul(m, b1), E.mul(grad, 1 - b1)));
    write(v, E.add(E.mul(v, b2), E.mul(E.mul(grad, grad), 1 - b2)));
    const denom = E.add(E.div(E.sqrt(v), Math.sqrt(1 - b2 ** t)), this.eps);
    write(p.param, E.sub(theta, E.mul(E.div(m, denom), lr / (1 - b1 ** t))));
  }
}

type Variant = { name: string; make: (named: O.NamedParam[]) => O.Optimizer; bytesPerParam: number };
// Bytes each fused step moves per parameter (f32): the update kernel's loads and stores, plus the
// all-finite check's read of g (nonFinite: 'skip', the default). Sophia counts its win rate in
// the update kernel; the unfused AdamW runs three kernels (m: 3 accesses, v: 3, θ: 4).
const variants: Variant[] = [
  { name: 'SGD (momentum 0.9)', make: (n) => new O.SGD(n, { lr: 1e-3, momentum: 0.9 }), bytesPerParam: 4 * (3 + 2 + 1) },
  { name: 'Adam', make: (n) => new O.Adam(n, { lr: 1e-3 }), bytesPerParam: 4 * (4 + 3 + 1) },
  { name: 'AdamW', make: (n) => new O.AdamW(n, { lr: 1e-3 }), bytesPerParam: 4 * (4 + 3 + 1) },
  { name: 'Sophia-G step', make: (n) => new O.Sophia(n, { lr: 1e-4, form: 'official' }), bytesPerParam: 4 * (4 + 2 + 1) },
  { name: 'AdamW, kernel per tensor (before)', make: (n) => new AdamWUnfused(n, { lr: 1e-3 }), bytesPerParam: 4 * (3 + 3 + 4 + 1) },
];

/** Best of `rounds` interleaved rounds of `reps` calls of each function, in ms per call. */
async function interleaved(fns: (() => void)[], reps: number): Promise<number[]> {
  const best = fns.map(() => Infinity);
  for (const fn of fns) (fn(), await E.runtime.sync()); // warm-up: compiles, state allocation
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      for (let k = 0; k < reps; k++) fns[i]();
      await E.runtime.sync();
      best[i] = Math.min(best[i], (performance.now() - t0) / reps);
    }
  }
  return best;
}

const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
function torchPeer(shapes: number[][]): Record<string, number> | null {
  if (!python) return null;
  const out = execFileSync(python, [new URL('./optim_peer.py', import.meta.url).pathname, JSON.stringify({ shapes, threads: 2, rounds })], {
    env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', OMP_NUM_THREADS: '2' },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}

// ---------------------------------------------------------------- the step alone
const stepRows: { preset: string; params: number; tensors: number; name: string; ms: number; nsPerParam: number; gbps: number; torchMs: number | null }[] = [];
for (const preset of presets) {
  const model = new GPT2(gpt2Config(preset), 0);
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const count = model.numParameters();
  named.forEach((p) => (p.param.grad = E.keep(E.randn([...p.param.shape], 0, 1e-2).realize())));
  const opts = variants.map((v) => v.make(named));
  const ms = await interleaved(
    opts.map((o) => () => E.tidy(() => o.step())),
    preset === 'tiny' ? 5 : 2,
  );
  const peer = torchPeer(named.map((p) => [...p.param.shape]));
  const peerKey: Record<string, string> = { 'SGD (momentum 0.9)': 'sgd', Adam: 'adam', AdamW: 'adamw', 'Sophia-G step': 'sophiag' };
  variants.forEach((v, i) =>
    stepRows.push({ preset, params: count, tensors: named.length, name: v.name, ms: ms[i], nsPerParam: (ms[i] * 1e6) / count, gbps: (v.bytesPerParam * count) / (ms[i] * 1e6), torchMs: peer?.[peerKey[v.name]] ?? null }),
  );
  opts.forEach((o) => o.stateDict().tensors.forEach((t) => t.dispose()));
  named.forEach((p) => p.param.grad?.dispose());
  model.dispose();
}

// ---------------------------------------------------------------- amortised over k = 10
let amortised: { preset: string; B: number; T: number; adamwMs: number; sophiaGMs: number; sophiaGSharedMs: number; sophiaHMs: number; sophiaHSharedMs: number; sophiaHHalfMs: number } | null = null;
if (amortisedPreset !== 'none') {
  const cfg = gpt2Config(amortisedPreset, { nPositions: Math.max(T, gpt2Config(amortisedPreset).nPositions) });
  const model = new GPT2(cfg, 0);
  const named = model.namedParameters().map(([name, param]) => ({ name, param }));
  const rand = (seed: number) => Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + seed * 104729) % cfg.vocabSize);
  const batch = { inputs: rand(1), targets: rand(2) };
  const ids = E.tensor(batch.inputs, [B, T], 'i32');
  const tg = E.tensor(batch.targets, [B, T], 'i32');
  const gen = new E.Generator(3);
  const loss = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(ids, tg));
  // --hess-batch-size B/2: the estimator on half as many sequences.
  const half = Math.max(1, B >> 1);
  const idsHalf = E.tensor(batch.inputs.subarray(0, half * T), [half, T], 'i32');
  const tgHalf = E.tensor(batch.targets.subarray(0, half * T), [half, T], 'i32');
  const lossHalf = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(idsHalf, tgHalf));
  const sampled = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.sampledLoss(ids, tg, gen));
  const adamw = new O.AdamW(named, { lr: 1e-4 });
  const sophiaG = new O.Sophia(named, { lr: 1e-4, form: 'official' });
  const sophiaGShared = new O.Sophia(named, { lr: 1e-4, form: 'official' });
  const sophiaH = new O.Sophia(named, { lr: 1e-4, form: 'paper', gamma: 0.01 });
  const sophiaHShared = new O.Sophia(named, { lr: 1e-4, form: 'paper', gamma: 0.01 });
  const sophiaHHalf = new O.Sophia(named, { lr: 1e-4, form: 'paper', gamma: 0.01 });
  // k = 10 training steps (the trainer's trainStep: forward, backward, update); Sophia estimates
  // ĥ before steps 1, 11, ... in a separate pass, or (shared) inside step 1 from its passes.
  const k10 = (opt: O.Optimizer, estimate?: () => void, shared?: 'gnb' | 'hutchinson') => () => {
    for (let s = 0; s < 10; s++)
      E.tidy(() => {
        const refresh = opt instanceof O.Sophia && opt.wantsHessian();
        if (estimate && refresh) estimate();
        const hessian = shared && refresh ? { sophia: opt as O.Sophia, gen, estimator: shared } : null;
        trainStep(model, opt, [batch], { precision: 'f32', scaler: null, gradClip: 0, shape: [B, T], hessian });
      });
  };
  const [a, g, gs, h, hs, hh] = await interleaved(
    [
      k10(adamw),
      k10(sophiaG, () => sophiaG.updateHessian(O.gnbEstimate(sampled, named, B * T, 'official'), B * T)),
      k10(sophiaGShared, undefined, 'gnb'),
      k10(sophiaH, () => sophiaH.updateHessian(O.hutchinsonEstimate(loss, named, gen), 1)),
      k10(sophiaHShared, undefined, 'hutchinson'),
      k10(sophiaHHalf, () => sophiaHHalf.updateHessian(O.hutchinsonEstimate(lossHalf, named, gen), 1)),
    ],
    1,
  );
  amortised = { preset: amortisedPreset, B, T, adamwMs: a / 10, sophiaGMs: g / 10, sophiaGSharedMs: gs / 10, sophiaHMs: h / 10, sophiaHSharedMs: hs / 10, sophiaHHalfMs: hh / 10 };
}

// ---------------------------------------------------------------- report
const fmt = (x: number, d = 1) => x.toFixed(d);
console.log(`adapter: ${E.describeAdapter(ctx)}; best of ${rounds} interleaved rounds`);
if (!python) console.log('note: PyTorch not found (Debian: apt-get install python3-torch); the torch.optim peer is skipped');
console.log('\noptimizer step alone (gradients given; nonFinite: skip, the default):');
console.log('| preset | params (tensors) | optimizer | ms/step | ns/param | GB/s | torch.optim ms/step (2 threads) | ours/torch |');
console.log('|:--|--:|:--|--:|--:|--:|--:|--:|');
for (const r of stepRows) {
  const peer = r.torchMs === null ? '—' : fmt(r.torchMs);
  const ratio = r.torchMs === null ? '—' : `${fmt(r.ms / r.torchMs, 2)}×`;
  console.log(`| ${r.preset} | ${(r.params / 1e6).toFixed(2)}M (${r.tensors}) | ${r.name} | ${fmt(r.ms)} | ${fmt(r.nsPerParam, 2)} | ${fmt(r.gbps, 2)} | ${peer} | ${ratio} |`);
}
if (amortised) {
  const { adamwMs, sophiaGMs, sophiaGSharedMs, sophiaHMs, sophiaHSharedMs, sophiaHHalfMs } = amortised;
  const vs = (ms: number, target: number) => `${fmt(ms, 0)} ms → ${fmt(ms / adamwMs, 3)}× AdamW (target ≤ ${target})`;
  console.log(`\ntraining step (forward + backward + update), mean over k = 10 steps, GPT-2 ${amortised.preset}, batch ${B}×${T}: AdamW ${fmt(adamwMs, 0)} ms`);
  console.log(`  Sophia-G, GNB on a separate minibatch every 10 (authors' code): ${vs(sophiaGMs, 1.05)}`);
  console.log(`  Sophia-G, GNB sharing the refresh step's forward (--hess-batch shared): ${vs(sophiaGSharedMs, 1.05)}`);
  console.log(`  Sophia-H, Hutchinson HVP on a separate minibatch every 10: ${vs(sophiaHMs, 1.15)}`);
  console.log(`  Sophia-H, HVP sharing the refresh step's forward and backward (--hess-batch shared): ${vs(sophiaHSharedMs, 1.15)}`);
  console.log(`  Sophia-H, HVP on a separate minibatch of ${Math.max(1, B >> 1)} sequences (--hess-batch-size ${Math.max(1, B >> 1)}): ${vs(sophiaHHalfMs, 1.15)}`);
}
mkdirSync('bench/out', { recursive: true });
const file = `bench/out/optim-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ adapter: E.describeAdapter(ctx), rounds, torch: python ? 'present' : null, step: stepRows, amortised }, null, 2) + '\n');
console.log(`wrote ${file}`);
ctx.device.destroy();
