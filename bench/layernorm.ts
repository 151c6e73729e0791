// LayerNorm with its statistics from one kernel vs fully composed (`npm run bench:layernorm`):
// forward, forward + backward and an exact HVP at the tiny preset's and GPT-2 small's activation
// shapes, then the tiny GPT-2's whole training step (B=8, T=64, AdamW) with each. Timed in
// alternating batches, best of --rounds (bench/alternate.ts). Writes bench/out/layernorm-<time>.json.
// Options: --quick (tiny shapes only), --rounds=N (default 3), --seconds=S per batch (default 1).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { describeAdapter, grad, hvp, initOrExit, manualSeed, mul, randn, sum, type Tensor } from '../src/index.ts';
import { layerNorm, setLayerNormStrategy, type LayerNormStrategy } from '../src/nn/index.ts';
import { alternate, compareTinyTrainingStep, fmtTiming, slowdown } from './alternate.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.split('=')[1] ?? 3);
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? 1);

// [rows, C]: tiny at 8×64 and 8×128 tokens; GPT-2 small at 1×1024 and 8×1024 tokens.
const shapes: [number, number][] = [[512, 128], [1024, 128], ...(quick ? [] : [[1024, 768], [8192, 768]] as [number, number][])];
const strategies: LayerNormStrategy[] = ['stats-kernel', 'composed'];

const ctxInfo = await initOrExit();
manualSeed(7);
console.log(`adapter: ${describeAdapter(ctxInfo)}   cores: ${os.cpus().length}   load: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log('best of', rounds, 'alternating batches; ms per call, wall (worker-thread CPU)\n');

const results: Record<string, unknown>[] = [];
for (const [rows, C] of shapes) {
  const x = randn([rows, C]).realize();
  const [w, b] = [randn([C]).realize(), randn([C]).realize()];
  const u = randn([rows, C]).realize();
  const dirs = [randn([rows, C]), randn([C]), randn([C])].map((t) => t.realize());
  const loss = (a: Tensor, c: Tensor, d: Tensor) => sum(mul(layerNorm(a, c, d), u));
  const measures: [string, () => void][] = [
    ['forward', () => void layerNorm(x, w, b).realize()],
    ['forward+backward', () => void grad(loss)(x, w, b).forEach((g) => g.realize())],
    ['hvp', () => void hvp(loss, [x, w, b], dirs).forEach((g) => g.realize())],
  ];
  for (const [name, fn] of measures) {
    const best = await alternate(strategies, setLayerNormStrategy, fn, { rounds, seconds });
    const k = best.get('stats-kernel')!;
    const c = best.get('composed')!;
    const ratio = slowdown(k, c);
    console.log(`  [${rows}, ${C}]`.padEnd(16) + `${name.padEnd(17)} stats kernel ${fmtTiming(k)}   composed ${fmtTiming(c)}   composed/kernel ${ratio.toFixed(2)}×`);
    results.push({ shape: [rows, C], measure: name, statsKernel: k, composed: c, composedOverKernel: ratio });
  }
  for (const t of [x, w, b, u, ...dirs]) t.dispose();
}

results.push(await compareTinyTrainingStep(['stats-kernel', 'composed'] as const, setLayerNormStrategy, { rounds, reps: quick ? 2 : 3 }));
setLayerNormStrategy('auto');

mkdirSync('bench/out', { recursive: true });
const file = `bench/out/layernorm-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
writeFileSync(file, JSON.stringify({ adapter: describeAdapter(ctxInfo), load: os.loadavg(), results }, null, 2));
console.log(`\nwrote ${file}`);
