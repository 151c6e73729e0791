// The training example's flag parser: both spellings of a value, which flags were given, and
// messages that name what is valid.
import { describe, expect, it } from 'vitest';
import { parseFlags, UsageError, type FlagSpec } from '../../src/train/cli.ts';

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
