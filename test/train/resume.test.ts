// Checkpoints and resume: a run killed with SIGKILL (or stopped with Ctrl-C) and resumed
// produces the same loss curve, bit for bit, as an uninterrupted run. In f32 through the CLI;
// in f16 in-process (loss scaler state, skipped steps and their finite-step counts).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { ctx } from '../../src/gpu/device.ts';
import { trainRun, type Hooks, type TrainConfig } from '../../src/train/trainer.ts';
import { curve as metricsCurve, data } from './helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ARGS = [
  '--optimizer', 'sophia', '--model', 'tiny', '--n-layer', '1', '--n-embd', '32', '--n-head', '2', '--context', '16', '--batch-size', '2',
  '--max-steps', '14', '--checkpoint-every', '2', '--hess-every', '3', '--eval-every', '7', '--eval-tokens', '64', '--log-every', '1', '--sample-tokens', '4', '--warmup', '2',
];
const cli = (extra: string[]) => [process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', ...ARGS, ...extra]] as const;

// Everything but wall-clock timing must match exactly.
const curve = (dir: string, run = 'sophia') => metricsCurve(join(dir, run, 'metrics.jsonl'));

async function interrupted(signal: NodeJS.Signals): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), `resume-${signal}-`));
  const [cmd, args] = cli(['--out', out]);
  const child = spawn(cmd, args, { cwd: root, stdio: 'ignore' });
  const latest = join(out, 'sophia', 'checkpoints', 'LATEST');
  await new Promise<void>((done, fail) => {
    const poll = setInterval(() => {
      const at = existsSync(latest) ? readFileSync(latest, 'utf8') : '';
      if (/step-0000000[4-9]/.test(at)) {
        clearInterval(poll);
        child.kill(signal);
      }
    }, 20);
    child.on('exit', () => (clearInterval(poll), done()));
    child.on('error', fail);
  });
  expect(existsSync(join(out, 'sophia', 'summary.json'))).toBe(false); // it really was cut short
  expect(readFileSync(join(out, 'sophia', 'metrics.csv'), 'utf8').split('\n').length).toBeGreaterThan(2); // written as rows arrive
  const resumed = spawnSync(cmd, [...args.slice(0, 3), '--resume', out], { cwd: root, encoding: 'utf8' });
  expect(resumed.status, resumed.stderr).toBe(0);
  expect(resumed.stdout).toMatch(/resumed sophia from step \d+/);
  return out;
}

describe('resume', () => {
  let reference: string[];
  it('an uninterrupted run (the reference curve)', () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-ref-'));
    const [cmd, args] = cli(['--out', out]);
    const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    reference = curve(out);
    expect(reference.filter((l) => l.includes('"train"')).length).toBe(14);
  });
  it('killed with SIGKILL after a checkpoint, then resumed: the same curve bit for bit', async () => {
    expect(curve(await interrupted('SIGKILL'))).toEqual(reference);
  });
  it('stopped with Ctrl-C (SIGINT), then resumed: the same curve bit for bit', async () => {
    expect(curve(await interrupted('SIGINT'))).toEqual(reference);
  });
});

