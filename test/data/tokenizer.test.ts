import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GPT2_EOT_ID, encodeLarge, loadGpt2Tokenizer, safeCutPoints } from '../../src/data/tokenizer.ts';
import { hasShared, sharedDataDir } from './helpers/env.ts';

const tok = loadGpt2Tokenizer();
// gpt-3-encoder's own JavaScript BPE is an independent implementation of the same algorithm:
// an oracle for ids on arbitrary text (it does not treat <|endoftext|> specially).
const oracle = createRequire(import.meta.url)('gpt-3-encoder') as { encode(s: string): number[] };

describe('GPT-2 tokenizer', () => {
  it("gives HF gpt2's ids for the reference sentence", () => {
    const ids = tok.encode('Hello world, this is GPT-2.');
    expect(ids).toEqual([15496, 995, 11, 428, 318, 402, 11571, 12, 17, 13]);
    expect(tok.decode(ids)).toBe('Hello world, this is GPT-2.');
  });

  it('has the GPT-2 vocabulary and end-of-text token', () => {
    expect(tok.vocabSize).toBe(50257);
    expect(tok.eotId).toBe(GPT2_EOT_ID);
    expect(GPT2_EOT_ID).toBe(50256);
    expect(tok.encode('<|endoftext|>')).toEqual([50256]);
    expect(tok.decode([50256])).toBe('<|endoftext|>');
    expect(tok.encode('')).toEqual([]);
    expect(tok.decode([])).toBe('');
    expect(() => tok.decode([50257])).toThrow(/not a GPT-2 token id/);
    expect(() => tok.decode([-1])).toThrow(/not a GPT-2 token id/);
  });

  const tricky = [
    ' leading space',
    '  two leading spaces',
    'trailing space ',
    'line one\nline two\n\n\nthree blank',
    ' \n = Title = \n \n Body text . \n',
    'tabs\tand\r\nCRLF',
    "it's they're we've I'm you'll he'd don't",
    "IT'S THEY'RE",
    'multiple    spaces   between   words',
    'numbers 1234567890 3.14159 1,000,000 2024-01-01',
    'unicode: naïve café 日本語 Ελληνικά עברית 🙂👍🏽 \u00a0nbsp',
    'combining e\u0301 and zero\u200bwidth',
    'state @-@ of @-@ the @-@ art , 1 @,@ 000 @.@ 5 <unk>',
    '    ',
    '\n',
  ];

  it.each(tricky)('round-trips %j exactly and matches the reference BPE', (s) => {
    const ids = tok.encode(s);
    expect(tok.decode(ids)).toBe(s);
    expect(ids).toEqual(oracle.encode(s));
  });

  it('round-trips arbitrary Unicode text (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 60 }), (s) => {
        expect(tok.decode(tok.encode(s))).toBe(s);
      }),
      { numRuns: 300 },
    );
  });

  it('matches the reference BPE on arbitrary text (property)', () => {
    const pieces = fc.constantFrom(' ', '  ', '\n', ' \n', "'s", "'re", ' @-@ ', 'the', ' The', '1', '23', ',', '.', 'é', '日本', '🙂', '\t');
    const text = fc.array(fc.oneof(pieces, fc.string({ unit: 'binary-ascii', maxLength: 6 })), { maxLength: 30 }).map((a) => a.join(''));
    fc.assert(
      fc.property(text, (s) => {
        expect(tok.encode(s)).toEqual(oracle.encode(s));
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeLarge (chunked encoding)', () => {
  it('cuts only where text[p-1] is whitespace, text[p] is a space and text[p+1] is not', () => {
    const text = 'a\n b\n  c\n d\n\n e';
    for (const p of safeCutPoints(text, 1)) {
      expect(/\s/.test(text[p - 1]!)).toBe(true);
      expect(text[p]).toBe(' ');
      expect(/\S/.test(text[p + 1]!)).toBe(true);
    }
    expect(safeCutPoints(text, 1).length).toBeGreaterThan(0);
  });

  it('gives exactly the ids of one-shot encoding for any chunk size (property)', () => {
    const line = fc.array(fc.constantFrom(' ', '  ', 'word', ' x', '=', ' = ', '\n', ' \n', '12', "'s", 'é', '\t'), { maxLength: 12 });
    const text = fc.array(line.map((a) => a.join('')), { maxLength: 12 }).map((ls) => ls.map((l) => ` ${l}\n`).join(''));
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 40 }), (s, chunk) => {
        expect(Array.from(encodeLarge(tok, s, undefined, chunk))).toEqual(tok.encode(s));
      }),
      { numRuns: 300 },
    );
  });

  it.skipIf(!hasShared('wikitext-2/valid.txt'))('matches one-shot encoding and the reference BPE on WikiText-2 valid', () => {
    const text = readFileSync(join(sharedDataDir, 'wikitext-2/valid.txt'), 'utf8');
    const chunked = encodeLarge(tok, text, undefined, 4096);
    // The oracle is quadratic on long strings, so compare piece by piece (pieces cut at safe points).
    const head = text.slice(0, 300_000);
    const cuts = [0, ...safeCutPoints(head, 2000), head.length];
    for (let i = 1; i < cuts.length; i++) {
      const piece = head.slice(cuts[i - 1], cuts[i]);
      expect(tok.encode(piece)).toEqual(oracle.encode(piece));
    }
    expect(chunked.length).toBe(tok.encode(text).length);
    expect(tok.decode(chunked)).toBe(text);
  });
});
