// Command-line flags of the training example, in the style of `python main.py --optimizer
// sophia --epochs 5`: every flag has a default, a type and (where it is a choice) its choices;
// unknown flags and bad values fail with a message that names what is valid.

export type FlagType = 'string' | 'int' | 'number' | 'bool';

export interface FlagSpec {
  type: FlagType;
  default: string | number | boolean | null;
  help: string;
  choices?: readonly string[];
  /** Lower bound for numbers (inclusive unless `exclusive`). */
  min?: number;
  exclusive?: boolean;
}

export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]['type'] extends 'bool' ? boolean : S[K]['type'] extends 'string' ? string | null : number | null;
};

export class UsageError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'UsageError';
  }
}

/** A spec key as its flag: maxBadSteps → max-bad-steps. */
export const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/**
 * Parses `--flag value`, `--flag=value` and bare booleans. `given` holds the keys the command
 * line set explicitly (in either form), for flags whose meaning depends on another being given
 * (--epochs overrides the default --max-steps only when --max-steps itself was not given).
 */
export function parseFlags<S extends Record<string, FlagSpec>>(spec: S, argv: readonly string[]): Flags<S> & { help: boolean; given: ReadonlySet<keyof S> } {
  const given = new Set<keyof S>();
  const out: Record<string, unknown> = { help: false, given };
  for (const [k, s] of Object.entries(spec)) out[k] = s.default;
  const byFlag = new Map(Object.keys(spec).map((k) => [`--${kebab(k)}`, k]));
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    let value: string | undefined;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) [arg, value] = [arg.slice(0, eq), arg.slice(eq + 1)];
    const key = byFlag.get(arg);
    if (!key) {
      const flags = [...byFlag.keys()];
      const stem = arg.replace(/^-+/, '');
      // Flags sharing the typed word's start, else those a few edits away (--lerning-rate).
      let near = flags.filter((f) => stem.length >= 3 && f.slice(2).startsWith(stem.slice(0, 4)));
      if (near.length === 0) {
        const d = new Map(flags.map((f) => [f, editDistance(stem, f.slice(2))]));
        near = flags.filter((f) => d.get(f)! <= Math.max(2, Math.floor(stem.length / 3))).sort((a, b) => d.get(a)! - d.get(b)!);
      }
      throw new UsageError(
        `unknown flag '${arg}'${near.length ? ` (did you mean ${near.slice(0, 4).join(', ')}?)` : ''}; the flags are ${flags.join(' ')} (--help explains each)`,
      );
    }
    const s = spec[key];
    given.add(key);
    if (s.type === 'bool') {
      if (value !== undefined && !['true', 'false', '1', '0'].includes(value)) throw new UsageError(`${arg} is a switch: give it alone, or as ${arg}=true / ${arg}=false; got '${value}'`);
      out[key] = value === undefined ? true : value === 'true' || value === '1';
      continue;
    }
    value ??= argv[++i];
    if (value === undefined) throw new UsageError(`flag ${arg} needs a value`);
    out[key] = convert(arg, value, s);
  }
  return out as Flags<S> & { help: boolean; given: ReadonlySet<keyof S> };
}

function convert(flag: string, value: string, s: FlagSpec): string | number {
  if (s.type === 'string') {
    if (s.choices && !s.choices.includes(value)) throw new UsageError(`${flag} must be one of ${s.choices.join(', ')}; got '${value}'`);
    return value;
  }
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (s.type === 'int' && !Number.isInteger(n))) {
    throw new UsageError(`${flag} must be ${s.type === 'int' ? 'an integer' : 'a number'}; got '${value}'`);
  }
  if (s.min !== undefined && (s.exclusive ? n <= s.min : n < s.min)) throw new UsageError(`${flag} must be ${s.exclusive ? '>' : '≥'} ${s.min}; got ${value}`);
  return n;
}

export function helpText<S extends Record<string, FlagSpec>>(usage: string, spec: S): string {
  const rows = Object.entries(spec).map(([k, s]) => {
    const name = `--${kebab(k)}${s.type === 'bool' ? '' : ` ${s.choices ? s.choices.join('|') : s.type === 'string' ? 'VALUE' : 'N'}`}`;
    const def = s.default === null ? '' : ` (default: ${s.default})`;
    return `  ${name.padEnd(44)} ${s.help}${def}`;
  });
  return `${usage}\n\nflags:\n${rows.join('\n')}\n  --help${' '.repeat(40)} show this list`;
}

/** Levenshtein distance (insertions, deletions, substitutions), for suggesting a mistyped flag. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length];
}
