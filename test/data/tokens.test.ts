import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { TOKEN_CACHE_VERSION, TokenCacheError } from '../../src/data/cache.ts';
import { BatchLoader, evalBatches } from '../../src/data/loader.ts';
import { loadGpt2Tokenizer } from '../../src/data/tokenizer.ts';
import { detokenizeWikitext, tokenizeSplit } from '../../src/data/tokens.ts';
import { readSplitText, resolveCorpus } from '../../src/data/wikitext.ts';
import { hasShared, makeTmp, sharedDataDir } from './helpers/env.ts';

const tmp = makeTmp();
afterAll(tmp.cleanup);
const tok = loadGpt2Tokenizer();
/** Byte comparison: toEqual walks typed arrays element by element (seconds for 2.4 M ids). */
const sameIds = (a: Uint16Array, b: Uint16Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('detokenizeWikitext', () => {
  it('undoes @-@, @,@ and @.@ and leaves <unk> alone', () => {
    expect(detokenizeWikitext('state @-@ of @-@ the @-@ art')).toBe('state-of-the-art');
    expect(detokenizeWikitext('1 @,@ 000 @.@ 5 km')).toBe('1,000.5 km');
    expect(detokenizeWikitext('a <unk> b')).toBe('a <unk> b');
  });
  it('removes the spaces WikiText put around punctuation, quotes, contractions and headings', () => {
    const line =
      ' Homarus gammarus , known as the European lobster , is blue ( 24 in ) ; it isn \'t red : " crusher " and " cutter " . It \'s 5 % , $ 5 ! ';
    expect(detokenizeWikitext(line)).toBe('Homarus gammarus, known as the European lobster, is blue (24 in); it isn\'t red: "crusher" and "cutter". It\'s 5%, $5!');
    expect(detokenizeWikitext(' = = = Description = = = \n \n')).toBe('=== Description ===\n\n');
    // Left as they are: a line's unpaired double quote, single quotes, dashes.
    expect(detokenizeWikitext(' he said " no , and ')).toBe('he said " no, and');
    expect(detokenizeWikitext(" the lobsters ' claws , the ' voes ' ; 5 – 6 kg ")).toBe("the lobsters ' claws, the ' voes '; 5 – 6 kg");
  });
  it('keeps every line and every character but spaces and escapes (fast-check)', () => {
    const word = fc.constantFrom('a', 'Bc', ',', '.', '(', ')', '"', "'s", "'", '@-@', '@,@', '@.@', '=', '$', '%', '<unk>', '–', '5');
    const line = fc.array(word, { maxLength: 12 }).map((ws) => ` ${ws.join(' ')} `);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 5 }), (lines) => {
        const text = lines.join('\n');
        const out = detokenizeWikitext(text);
        expect(out.split('\n').length).toBe(text.split('\n').length);
        const bare = (t: string) => t.replace(/ /g, '');
        expect(bare(out)).toBe(bare(text).replace(/@([-,.])@/g, '$1'));
      }),
    );
  });
});

