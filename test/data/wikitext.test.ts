import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sotuSplits } from '../../src/data/sotu.ts';
import { CorpusError, readSplitText, resolveCorpus, verifyChecksums, type Corpus } from '../../src/data/wikitext.ts';
import { hasShared, makeTmp, sharedDataDir } from './helpers/env.ts';
import { writeStringParquet } from './helpers/parquet-writer.ts';

const tmp = makeTmp();
afterAll(tmp.cleanup);

/** Make <root>/<folder>/<file> for each entry and return root. */
function tree(name: string, files: Record<string, string | Uint8Array>): string {
  const root = join(tmp.dir, name);
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  return root;
}

const small = (tag: string) => ({
  'wikitext-2/train.txt': ` \n = ${tag} train = \n`,
  'wikitext-2/valid.txt': ` \n = ${tag} valid = \n`,
  'wikitext-2/test.txt': ` \n = ${tag} test = \n`,
});
const noEnv = { env: {}, cacheDir: join(tmp.dir, 'no-cache-here') };

describe('resolveCorpus: where files come from', () => {
  const dataDir = tree('a', small('A'));
  const envDir = tree('b', small('B'));
  const cacheDir = tree('c', {
    'wikitext/wikitext-2-v1/train-00000-of-00001.parquet': writeStringParquet(['', ' = C train = \n']),
    'wikitext/wikitext-2-v1/validation-00000-of-00001.parquet': writeStringParquet(['', ' = C valid = \n']),
    'wikitext/wikitext-2-v1/test-00000-of-00001.parquet': writeStringParquet(['', ' = C test = \n']),
  });
  const read = (c: Corpus) => readSplitText(c, 'valid', { verify: false });

  it('prefers --data-dir, then WIKITEXT_DIR, then the user cache (HF parquet layout)', async () => {
    const env = { WIKITEXT_DIR: envDir };
    const a = await resolveCorpus({ dataset: 'wikitext-2', dataDir, env, cacheDir });
    expect([a.origin, await read(a)]).toEqual(['data-dir', ' \n = A valid = \n']);
    const b = await resolveCorpus({ dataset: 'wikitext-2', env, cacheDir });
    expect([b.origin, await read(b)]).toEqual(['env', ' \n = B valid = \n']);
    const c = await resolveCorpus({ dataset: 'wikitext-2', env: {}, cacheDir });
    expect([c.origin, c.splits.valid?.kind, await read(c)]).toEqual(['cache', 'parquet', ' \n = C valid = \n']);
    // The default job also takes WikiText-2 when it is there, with no banner.
    const d = await resolveCorpus({ env, cacheDir });
    expect([d.dataset, d.origin, d.banner]).toEqual(['wikitext-2', 'env', null]);
  });

  it('accepts a folder that is itself the corpus, and the classic wiki.*.raw names', async () => {
    const c = await resolveCorpus({ dataset: 'wikitext-2', dataDir: join(dataDir, 'wikitext-2'), ...noEnv });
    expect(c.dir).toBe(join(dataDir, 'wikitext-2'));
    const raw = tree('raw', { 'wikitext-2-raw/wiki.valid.raw': ' \n x \n', 'wikitext-2-raw/wiki.test.raw': ' \n y \n' });
    const r = await resolveCorpus({ dataset: 'wikitext-2-raw', dataDir: raw, splits: ['valid', 'test'], ...noEnv });
    expect(await readSplitText(r, 'test', { verify: false })).toBe(' \n y \n');
    await expect(readSplitText(r, 'train')).rejects.toThrow(/has no train split \(it has: valid, test\)/);
  });

  it('the default job falls back to the embedded SOTU corpus with a banner saying how to get WikiText', async () => {
    const c = await resolveCorpus({ env: { WIKITEXT_DIR: join(tmp.dir, 'nowhere') }, cacheDir: join(tmp.dir, 'nocache') });
    expect(c.dataset).toBe('sotu');
    expect(c.origin).toBe('embedded');
    expect(c.banner).toMatch(/WikiText-2 .* was not found/);
    expect(c.banner).toMatch(/State of the Union/);
    expect(c.banner).toContain(`WIKITEXT_DIR=${join(tmp.dir, 'nowhere')}: does not exist`);
    expect(c.banner).toMatch(/--data-dir DIR/);
    expect(c.banner).toMatch(/--download/);
  });

  it('an explicitly requested corpus that is missing is an error listing where it looked', async () => {
    const err = await resolveCorpus({ dataset: 'wikitext-103', dataDir, env: { WIKITEXT_DIR: envDir }, cacheDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorpusError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/WikiText-103 .* was requested but not found \(needed splits: train, valid, test\)/);
    expect(msg).toContain(`--data-dir ${dataDir}: no wikitext-103/ or wikitext-103-v1/ folder`);
    expect(msg).toContain(`WIKITEXT_DIR=${envDir}`);
    expect(msg).toContain(`cache ${join(cacheDir, 'wikitext')}`);
    expect(msg).toMatch(/Downloading was not enabled/);
    await expect(resolveCorpus({ dataset: 'wikitext-2', dataDir: join(tmp.dir, 'missing'), ...noEnv })).rejects.toThrow(
      /--data-dir\) does not exist/,
    );
  });

  it('reports incomplete parquet shard sets instead of reading half a split', async () => {
    const d = tree('shards', {
      'wikitext-103-v1/train-00000-of-00002.parquet': writeStringParquet(['a\n']),
      'wikitext-103-v1/validation-00000-of-00001.parquet': writeStringParquet(['a\n']),
      'wikitext-103-v1/test-00000-of-00001.parquet': writeStringParquet(['a\n']),
    });
    await expect(resolveCorpus({ dataset: 'wikitext-103', dataDir: d, ...noEnv })).rejects.toThrow(
      /has valid, test but not train \(train: 1 of 2 parquet shards present/,
    );
  });
});

describe('readSplitText: bad input is an error, never a silently wrong dataset', () => {
  const w2 = (name: string, valid: string | Uint8Array, extra: Record<string, string> = {}) =>
    resolveCorpus({
      dataset: 'wikitext-2',
      dataDir: tree(name, { 'wikitext-2/valid.txt': valid, ...extra }),
      splits: ['valid'],
      ...noEnv,
    });

  it('empty split', async () => {
    await expect(readSplitText(await w2('empty', ''), 'valid')).rejects.toThrow(/valid split of .* is empty/);
    await expect(readSplitText(await w2('blank', ' \n \n'), 'valid', { verify: false })).rejects.toThrow(/is empty/);
  });

  it('truncated file (no final newline, wrong line count)', async () => {
    await expect(readSplitText(await w2('trunc', ' \n = A = \n Some text that stops'), 'valid')).rejects.toThrow(
      /does not end with a newline, so it is probably truncated/,
    );
    await expect(readSplitText(await w2('short', ' \n = A = \n'), 'valid')).rejects.toThrow(
      /has 2 lines but WikiText-2 .* valid has 3760: the file is truncated or is not this split/,
    );
  });

  it('invalid UTF-8 (e.g. cut inside a multi-byte character)', async () => {
    const bytes = Buffer.concat([Buffer.from(' \n Senj'), Buffer.from('ō', 'utf8').subarray(0, 1), Buffer.from(' \n')]);
    await expect(readSplitText(await w2('utf8', bytes), 'valid')).rejects.toThrow(/is not valid UTF-8/);
  });

  it('a file that does not match its SHA256SUMS entry', async () => {
    const c = await w2('sums', ' \n x \n', { SHA256SUMS: `${'0'.repeat(64)}  ./wikitext-2/valid.txt\n` });
    expect(c.splits.valid).toMatchObject({ kind: 'text', sha256: '0'.repeat(64) });
    await expect(readSplitText(c, 'valid')).rejects.toThrow(/does not match its SHA256SUMS entry .*corrupt, truncated or edited/);
  });
});

describe('embedded SOTU corpus', () => {
  it('is split deterministically into train/valid/test (≈80/10/10)', () => {
    const s = sotuSplits();
    const count = (t: string) => (t.match(/State of the Union :/g) ?? []).length;
    expect([count(s.train), count(s.valid), count(s.test)]).toEqual([187, 23, 23]);
    expect(s.train.startsWith(' \n = 1790 State of the Union : George Washington = \n \n Fellow-Citizens')).toBe(true);
    expect(s.valid).toMatch(/^ \n = 1798 State of the Union : John Adams = /);
    expect(s.train.length).toBeGreaterThan(8_000_000);
  });
});

describe.skipIf(!hasShared('wikitext-2/train.txt'))('shared WikiText copy (../shared/data or WIKITEXT_DIR)', () => {
  it('matches SHA256SUMS', async () => {
    const report = await verifyChecksums(join(sharedDataDir, 'SHA256SUMS'));
    expect(report.bad).toEqual([]);
    expect(report.missing).toEqual([]);
    expect(report.ok.length).toBe(7);
  });

  it('WikiText-2 train has the published statistics', async () => {
    const c = await resolveCorpus({ dataset: 'wikitext-2', dataDir: sharedDataDir, env: {} });
    expect(c.splits.train).toMatchObject({ kind: 'text', sha256: expect.stringMatching(/^9e9fa1ad/) });
    const text = await readSplitText(c, 'train'); // verifies SHA256SUMS and the line count
    const lines = text.split('\n').slice(0, -1);
    expect(lines.length).toBe(36_718);
    // WikiText is space-separated; JS's Unicode-aware \s would also split on e.g. U+FEFF.
    const words = (text.match(/[^ \n]+/g) ?? []).length;
    expect(words).toBe(2_051_910);
    expect(words + lines.length).toBe(2_088_628);
  });

  it('finds the partial corpora present (raw valid/test, WikiText-103 valid/test)', async () => {
    for (const dataset of ['wikitext-2-raw', 'wikitext-103'] as const) {
      const c = await resolveCorpus({ dataset, dataDir: sharedDataDir, env: {}, splits: ['valid', 'test'] });
      const text = await readSplitText(c, 'valid');
      expect(text.split('\n').length - 1).toBe(3760);
      if (dataset === 'wikitext-2-raw') expect(text).not.toContain('<unk>');
      else expect(text).toContain('<unk>');
      await expect(readSplitText(c, 'train')).rejects.toThrow(/has no train split/);
    }
  });
});

describe.skipIf(hasShared('wikitext-2/train.txt'))('shared WikiText copy', () => {
  it.skip(`not present at ${sharedDataDir}; corpus statistics are not checked`, () => {});
});
