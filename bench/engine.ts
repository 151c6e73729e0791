// Engine benchmark (`npm run bench`): matmul GFLOP/s, elementwise GB/s and per-dispatch overhead,
// with the PyTorch CPU peer (2 threads) measured in the same run. Writes bench/out/engine-<time>.json.
//
// Every case is warmed up first (shaders compile at their first dispatch), then timed as one batch
// of repetitions between two `await runtime.sync()` calls. Besides wall time we report the CPU time
// of lavapipe's two worker threads ("GFLOP/s per worker-CPU": flops / (worker CPU seconds / 2)),
// which shows what the kernels do when they are not sharing the two cores with the waiting JS
// thread or with other processes.
//
// Each case is timed twice (two batches of about S/2 seconds) and the faster batch is kept, as is
// the faster of two PyTorch batches: on a shared machine a neighbour only ever slows a batch down.
// Options: --quick (fewer shapes, shorter batches), --no-peer (skip PyTorch), --seconds=S (target
// seconds per case, default 2), --matmul=simple|tex|tiled (force one matmul kernel; default: the
// engine's choice per shape), --peer-device=cuda (the PyTorch peer on the GPU, f32 with TF32 off).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { add, describeAdapter, initOrExit, manualSeed, matmul, mul, randn, relu, runtime, sub, transpose, type Tensor } from '../src/index.ts';
import { cpuSince, threadTimes } from './cpu-time.ts';
import { lastMatmulKernel, setMatmulStrategy, type MatmulStrategy } from '../src/tensor/kernels/matmul.ts';
import { paceDawnPolling, unpaceDawnPolling } from '../src/gpu/poll.ts';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const noPeer = args.includes('--no-peer');
const peerDevice = args.find((a) => a.startsWith('--peer-device='))?.split('=')[1] ?? 'cpu';
const seconds = Number(args.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? (quick ? 0.5 : 2));
const rounds = 2;
const forced = args.find((a) => a.startsWith('--matmul='))?.split('=')[1] as MatmulStrategy | undefined;
if (forced && !['simple', 'tex', 'tiled'].includes(forced)) {
  console.error(`--matmul=${forced}: expected simple, tex or tiled`);
  process.exit(2);
}

// ---------------------------------------------------------------- timing

