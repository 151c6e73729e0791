// Fused vs composed causal attention (`npm run bench:attention`): forward, forward + backward, and
// an exact HVP, at the tiny preset's shapes and GPT-2 small's, then the tiny GPT-2's whole training
// step (forward, backward, AdamW; B=8, T=64) with each. Writes bench/out/attention-<time>.json.
//
// The two implementations are timed alternately, each as a batch of repetitions between two
// `await runtime.sync()` calls, best of --rounds batches (a busy neighbour only slows a batch
// down). Besides wall time we report the CPU time of lavapipe's two worker threads, which is
// steadier on a shared machine. Shaders are compiled by a warm-up call first.
// Options: --quick (tiny shapes only), --rounds=N (default 3), --seconds=S per batch (default 1),
// --kernel=subgroup|tiled (the fused forward kernel; default: the adapter's, see kernels/attention.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { describeAdapter, grad, hvp, initOrExit, manualSeed, mul, randn, sum, type Tensor } from '../src/index.ts';
import { causalAttention, setAttentionStrategy, type AttentionStrategy } from '../src/nn/index.ts';
import { setAttentionKernel, type AttentionKernel } from '../src/tensor/kernels/attention.ts';
import { alternate, compareTinyTrainingStep, fmtTiming, slowdown } from './alternate.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3);
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? 1);
const kernel = (args.find((a) => a.startsWith('--kernel='))?.split('=')[1] ?? 'auto') as AttentionKernel;
if (!['auto', 'subgroup', 'tiled'].includes(kernel)) throw new Error(`--kernel must be subgroup or tiled, got ${kernel}`);
setAttentionKernel(kernel);

const shapes: [number, number, number, number][] = [
  [8, 4, 64, 32],
  [8, 4, 128, 32],
  ...(quick ? [] : [[1, 12, 1024, 64] as [number, number, number, number]]),
];
const strategies: AttentionStrategy[] = ['fused', 'composed'];

const ctxInfo = await initOrExit();
manualSeed(7);
console.log(`adapter: ${describeAdapter(ctxInfo)}   cores: ${os.cpus().length}   load: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(`fused forward kernel: ${kernel}`);
console.log('best of', rounds, 'alternating batches; ms per call, wall (worker-thread CPU)\n');

const results: Record<string, unknown>[] = [];
for (const [B, H, T, D] of shapes) {
  const shape = [B, H, T, D];
  const [q, k, v, w] = [0, 1, 2, 3].map(() => randn(shape).realize());
  const dirs = [0, 1, 2].map(() => randn(shape).realize());
  const loss = (a: Tensor, b: Tensor, c: Tensor) => sum(mul(causalAttention(a, b, c), w));
  const measures: [string, () => void][] = [
    ['forward', () => void causalAttention(q, k, v).realize()],
    ['forward+backward', () => void grad(loss)(q, k, v).forEach((g) => g.realize())],
    ['hvp', () => void hvp(loss, [q, k, v], dirs).forEach((g) => g.realize())],
  ];
  for (const [name, fn] of measures) {
    const best = await alternate(strategies, setAttentionStrategy, fn, { rounds, seconds });
    const f = best.get('fused')!;
    const c = best.get('composed')!;
    const ratio = slowdown(f, c);
    console.log(`  [${shape.join(', ')}]`.padEnd(22) + `${name.padEnd(17)} fused ${fmtTiming(f)}   composed ${fmtTiming(c)}   composed/fused ${ratio.toFixed(2)}×`);
    results.push({ shape, measure: name, fused: f, composed: c, composedOverFused: ratio });
  }
  for (const t of [q, k, v, w, ...dirs]) t.dispose();
}

results.push(await compareTinyTrainingStep(['fused', 'composed'] as const, setAttentionStrategy, { rounds, reps: quick ? 2 : 3 }));
setAttentionStrategy('auto');

mkdirSync('bench/out', { recursive: true });
const file = `bench/out/attention-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ adapter: describeAdapter(ctxInfo), kernel, load: os.loadavg(), results }, null, 2));
console.log(`\nwrote ${file}`);