describe('resume of a whole --optimizer all job', () => {
  it('killed before any checkpoint: the run in progress starts afresh, the runs not yet begun still run, on the data and settings of the start', async () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-all-'));
    const args = ['--import', 'tsx', 'examples/gpt2-wikitext.ts', '--optimizer', 'all', '--dataset', 'sotu', '--model', 'tiny', '--n-layer', '1', '--n-embd', '32', '--n-head', '2',
      '--context', '16', '--batch-size', '2', '--max-steps', '4', '--checkpoint-every', '0', '--eval-every', '4', '--eval-tokens', '32', '--log-every', '1', '--sample-tokens', '2', '--out', out];
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'ignore' });
    const metrics = join(out, 'sophia', 'metrics.jsonl');
    await new Promise<void>((done, fail) => {
      const poll = setInterval(() => {
        if (existsSync(metrics) && readFileSync(metrics, 'utf8').split('\n').length > 2) {
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }, 20);
      child.on('exit', () => (clearInterval(poll), done()));
      child.on('error', fail);
    });
    expect(existsSync(join(out, 'sophia', 'checkpoints', 'LATEST'))).toBe(false);
    expect(existsSync(join(out, 'adamw'))).toBe(false);
    // No --dataset, and a --lr the resumed job must ignore.
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', '--resume', out, '--lr', '5'], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ignoring --lr/);
    expect(r.stdout).toMatch(/data: State of the Union/);
    expect(r.stdout).toMatch(/sophia: no checkpoint in .*; starting it afresh/);
    for (const name of ['sophia', 'adamw', 'sgd']) {
      expect(existsSync(join(out, name, 'summary.json')), name).toBe(true);
      for (const f of ['model.safetensors', 'optimizer.json', 'optimizer.safetensors']) expect(existsSync(join(out, name, 'model', f)), `${name}/model/${f}`).toBe(true);
      expect(curve(out, name).filter((l) => l.includes('"train"')).length, name).toBe(4);
    }
    const cfg = (name: string) => JSON.parse(readFileSync(join(out, name, 'config.json'), 'utf8')) as { lr: number; weightDecay: number; adapter: string; versions: Record<string, string> };
    expect(cfg('adamw').lr).toBe(3e-3);
    // What produced each run: the adapter Dawn opened and the versions of this package, Node and the bindings.
    for (const name of ['sophia', 'adamw', 'sgd']) {
      expect(cfg(name).adapter, name).toMatch(/\S/);
      expect(Object.keys(cfg(name).versions ?? {}).sort()).toEqual(['engine', 'node', 'webgpu']);
      expect(readFileSync(join(out, name, 'sample.txt'), 'utf8').length, `${name}/sample.txt`).toBeGreaterThan(0);
    }
    // Decay defaults per optimizer: decoupled 0.1 for AdamW and Sophia, none for SGD (torch's default).
    expect([cfg('sophia').weightDecay, cfg('adamw').weightDecay, cfg('sgd').weightDecay]).toEqual([0.1, 0.1, 0]);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  }, 300_000);
});