describe('tokenizeSplit and the token cache', () => {
  const root = join(tmp.dir, 'corpus');
  mkdirSync(join(root, 'wikitext-2'), { recursive: true });
  const valid = ' \n = Robert Boulter = \n \n Robert Boulter is an English film , television and theatre actor . \n 1 @,@ 000 @.@ 5 \n';
  writeFileSync(join(root, 'wikitext-2', 'valid.txt'), valid);
  const cacheDir = join(tmp.dir, 'tokens');
  const opts = { cacheDir, verify: false, progress: false };
  const corpus = () => resolveCorpus({ dataset: 'wikitext-2', dataDir: root, env: {}, splits: ['valid'] });

  it('tokenizes once, then loads the identical ids from the cache', async () => {
    const c = await corpus();
    const first = await tokenizeSplit(c, 'valid', opts);
    expect(first.fromCache).toBe(false);
    expect(Array.from(first.tokens)).toEqual(tok.encode(valid));
    const second = await tokenizeSplit(c, 'valid', opts);
    expect(second.fromCache).toBe(true);
    expect(second.cachePath).toBe(first.cachePath);
    expect(sameIds(second.tokens, first.tokens)).toBe(true);
    // Detokenizing changes the text, hence the key and the file.
    const detok = await tokenizeSplit(c, 'valid', { ...opts, detokenize: true });
    expect(detok.cachePath).not.toBe(first.cachePath);
    expect(tok.decode(detok.tokens)).toContain('1,000.5');
  });

  it('the first tokenization draws a progress bar over the text that ends at 100 % with the token count; a cache hit draws none', async () => {
    const c = await corpus();
    const frames: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, done) => (frames.push(String(chunk)), done()) });
    const first = await tokenizeSplit(c, 'valid', { ...opts, rebuildCache: true, progress: true, progressStream: stream });
    const text = frames.join('');
    expect(text.endsWith('\n')).toBe(true);
    const chars = (valid.length / 1e6).toFixed(1);
    expect(text.split('\r').filter(Boolean).at(-1)).toMatch(new RegExp(`^tokenize wikitext-2 valid \\[#{24}\\] 100% ${chars}M/${chars}M \\d+\\.\\ds ${(first.tokens.length / 1e6).toFixed(2)}M tokens`));
    frames.length = 0;
    expect((await tokenizeSplit(c, 'valid', { ...opts, progress: true, progressStream: stream })).fromCache).toBe(true);
    expect(frames).toEqual([]);
  });

  it('another tokenizer (another fingerprint) misses the cache and gets its own file', async () => {
    const c = await corpus();
    const gpt2 = await tokenizeSplit(c, 'valid', opts);
    // A stand-in tokenizer: GPT-2's ids shifted by one, under its own fingerprint.
    const shifted = (t: string) => tok.encode(t).map((id) => (id + 1) % tok.vocabSize);
    const other = { ...tok, fingerprint: 'f'.repeat(64), encode: shifted };
    const first = await tokenizeSplit(c, 'valid', { ...opts, tokenizer: other });
    expect(first.fromCache).toBe(false);
    expect(first.cachePath).not.toBe(gpt2.cachePath);
    expect(Array.from(first.tokens)).toEqual(shifted(valid));
    const again = await tokenizeSplit(c, 'valid', { ...opts, tokenizer: other });
    expect(again.fromCache).toBe(true);
    expect(again.cachePath).toBe(first.cachePath);
    // And GPT-2's own entry still holds GPT-2's ids.
    expect(Array.from((await tokenizeSplit(c, 'valid', opts)).tokens)).toEqual(tok.encode(valid));
  });

  it('a changed source text misses the old cache entry', async () => {
    const c = await corpus();
    const before = await tokenizeSplit(c, 'valid', opts);
    writeFileSync(join(root, 'wikitext-2', 'valid.txt'), valid.replace('actor', 'actress'));
    const after = await tokenizeSplit(c, 'valid', opts);
    expect(after.fromCache).toBe(false);
    expect(after.cachePath).not.toBe(before.cachePath);
    writeFileSync(join(root, 'wikitext-2', 'valid.txt'), valid);
  });

  it('a cache written by an older version is an error (with the fix), and rebuildCache replaces it', async () => {
    const c = await corpus();
    const { cachePath, tokens } = await tokenizeSplit(c, 'valid', opts);
    const bytes = readFileSync(cachePath!);
    bytes.writeUInt32LE(TOKEN_CACHE_VERSION - 1, 8);
    writeFileSync(cachePath!, bytes);
    const err = await tokenizeSplit(c, 'valid', opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenCacheError);
    expect((err as Error).message).toMatch(/older version of this program.*rebuildCache: true \/ --rebuild-cache/);
    const rebuilt = await tokenizeSplit(c, 'valid', { ...opts, rebuildCache: true });
    expect(rebuilt.tokens).toEqual(tokens);
    expect((await tokenizeSplit(c, 'valid', opts)).fromCache).toBe(true);
  });

  it('cacheDir: false never touches the disk cache', async () => {
    const r = await tokenizeSplit(await corpus(), 'valid', { ...opts, cacheDir: false });
    expect([r.fromCache, r.cachePath]).toEqual([false, null]);
  });
});

describe.skipIf(!hasShared('wikitext-2/valid.txt'))('WikiText-2 valid end to end', () => {
  it('tokenizes, caches, decodes back and feeds the loaders', async () => {
    const c = await resolveCorpus({ dataset: 'wikitext-2', dataDir: sharedDataDir, env: {}, splits: ['valid'] });
    const opts = { cacheDir: join(tmp.dir, 'w2-tokens'), progress: false };
    const first = await tokenizeSplit(c, 'valid', opts);
    expect(first.tokens.length).toBe(258_659);
    expect(tok.decode(first.tokens)).toBe(await readSplitText(c, 'valid'));
    const second = await tokenizeSplit(c, 'valid', opts);
    expect(second.fromCache).toBe(true);
    expect(sameIds(second.tokens, first.tokens)).toBe(true);

    const loader = new BatchLoader(second.tokens, { batchSize: 8, blockSize: 64, seed: 1 });
    expect(loader.batchesPerEpoch).toBe(Math.floor(Math.floor((258_659 - 1) / 64) / 8));
    let scored = 0;
    for (const b of evalBatches(second.tokens, { batchSize: 8, blockSize: 1024 })) scored += b.scored;
    expect(scored).toBe(258_658);
  });
});

// The one full-size tokenization in the suite (~11 s here): WikiText-2 train, then its cache.
describe.skipIf(!hasShared('wikitext-2/train.txt'))('WikiText-2 train tokenization', () => {
  it('gives ~2.45 M GPT-2 tokens and reloads from the cache far faster than it tokenizes', async () => {
    const c = await resolveCorpus({ dataset: 'wikitext-2', dataDir: sharedDataDir, env: {}, splits: ['train'] });
    const opts = { cacheDir: join(tmp.dir, 'w2-train-tokens'), progress: false };
    const first = await tokenizeSplit(c, 'train', opts);
    expect(first.tokens.length).toBe(2_448_382);
    const second = await tokenizeSplit(c, 'train', opts);
    expect(second.fromCache).toBe(true);
    expect(sameIds(second.tokens, first.tokens)).toBe(true);
    // Speed is a benchmark figure (logged), not a timed test: only the order of magnitude is held,
    // relative to the tokenization measured in the same run, so a loaded machine does not fail it.
    expect(second.seconds).toBeLessThan(first.seconds / 3);
    console.log(`WikiText-2 train: ${first.tokens.length} tokens, tokenized in ${first.seconds.toFixed(1)} s, cache load ${(second.seconds * 1000).toFixed(0)} ms`);
  });
});
