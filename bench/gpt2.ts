// `npm run bench:gpt2`: GPT-2 training-step throughput (forward + backward + AdamW) on this
// engine next to PyTorch CPU measured in the same run, the cost of an exact HVP relative to a
// gradient, and Sophia-G's amortised step cost relative to AdamW's, for the tiny preset (others:
// `npm run bench:gpt2 -- small 8 64`), then GPT-2 small's step at 1×64 when no preset is named.
// A benchmark, not a test: it prints and writes JSON.
// --step-only: the training step and its peak memory alone (GPT-2 124M on a CPU adapter);
// --peer-device=cuda: the PyTorch peer on the GPU (a lent GPU machine, see README).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as E from '../src/index.ts';
import { functionalCall, GPT2, gpt2Config, setAttentionStrategy, type AttentionStrategy } from '../src/nn/index.ts';
import * as O from '../src/optim/index.ts';

// --attention=fused|composed forces one causal-attention implementation (default: auto).
const attention = process.argv.find((a) => a.startsWith('--attention='))?.split('=')[1] as AttentionStrategy | undefined;
if (attention) setAttentionStrategy(attention);
const stepOnly = process.argv.includes('--step-only');
const peerDevice = process.argv.find((a) => a.startsWith('--peer-device='))?.split('=')[1] ?? 'cpu';
const [preset = 'tiny', bArg = '8', tArg = '64'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const B = Number(bArg);
const T = Number(tArg);
const ctx = await E.initOrExit();
const cfg = gpt2Config(preset, { nPositions: Math.max(T, gpt2Config(preset).nPositions) });
const model = new GPT2(cfg, 0);
const opt = new O.AdamW(O.defaultParamGroups(model.namedParameters(), 0.1), { lr: 1e-3 });
const rand = (seed: number) => Int32Array.from({ length: B * T }, (_, i) => (i * 7919 + seed * 104729) % cfg.vocabSize);
const ids = E.tensor(rand(1), [B, T], 'i32');
const tg = E.tensor(rand(2), [B, T], 'i32');
const step = () =>
  E.tidy(() => {
    model.loss(ids, tg).backward();
    opt.step();
    opt.zeroGrad();
  });

for (let i = 0; i < 2; i++) step();
await E.runtime.sync();
const n = stepOnly && preset === 'gpt2' ? 2 : 5;
E.resetPeakMemory();
const t0 = performance.now();
for (let i = 0; i < n; i++) step();
await E.runtime.sync();
const ms = (performance.now() - t0) / n;
// Peak bytes of GPU buffers over the timed steps: live = held by tensors (parameters, optimizer
// state, activations, gradients); held = live + the pool's free lists, i.e. taken from the driver.
const mem = E.memoryStats();
const ours = { msPerStep: ms, tokensPerS: (B * T) / (ms / 1000), peakLiveBytes: mem.peakLiveBytes, peakHeldBytes: mem.peakHeldBytes };

// Gradient vs exact HVP (double backward) vs jvp (the loss's directional derivative along the
// same vector, by double VJP) on the same batch: interleaved rounds, so load on a shared machine
// hits all three alike; the ratios are medians of per-round ratios.
const params = model.parameters();
const f = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(ids, tg));
const probe = params.map((p) => E.keep(E.randn([...p.shape]).realize()));
const timeIt = async (fn: () => void, reps = 3): Promise<number> => {
  E.tidy(fn);
  await E.runtime.sync();
  const t = performance.now();
  for (let i = 0; i < reps; i++) E.tidy(fn);
  await E.runtime.sync();
  return (performance.now() - t) / reps;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const skip = async (): Promise<number> => NaN;
const second = { grad: () => void E.grad(f)(...params), hvp: () => void E.hvp(f, params, probe), jvp: () => void E.jvp(f, params, probe) };
const rounds: Record<keyof typeof second, number[]> = { grad: [], hvp: [], jvp: [] };
if (!stepOnly) {
  for (const fn of Object.values(second)) await timeIt(fn, 1); // warm-up: shader compiles, pool
  for (let r = 0; r < 4; r++) for (const [k, fn] of Object.entries(second)) rounds[k as keyof typeof second].push(await timeIt(fn, 1));
}
const gradMs = median(rounds.grad);
const hvpMs = median(rounds.hvp);
const jvpMs = median(rounds.jvp);
const hvpRatio = median(rounds.hvp.map((h, i) => h / rounds.grad[i]));
const jvpRatio = median(rounds.jvp.map((j, i) => j / rounds.grad[i]));

// Optimizer cost over k = 10 steps: AdamW steps vs Sophia-G steps plus one GNB estimate.
const named = model.namedParameters().map(([name, param]) => ({ name, param }));
const withGrads = (fn: () => void) => () => {
  model.loss(ids, tg).backward();
  fn();
  for (const p of params) (p.grad?.dispose(), (p.grad = null));
};
const adamw = new O.AdamW(named, { lr: 1e-4 });
const sophia = new O.Sophia(named, { lr: 1e-4, form: 'official' });
const gen = new E.Generator(3);
const adamwMs = stepOnly ? await skip() : await timeIt(withGrads(() => adamw.step()), 10);
const sophiaMs = stepOnly ? await skip() : await timeIt(
  withGrads(() => {
    if (sophia.wantsHessian()) sophia.updateHessian(O.gnbEstimate((...ps) => functionalCall(model, ps, () => model.sampledLoss(ids, tg, gen)), named, B * T, 'official'), B * T);
    sophia.step();
  }),
  10,
);

let peer: { msPerStep: number; tokensPerS: number; torch: string; peakBytes: number | null; gradMs: number; hvpMs: number; hvpRatio: number; jvpMs: number; jvpRatio: number } | null = null;
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (python) {
  const spec = { nLayer: cfg.nLayer, nHead: cfg.nHead, nEmbd: cfg.nEmbd, vocab: cfg.vocabSize, context: T, batch: B, threads: 2, steps: n, device: peerDevice, stepOnly };
  try {
    const out = execFileSync(python, [new URL('./gpt2_peer.py', import.meta.url).pathname, JSON.stringify(spec)], {
      env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', OMP_NUM_THREADS: '2' },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    peer = JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    // The engine's figures still get printed and saved; say why the peer is missing.
    const err = String((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop();
    console.log(`note: the PyTorch peer (${peerDevice}) failed: ${err}`);
  }
} else {
  console.log('note: PyTorch not found (Debian: apt-get install python3-torch); the peer is skipped');
}

console.log(`adapter: ${E.describeAdapter(ctx)}`);
console.log(`GPT-2 ${preset} (${(model.numParameters() / 1e6).toFixed(1)}M parameters), batch ${B}×${T}, forward + backward + AdamW`);
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(`  this engine : ${ours.msPerStep.toFixed(0)} ms/step  ${ours.tokensPerS.toFixed(0)} tokens/s  peak GPU buffers ${mib(ours.peakLiveBytes)} live, ${mib(ours.peakHeldBytes)} held`);
if (!stepOnly) console.log(`  gradient ${gradMs.toFixed(0)} ms, exact HVP ${hvpMs.toFixed(0)} ms → HVP/gradient ${hvpRatio.toFixed(2)}×; jvp (directional derivative) ${jvpMs.toFixed(0)} ms → ${jvpRatio.toFixed(2)}×`);
if (!stepOnly) console.log(`  training step incl. update, mean over k = 10: AdamW ${adamwMs.toFixed(0)} ms, Sophia-G (GNB every 10) ${sophiaMs.toFixed(0)} ms → ${(sophiaMs / adamwMs).toFixed(2)}×`);
if (peer) {
  const where = peerDevice === 'cpu' ? 'CPU (2 threads)' : peerDevice;
  const peerMem = peer.peakBytes ? `  peak allocated ${mib(peer.peakBytes)}` : '';
  console.log(`  PyTorch ${peer.torch} ${where}: ${peer.msPerStep.toFixed(0)} ms/step  ${peer.tokensPerS.toFixed(0)} tokens/s${peerMem}  → ratio ${(ours.tokensPerS / peer.tokensPerS).toFixed(3)}`);
  if (!stepOnly) console.log(`  PyTorch gradient ${peer.gradMs.toFixed(0)} ms, exact HVP ${peer.hvpMs.toFixed(0)} ms → HVP/gradient ${peer.hvpRatio.toFixed(2)}×; jvp ${peer.jvpMs.toFixed(0)} ms → ${peer.jvpRatio.toFixed(2)}×`);
}
mkdirSync('bench/out', { recursive: true });
const file = `bench/out/gpt2-${preset}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ preset, B, T, adapter: E.describeAdapter(ctx), ours, peer, gradMs, hvpMs, jvpMs, hvpRatio, jvpRatio, adamwMs, sophiaMs }, null, 2) + '\n');
console.log(`wrote ${file}`);
ctx.device.destroy();

// With no preset named, GPT-2 small (124M) follows: its training step and peak memory at 1×64, in
// a fresh process (its own device and buffer pool), next to PyTorch's.
if (process.argv.slice(2).filter((a) => !a.startsWith('--')).length === 0) {
  console.log('');
  const flags = process.argv.slice(2).filter((a) => a.startsWith('--peer-device=') || a.startsWith('--attention='));
  spawnSync(process.execPath, [...process.execArgv, process.argv[1], 'gpt2', '1', '64', '--step-only', ...flags], { stdio: 'inherit' });
}