describe('resume with --precision f16 (in-process)', () => {
  // AdamW with dynamic loss scaling: at the initial scale 2^18 the first step overflows and is
  // skipped; 3 good steps double the scale, which overflows again at step 8. Checkpoints every 2
  // steps, so a resume from step 4 must bring back the scale, its good-step counter and the
  // optimizer's finite-step counts (AdamW's t). A tiny model on the in-memory token stream keeps
  // this to seconds; the CLI tests above cover the process side (SIGKILL, SIGINT) in f32.
  const config = (out: string): TrainConfig => ({
    optimizer: 'adamw', model: 'tiny', nLayer: 1, nHead: 2, nEmbd: 32, batchSize: 2, gradAccum: 1, context: 16, epochs: 1, maxSteps: 8,
    lr: 1e-2, minLr: 1e-3, warmup: 2, schedule: 'cosine', t0: 50, tMult: 1, weightDecay: 0.1, gradClip: 1, hessEvery: 10, rho: 0.04, gamma: 0.01,
    betas: [0.9, 0.95], momentum: 0.9, evalEvery: 4, evalTokens: 32, logEvery: 1, checkpointEvery: 2, seed: 7, out, sampleTokens: 2, maxBadSteps: 3,
    precision: 'f16', lossScale: 2 ** 18, lossScaleWindow: 3,
  });
  const run = async (hooks: Hooks = {}, resumeFrom?: string) => {
    const out = resumeFrom ?? mkdtempSync(join(tmpdir(), 'resume-f16-'));
    await trainRun(config(out), data, {}, { log: () => {}, ...hooks }, resumeFrom !== undefined);
    return out;
  };
  let reference: string[];

  beforeAll(async () => {
    await E.init();
  });

  it('the uninterrupted f16 run (the reference) skips steps and moves its loss scale', async () => {
    if (!ctx().hasF16) return; // without shader-f16 the run would be f32, covered above
    reference = metricsCurve(join(await run(), 'metrics.jsonl'));
    const train = reference.map((l) => JSON.parse(l)).filter((r) => r.type === 'train');
    expect(train.map((r) => r.skippedSteps)).toEqual([1, 1, 1, 1, 1, 1, 1, 2]);
    expect(new Set(train.map((r) => r.lossScale)).size).toBeGreaterThan(1);
  });

  it('crashed after the step-4 checkpoint (at step 5), then resumed: the same curve bit for bit', async () => {
    if (!ctx().hasF16) return;
    const out = mkdtempSync(join(tmpdir(), 'resume-f16-crash-'));
    const crash = (done: number) => {
      if (done === 5) throw new Error('crash');
    };
    await expect(trainRun(config(out), data, {}, { log: () => {}, progress: crash })).rejects.toThrow('crash');
    expect(readFileSync(join(out, 'checkpoints', 'LATEST'), 'utf8').trim()).toBe('step-00000004');
    await run({}, out);
    expect(metricsCurve(join(out, 'metrics.jsonl'))).toEqual(reference);
  });

  it('a lost or truncated metrics file is restored from the checkpoint, which carries the rows so far', async () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-truncated-'));
    const f32 = (o: string): TrainConfig => ({ ...config(o), precision: 'f32' });
    await expect(trainRun(f32(out), data, {}, { log: () => {}, progress: (done) => { if (done === 5) throw new Error('crash'); } })).rejects.toThrow('crash');
    const file = join(out, 'metrics.jsonl');
    const before = readFileSync(file, 'utf8').split('\n').filter((l) => l);
    const ckptRows = readFileSync(join(out, 'checkpoints', 'step-00000004', 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l);
    expect(ckptRows.length).toBeGreaterThan(2);
    expect(ckptRows).toEqual(before.slice(0, ckptRows.length)); // the checkpoint's copy is the file's prefix
    writeFileSync(file, before.slice(0, 2).join('\n') + '\n');
    const logs: string[] = [];
    await trainRun(f32(out), data, {}, { log: (l) => logs.push(l) }, true);
    expect(logs.join('\n')).toMatch(/did not hold the \d+ rows written before step 4; restored them from the checkpoint/);
    expect(readFileSync(file, 'utf8').split('\n').filter((l) => l).slice(0, ckptRows.length)).toEqual(ckptRows);
  });

  it('with a checkpoint of an older version (no rows of its own) a truncated metrics file is refused, and left as it was', async () => {
    const out = mkdtempSync(join(tmpdir(), 'resume-truncated-old-'));
    const f32 = (o: string): TrainConfig => ({ ...config(o), precision: 'f32' });
    await expect(trainRun(f32(out), data, {}, { log: () => {}, progress: (done) => { if (done === 5) throw new Error('crash'); } })).rejects.toThrow('crash');
    rmSync(join(out, 'checkpoints', 'step-00000004', 'metrics.jsonl'));
    const file = join(out, 'metrics.jsonl');
    const kept = readFileSync(file, 'utf8').split('\n').slice(0, 2).join('\n') + '\n';
    writeFileSync(file, kept);
    await expect(trainRun(f32(out), data, {}, { log: () => {} }, true)).rejects.toThrow(/metrics.jsonl holds 2 rows, but the checkpoint of step 4 was written after \d+: the metrics file was truncated/);
    expect(readFileSync(file, 'utf8')).toBe(kept);
  });

  it('stopped (Ctrl-C) after step 5, then resumed: the same curve bit for bit', async () => {
    if (!ctx().hasF16) return;
    let steps = 0;
    const out = await run({ progress: () => void steps++, shouldStop: () => steps === 5 });
    expect(readFileSync(join(out, 'checkpoints', 'LATEST'), 'utf8').trim()).toBe('step-00000005');
    await run({}, out);
    expect(metricsCurve(join(out, 'metrics.jsonl'))).toEqual(reference);
  });
});
