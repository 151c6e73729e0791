// Checkpoints and resume: a run killed with SIGKILL (or stopped with Ctrl-C) and resumed
// produces the same loss curve, bit for bit, as an uninterrupted run.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const ARGS = [
  '--optimizer', 'sophia', '--model', 'tiny', '--n-layer', '1', '--n-embd', '32', '--n-head', '2', '--context', '16', '--batch-size', '2',
  '--max-steps', '14', '--checkpoint-every', '2', '--hess-every', '3', '--eval-every', '7', '--eval-tokens', '64', '--log-every', '1', '--sample-tokens', '4', '--warmup', '2',
];
const cli = (extra: string[]) => [process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', ...ARGS, ...extra]] as const;

function curve(dir: string): string[] {
  // Everything but wall-clock timing must match exactly.
  return readFileSync(join(dir, 'sophia', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => {
      const { stepMs, estimatorMs, ...rest } = JSON.parse(l);
      void stepMs;
      void estimatorMs;
      return JSON.stringify(rest);
    });
}

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
