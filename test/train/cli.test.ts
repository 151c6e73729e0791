// The training example's flag parser: both spellings of a value, which flags were given, and
// messages that name what is valid; --model checked before any data is read.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError, type FlagSpec } from '../../src/train/cli.ts';
import { checkModelChoice } from '../../src/train/trainer.ts';

const SPEC = {
  epochs: { type: 'number', default: 1, min: 0, exclusive: true, help: '' },
  maxSteps: { type: 'int', default: 30, min: 1, help: '' },
  optimizer: { type: 'string', default: 'all', choices: ['sophia', 'adamw', 'all'], help: '' },
  biasCorrectH: { type: 'bool', default: false, help: '' },
} satisfies Record<string, FlagSpec>;

describe('parseFlags', () => {
  it('reads --flag value and --flag=value alike, and records which flags were given', () => {
    for (const argv of [['--epochs', '5'], ['--epochs=5']]) {
      const f = parseFlags(SPEC, argv);
      expect(f.epochs).toBe(5);
      expect(f.maxSteps).toBe(30);
      expect([...f.given]).toEqual(['epochs']);
    }
    expect([...parseFlags(SPEC, ['--max-steps=3', '--bias-correct-h']).given].sort()).toEqual(['biasCorrectH', 'maxSteps']);
  });
  it('switches: bare, =true/=false, anything else is an error', () => {
    expect(parseFlags(SPEC, ['--bias-correct-h']).biasCorrectH).toBe(true);
    expect(parseFlags(SPEC, ['--bias-correct-h=false']).biasCorrectH).toBe(false);
    expect(() => parseFlags(SPEC, ['--bias-correct-h=yes'])).toThrow(/--bias-correct-h is a switch.*got 'yes'/);
  });
  it('unknown flags, bad choices and out-of-range numbers name what is valid', () => {
    expect(() => parseFlags(SPEC, ['--epoch', '5'])).toThrow(UsageError);
    expect(() => parseFlags(SPEC, ['--epoch', '5'])).toThrow(/unknown flag '--epoch' \(did you mean --epochs\?\)/);
    expect(() => parseFlags(SPEC, ['--optimiser', 'adamw'])).toThrow(/did you mean --optimizer\?/); // an edit away
    // Nothing near: every flag is listed.
    expect(() => parseFlags(SPEC, ['--bogus'])).toThrow(/unknown flag '--bogus'; the flags are --epochs --max-steps --optimizer --bias-correct-h/);
    expect(() => parseFlags(SPEC, ['--optimizer', 'lion'])).toThrow("--optimizer must be one of sophia, adamw, all; got 'lion'");
    expect(() => parseFlags(SPEC, ['--epochs', '0'])).toThrow('--epochs must be > 0; got 0');
    expect(() => parseFlags(SPEC, ['--max-steps', '2.5'])).toThrow("--max-steps must be an integer; got '2.5'");
    expect(() => parseFlags(SPEC, ['--max-steps'])).toThrow('flag --max-steps needs a value');
  });
});

describe('--model is checked before the data is read', () => {
  it('checkModelChoice names what is wrong with a folder, and accepts presets', () => {
    const dir = mkdtempSync(join(tmpdir(), 'model-choice-'));
    try {
      expect(checkModelChoice('tiny', 128)).toBeNull();
      expect(() => checkModelChoice('tinny', 128)).toThrow(/--model tinny: not a preset \(tiny, small, gpt2\) and no such directory/);
      expect(() => checkModelChoice(dir, 128)).toThrow(/config\.json not found there/);
      writeFileSync(join(dir, 'config.json'), '{"n_layer": 2,');
      writeFileSync(join(dir, 'model.safetensors'), '');
      expect(() => checkModelChoice(dir, 128)).toThrow(/config\.json is not valid JSON/);
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ n_layer: 2, n_head: 2, n_embd: 32, n_positions: 64, vocab_size: 100, layer_norm_epsilon: 1e-5 }));
      expect(checkModelChoice(dir, 64)?.nPositions).toBe(64);
      expect(() => checkModelChoice(dir, 128)).toThrow(/--context 128 exceeds the model's context length 64/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the training example\'s --help lists every flag the issue names, with defaults, and touches no adapter', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', '--help'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    for (const flag of ['optimizer sophia|sophia-h|adam|adamw|sgd|all', 'epochs', 'max-steps', 'model', 'dataset', 'data-dir', 'batch-size', 'grad-accum', 'context', 'lr', 'min-lr', 'warmup',
      'schedule cosine|cosine-restarts|constant', 't0', 't-mult', 'weight-decay', 'grad-clip', 'precision f32|f16', 'hess-every', 'rho', 'gamma', 'eval-every', 'seed', 'out', 'resume']) {
      expect(r.stdout, flag).toMatch(new RegExp(`^  --${flag.replace(/\|/g, '\\|')}\\b`, 'm'));
    }
    expect(r.stdout).toMatch(/--hess-every N .*\(default: 10\)/);
    expect(r.stdout).toMatch(/--seed N .*\(default: 1337\)/);
    expect(r.stdout).not.toMatch(/llvmpipe|adapter:/);
  });
  it('the training example stops on a bad --model before it looks for data', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-wikitext.ts', '--model', 'no/such/model', '--max-steps', '1'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/error: --model no\/such\/model: not a preset/);
    expect(r.stdout).not.toMatch(/^data:/m);
    expect(r.stdout).not.toMatch(/^adapter:/m);
  });
});
