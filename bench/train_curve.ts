// `npx tsx bench/train_curve.ts [preset=tiny] [B=8] [T=64] [steps=30] [lr=3e-3]`: the main job's
// AdamW run, step for step, next to PyTorch. Both start from the same initial weights (saved here
// in Hugging Face layout) and train on the same WikiText-2 batches with the same parameter groups,
// learning rates (warm-up + cosine) and global-norm clipping; the PyTorch side is the independent
// functional GPT-2 of scripts/gpt2_fixture.py with torch.optim.AdamW, run in float32 (the peer)
// and in float64 (the reference both float32 curves are measured against: f32 training drifts
// from exact arithmetic, and the question is whether this engine drifts more than PyTorch does).
// Prints the curves, the largest differences and tokens/s (after 2 warm-up steps), writes JSON.
// A benchmark and an end-to-end numerics check; the per-piece tolerances live in the tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatchLoader, resolveCorpus, tokenizeSplit } from '../src/data/index.ts';
import * as E from '../src/index.ts';
import { GPT2, gpt2Config, saveGPT2 } from '../src/nn/index.ts';
import * as O from '../src/optim/index.ts';
import { trainStep, type Batch } from '../src/train/step.ts';

const [preset = 'tiny', bArg = '8', tArg = '64', sArg = '30', lrArg = '3e-3'] = process.argv.slice(2);
const [B, T, steps, lr] = [Number(bArg), Number(tArg), Number(sArg), Number(lrArg)];
const WARM = 2;
const root = fileURLToPath(new URL('..', import.meta.url));
const ctx = await E.initOrExit();

const shared = resolve(root, '../shared/data');
const corpus = await resolveCorpus({ dataset: 'wikitext-2', dataDir: process.env.WIKITEXT_DIR ? undefined : shared, splits: ['train'], allowDownload: false });
const train = (await tokenizeSplit(corpus, 'train')).tokens;
const loader = new BatchLoader(train, { batchSize: B, blockSize: T, seed: 1337 });
const batches: Batch[] = Array.from({ length: steps }, () => loader.next());

const cfg = gpt2Config(preset, { nPositions: Math.max(T, gpt2Config(preset).nPositions) });
const model = new GPT2(cfg, 1337);
const dir = mkdtempSync(join(tmpdir(), 'train-curve-'));
await saveGPT2(model, join(dir, 'model'));
const flat = new Int32Array(steps * 2 * B * T);
batches.forEach((b, i) => (flat.set(b.inputs, (2 * i) * B * T), flat.set(b.targets, (2 * i + 1) * B * T)));
writeFileSync(join(dir, 'batches.i32'), flat);

const weightDecay = 0.1;
const groups = O.defaultParamGroups(model.namedParameters(), weightDecay);
const opt = new O.AdamW(groups, { lr, betas: [0.9, 0.95], eps: 1e-8 });
const schedule = O.withWarmup(3, O.cosine(lr, lr / 10, steps - 3));
const lrs = Array.from({ length: steps }, (_, i) => schedule(i));
const losses: E.Tensor[] = [];
let t0 = 0;
for (let i = 0; i < steps; i++) {
  if (i === WARM) {
    await E.runtime.sync();
    t0 = performance.now();
  }
  opt.lr = lrs[i];
  losses.push(E.tidy(() => trainStep(model, opt, [batches[i]], { precision: 'f32', scaler: null, gradClip: 1, shape: [B, T] }).loss));
}
const ours = Array.from(await E.concat(losses.map((l) => E.reshape(l, [1]))).toArray());
const oursTokS = ((steps - WARM) * B * T) / ((performance.now() - t0) / 1000);

const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0);
console.log(`adapter: ${E.describeAdapter(ctx)}; GPT-2 ${preset}, batch ${B}×${T}, ${steps} AdamW steps (lr ${lr}, warm-up 3, cosine to lr/10, clip 1, wd ${weightDecay})`);
type Peer = { torch: string; threads: number; losses: number[]; tokensPerS: number };
let peer: Peer | null = null;
let f64: Peer | null = null;
if (!python) console.log('peer: skipped (no python3 with torch and numpy; Debian: apt-get install python3-torch libopenblas0-pthread)');
else {
  const spec = { model: join(dir, 'model'), batches: join(dir, 'batches.i32'), batch: B, context: T, steps, warm: WARM, lrs, betas: [0.9, 0.95], weightDecay, gradClip: 1, decay: groups[0].params.map((p) => p.name), threads: 2 };
  const run = (dtype: string): Peer =>
    JSON.parse(execFileSync(python, [join(root, 'bench/train_curve_peer.py'), JSON.stringify({ ...spec, dtype })], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop()!);
  peer = run('float32');
  f64 = run('float64');
}
const e = (x: number | undefined) => (x === undefined ? '—' : x.toExponential(2));
console.log('\n| step | lr | this engine (f32) | PyTorch f32 | PyTorch f64 | engine − f64 | PyTorch f32 − f64 |\n|--:|--:|--:|--:|--:|--:|--:|');
let worst = 0;
let worstPeer = 0;
ours.forEach((l, i) => {
  const [p, r] = [peer?.losses[i], f64?.losses[i]];
  if (r !== undefined) worst = Math.max(worst, Math.abs(l - r));
  if (p !== undefined && r !== undefined) worstPeer = Math.max(worstPeer, Math.abs(p - r));
  console.log(`| ${i + 1} | ${lrs[i].toExponential(2)} | ${l.toFixed(5)} | ${p?.toFixed(5) ?? '—'} | ${r?.toFixed(5) ?? '—'} | ${e(r === undefined ? undefined : l - r)} | ${e(p === undefined || r === undefined ? undefined : p - r)} |`);
});
console.log(`\nlargest |loss − float64 loss| over ${steps} steps: this engine ${f64 ? worst.toExponential(2) : '—'}, PyTorch f32 ${f64 ? worstPeer.toExponential(2) : '—'}`);
console.log(`tokens/s (steps ${WARM + 1}–${steps}): this engine ${oursTokS.toFixed(0)}${peer ? `, PyTorch ${peer.torch} CPU (${peer.threads} threads) ${peer.tokensPerS.toFixed(0)} → ${(oursTokS / peer.tokensPerS).toFixed(2)}×` : ''}`);
mkdirSync(join(root, 'bench/out'), { recursive: true });
const file = join(root, 'bench/out', `train-curve-${preset}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ preset, B, T, steps, lr, lrs, ours, peer, f64, oursTokS, worst, worstPeer }, null, 2));
console.log(`wrote ${file}`);
