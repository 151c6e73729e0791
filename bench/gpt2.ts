// `npm run bench:gpt2`: GPT-2 training-step throughput (forward + backward + AdamW) on this
// engine next to PyTorch CPU measured in the same run, for the tiny preset (and others by flag:
// `npm run bench:gpt2 -- small 8 64`). A benchmark, not a test: it prints and writes JSON.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as E from '../src/index.ts';
import { GPT2, gpt2Config } from '../src/nn/index.ts';
import * as O from '../src/optim/index.ts';

const [preset = 'tiny', bArg = '8', tArg = '64'] = process.argv.slice(2);
const B = Number(bArg);
const T = Number(tArg);
const ctx = await E.init();
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
const n = 5;
const t0 = performance.now();
for (let i = 0; i < n; i++) step();
await E.runtime.sync();
const ms = (performance.now() - t0) / n;
const ours = { msPerStep: ms, tokensPerS: (B * T) / (ms / 1000) };

let peer: { msPerStep: number; tokensPerS: number; torch: string } | null = null;
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
if (python) {
  const spec = { nLayer: cfg.nLayer, nHead: cfg.nHead, nEmbd: cfg.nEmbd, vocab: cfg.vocabSize, context: T, batch: B, threads: 2, steps: 5 };
  const out = execFileSync(python, [new URL('./gpt2_peer.py', import.meta.url).pathname, JSON.stringify(spec)], {
    env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', OMP_NUM_THREADS: '2' },
    encoding: 'utf8',
  });
  peer = JSON.parse(out.trim().split('\n').pop()!);
} else {
  console.log('note: PyTorch not found (Debian: apt-get install python3-torch); the peer is skipped');
}

console.log(`adapter: ${E.describeAdapter(ctx)}`);
console.log(`GPT-2 ${preset} (${(model.numParameters() / 1e6).toFixed(1)}M parameters), batch ${B}×${T}, forward + backward + AdamW`);
console.log(`  this engine : ${ours.msPerStep.toFixed(0)} ms/step  ${ours.tokensPerS.toFixed(0)} tokens/s`);
if (peer) console.log(`  PyTorch ${peer.torch} CPU (2 threads): ${peer.msPerStep.toFixed(0)} ms/step  ${peer.tokensPerS.toFixed(0)} tokens/s  → ratio ${(ours.tokensPerS / peer.tokensPerS).toFixed(3)}`);
mkdirSync('bench/out', { recursive: true });
const file = `bench/out/gpt2-${preset}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ preset, B, T, adapter: E.describeAdapter(ctx), ours, peer }, null, 2) + '\n');
console.log(`wrote ${file}`);
ctx.device.destroy();