interface Timing {
  reps: number;
  ms: number; // wall per repetition
  workerCpuMs: number | null; // worker-thread CPU per repetition, both threads together
  mainCpuMs: number | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Times `fn` as one batch of repetitions. With `sleepMs`, the JS thread first sleeps that long
 * (per repetition) before `runtime.sync()`, so it does not poll Dawn while the workers compute.
 */
async function time(fn: () => void, sleepMs = 0, fixedReps = 0): Promise<Timing> {
  fn(); // warm-up: compiles shaders, sizes pools
  await runtime.sync();
  let t0 = performance.now();
  fn();
  await runtime.sync();
  const once = performance.now() - t0;
  const reps = fixedReps || Math.max(1, Math.round((seconds * 1000) / rounds / Math.max(once, 0.01)));
  // Best of `rounds` batches: the machine may be shared, and a busy neighbour only ever slows us.
  let best: Timing | null = null;
  for (let round = 0; round < rounds; round++) {
    const cpu0 = threadTimes();
    t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    if (sleepMs > 0) {
      runtime.flush();
      await sleep(sleepMs * reps);
    }
    await runtime.sync();
    const ms = (performance.now() - t0) / reps;
    const cpu = cpuSince(cpu0);
    if (!best || ms < best.ms) best = { reps, ms, workerCpuMs: cpu ? (cpu.workers * 1000) / reps : null, mainCpuMs: cpu ? (cpu.main * 1000) / reps : null };
  }
  return best!;
}

// ---------------------------------------------------------------- cases

interface MatmulCase {
  name: string;
  M: number;
  K: number;
  N: number;
  transA: boolean; // A stored as [K, M] and passed as transpose()
  transB: boolean; // B stored as [N, K]
}

const squares = quick ? [256, 1024] : [256, 512, 1024, 2048];
const cases: MatmulCase[] = [
  ...squares.map((s) => ({ name: `${s}³`, M: s, K: s, N: s, transA: false, transB: false })),
  { name: 'gpt2 fc   x·W', M: 4096, K: 768, N: 3072, transA: false, transB: false },
  { name: 'gpt2 proj x·W', M: 4096, K: 3072, N: 768, transA: false, transB: false },
  { name: 'gpt2 attn x·W', M: 4096, K: 768, N: 768, transA: false, transB: false },
  { name: 'gpt2 dW = xᵀ·g', M: 768, K: 4096, N: 3072, transA: true, transB: false },
  { name: 'gpt2 dx = g·Wᵀ', M: 4096, K: 3072, N: 768, transA: false, transB: true },
];
if (quick) cases.splice(cases.findIndex((c) => c.name.startsWith('gpt2 proj')), 2);

const ctxInfo = await initOrExit();
if (forced) setMatmulStrategy(forced);
manualSeed(1234);
const adapter = describeAdapter(ctxInfo);
console.log(`adapter: ${adapter}   cores: ${os.cpus().length}   load: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);

const results: Record<string, unknown>[] = [];

console.log('\nmatmul (f32)');
for (const c of cases) {
  const a = c.transA ? randn([c.K, c.M]) : randn([c.M, c.K]);
  const b = c.transB ? randn([c.N, c.K]) : randn([c.K, c.N]);
  a.realize();
  b.realize();
  const A = c.transA ? transpose(a) : a;
  const B = c.transB ? transpose(b) : b;
  let kernel = '';
  const t = await time(() => {
    const out = matmul(A, B);
    kernel = lastMatmulKernel;
    out.dispose();
  });
  const flops = 2 * c.M * c.N * c.K;
  results.push({
    kind: 'matmul', name: c.name, M: c.M, K: c.K, N: c.N, transA: c.transA, transB: c.transB, kernel, ...t,
    gflops: flops / t.ms / 1e6,
    gflopsPerWorkerCpu: t.workerCpuMs ? flops / (t.workerCpuMs / 2) / 1e6 : null,
  });
  console.log(`  ${c.name.padEnd(16)} ${kernel.padEnd(20)} ${(flops / t.ms / 1e6).toFixed(1).padStart(6)} GFLOP/s  (${t.ms.toFixed(1)} ms × ${t.reps})`);
  for (const x of [A, B, a, b]) x.dispose();
}

// How much the waiting JS thread costs. While a wait is pending, Dawn's Node bindings poll from the
// JS thread; on a 2-core CPU adapter that thread competes with lavapipe's two workers. The engine
// paces those polls (src/gpu/poll.ts); the same case again with Dawn's own spin, and with the JS
// thread asleep for ~95 % of the expected time before it syncs (the least a wait can cost).
const waitCase = cases.find((c) => c.name.startsWith('gpt2 fc')) ?? cases[cases.length - 1];
let waiting: Record<string, unknown> | null = null;
{
  const c = waitCase;
  const prev = results.find((r) => r.name === c.name)!;
  const a = randn([c.M, c.K]).realize();
  const b = randn([c.K, c.N]).realize();
  const estimate = ((prev.workerCpuMs as number | null) ?? (prev.ms as number) * 2) / 2;
  const reps = prev.reps as number;
  const paced = await time(() => matmul(a, b).dispose(), 0, reps);
  unpaceDawnPolling();
  const spinning = await time(() => matmul(a, b).dispose(), 0, reps);
  paceDawnPolling();
  const sleeping = await time(() => matmul(a, b).dispose(), estimate * 0.95, reps);
  const flops = 2 * c.M * c.N * c.K;
  const gf = (t: Timing) => flops / t.ms / 1e6;
  waiting = {
    name: c.name, reps,
    pacedMs: paced.ms, pacedMainCpuMs: paced.mainCpuMs, pacedGflops: gf(paced),
    spinningMs: spinning.ms, spinningMainCpuMs: spinning.mainCpuMs, spinningGflops: gf(spinning),
    sleepingMs: sleeping.ms, sleepingMainCpuMs: sleeping.mainCpuMs, sleepingGflops: gf(sleeping),
  };
  const say = (t: Timing) => `${gf(t).toFixed(1)} GFLOP/s (JS thread busy ${t.mainCpuMs?.toFixed(0)} ms/rep)`;
  console.log(`\nwaiting (${c.name}): paced polls ${say(paced)}; Dawn spinning ${say(spinning)}; sleep first ${say(sleeping)}`);
  a.dispose();
  b.dispose();
}

console.log('\nelementwise');
const n = 1 << 24;
{
  const x = randn([n]).realize();
  const y = randn([n]).realize();
  const ops: [string, () => Tensor][] = [
    ['add', () => add(x, y)],
    ['chain5', () => mul(relu(add(mul(x, y), sub(x, y))), 0.5)],
  ];
  for (const [name, f] of ops) {
    const t = await time(() => f().realize().dispose());
    const bytes = 3 * 4 * n; // read x and y, write the result
    results.push({ kind: 'elementwise', name, n, ...t, gbps: bytes / t.ms / 1e6 });
    console.log(`  ${name.padEnd(16)} ${(bytes / t.ms / 1e6).toFixed(2).padStart(6)} GB/s     (${t.ms.toFixed(2)} ms × ${t.reps})`);
  }
  x.dispose();
  y.dispose();
}

console.log('\ndispatch overhead');
{
  const x = randn([16]).realize();
  const y = randn([16]).realize();
  const count = 1000;
  const t = await time(() => {
    for (let i = 0; i < count; i++) add(x, y).realize().dispose();
  });
  results.push({ kind: 'dispatch', name: 'tiny add ×1000', count, ...t, usPerDispatch: (t.ms * 1000) / count });
  console.log(`  1000 tiny adds, one batch: ${((t.ms * 1000) / count).toFixed(1)} µs per dispatch`);
  x.dispose();
  y.dispose();
}

// ---------------------------------------------------------------- PyTorch peer

interface Peer {
  python: string;
  torch: string;
  threads: number;
  matmul: { name: string; gflops: number; ms: number }[];
  elementwise: { name: string; gbps: number; ms: number }[];
}
let peer: Peer | null = null;
let peerNote = '';
if (noPeer) {
  peerNote = 'skipped (--no-peer)';
} else {
  const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0);
  if (!python) {
    peerNote = 'skipped: no python3 with torch (Debian: apt-get install -y python3-torch libopenblas0-pthread)';
  } else {
    const spec = { matmul: cases.map((c) => [c.name, c.M, c.K, c.N, c.transA, c.transB]), elementwise_n: n, seconds: Math.min(seconds, 2), device: peerDevice };
    const script = fileURLToPath(new URL('./torch_peer.py', import.meta.url));
    try {
      const out = execFileSync(python, [script, JSON.stringify(spec)], {
        env: { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1', OMP_NUM_THREADS: '2' },
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      });
      peer = { python, ...JSON.parse(out.trim().split('\n').pop()!) };
    } catch (e) {
      peerNote = `failed: ${(e as Error).message.split('\n')[0]}`;
    }
  }
}

// ---------------------------------------------------------------- report

console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
console.log(peer ? `peer: PyTorch ${peer.torch} (${peer.python}), ${peerDevice === 'cpu' ? `${peer.threads} threads` : peerDevice}` : `peer: ${peerNote}`);
const row = (cells: string[], widths: number[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
const w = [16, 14, 20, 8, 10, 8, 8];
console.log('\n' + row(['matmul', 'M·K·N', 'kernel', 'GFLOP/s', 'per wCPU*', 'torch', 'ours/pt'], w));
for (const r of results.filter((r) => r.kind === 'matmul')) {
  const p = peer?.matmul.find((m) => m.name === r.name);
  const g = r.gflops as number;
  const pc = r.gflopsPerWorkerCpu as number | null;
  console.log(row([r.name as string, `${r.M}·${r.K}·${r.N}`, r.kernel as string, g.toFixed(1), pc ? pc.toFixed(1) : '-', p ? p.gflops.toFixed(1) : '-', p ? (g / p.gflops).toFixed(3) : '-'], w));
}
console.log('\n' + row(['elementwise', 'floats', '', 'GB/s', '', 'torch', 'ours/pt'], w));
for (const r of results.filter((r) => r.kind === 'elementwise')) {
  const p = peer?.elementwise.find((m) => m.name === r.name);
  const g = r.gbps as number;
  console.log(row([r.name as string, String(r.n), '', g.toFixed(2), '', p ? p.gbps.toFixed(1) : '-', p ? (g / p.gbps).toFixed(3) : '-'], w));
}
if (waiting) {
  const g = (k: string) => (waiting![k] as number).toFixed(1);
  console.log(`\nwaiting, ${waiting.name}: ${g('pacedGflops')} GFLOP/s with paced polls (default), ${g('spinningGflops')} with Dawn spinning, ${g('sleepingGflops')} when the JS thread sleeps first`);
}
const d = results.find((r) => r.kind === 'dispatch')!;
console.log(`\ndispatch overhead: ${(d.usPerDispatch as number).toFixed(1)} µs per tiny dispatch (1000 in one batch)`);
console.log('* per wCPU: flops per second of lavapipe worker-thread CPU time / 2, i.e. throughput without core sharing');

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const outDir = fileURLToPath(new URL('./out/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const file = `${outDir}engine-${stamp}.json`;
let gitCommit = '';
try {
  gitCommit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
} catch {
  /* not a checkout */
}
writeFileSync(
  file,
  JSON.stringify({ date: new Date().toISOString(), commit: gitCommit, adapter, cores: os.cpus().length, loadavg: os.loadavg(), seconds, quick, results, waiting, peer, peerNote }, null, 2),
);
console.log(`\nwrote ${file}`);
process.exit(0);
