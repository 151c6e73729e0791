import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ParquetCorpusError, linesToText, readParquetTextColumn } from '../../src/data/parquet.ts';
import { hasShared, makeTmp, sharedDataDir } from './helpers/env.ts';
import { writeStringParquet } from './helpers/parquet-writer.ts';

const tmp = makeTmp();
afterAll(tmp.cleanup);

/** The classic text as HF's builder stored it: one row per line, blank " \n" lines as "". */
function toHfRows(text: string): string[] {
  return text.split(/(?<=\n)/).map((l) => (l.trim() === '' ? '' : l));
}

const sample = ' \n = Valkyria = \n \n Senjō no Valkyria 3 : <unk> Chronicles . \n \n = = Gameplay = = \n \n 1 @,@ 000 @.@ 5 \n';

describe('HF parquet reader', () => {
  it('reads the text column of a file it did not write, across row groups, back to the classic text', async () => {
    const rows = toHfRows(sample);
    expect(rows[0]).toBe('');
    const p = join(tmp.dir, 'validation-00000-of-00001.parquet');
    writeFileSync(p, writeStringParquet(rows, { rowGroupSize: 3 }));
    const got = await readParquetTextColumn(p);
    expect(got).toEqual(rows);
    expect(linesToText(got)).toBe(sample);
  });

  it.skipIf(!hasShared('wikitext-2/valid.txt'))('reconstructs WikiText-2 valid byte for byte from HF-style rows', async () => {
    const text = readFileSync(join(sharedDataDir, 'wikitext-2/valid.txt'), 'utf8');
    const rows = toHfRows(text);
    expect(rows.length).toBe(3760);
    const p = join(tmp.dir, 'w2-valid.parquet');
    writeFileSync(p, writeStringParquet(rows, { rowGroupSize: 1000 }));
    expect(linesToText(await readParquetTextColumn(p))).toBe(text);
  });

  it('reads snappy-compressed and dictionary-encoded pages (pyarrow\'s defaults, so HF\'s files)', async () => {
    const rows = toHfRows(sample.repeat(40));
    for (const opts of [{ snappy: true }, { dictionary: true }, { snappy: true, dictionary: true }]) {
      const p = join(tmp.dir, `enc-${Object.keys(opts).join('-')}.parquet`);
      writeFileSync(p, writeStringParquet(rows, { ...opts, rowGroupSize: 7 }));
      expect(await readParquetTextColumn(p), JSON.stringify(opts)).toEqual(rows);
    }
  });

  it.skipIf(!hasShared('wikitext-2/valid.txt'))('reconstructs WikiText-2 valid from a snappy + dictionary file', async () => {
    const text = readFileSync(join(sharedDataDir, 'wikitext-2/valid.txt'), 'utf8');
    const p = join(tmp.dir, 'w2-valid-snappy.parquet');
    const bytes = writeStringParquet(toHfRows(text), { rowGroupSize: 1000, snappy: true, dictionary: true });
    expect(bytes.length).toBeLessThan(text.length * 0.7); // the pages really are compressed
    writeFileSync(p, bytes);
    expect(linesToText(await readParquetTextColumn(p))).toBe(text);
  });

  it('a damaged snappy page is a clear error', async () => {
    const rows = toHfRows(sample.repeat(20));
    const good = writeStringParquet(rows, { snappy: true });
    const bad = good.slice();
    // Flip bytes inside the first page body (after "PAR1" and the short page header).
    for (let i = 40; i < 60; i++) bad[i] ^= 0x5a;
    const p = join(tmp.dir, 'bad-snappy.parquet');
    writeFileSync(p, bad);
    const err = await readParquetTextColumn(p).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ParquetCorpusError);
    expect((err as Error).message).toMatch(/data pages are unreadable/);
  });

  it('gives clear errors for truncated, non-parquet, null and wrong-column files', async () => {
    const full = writeStringParquet(['a\n', 'b\n']);
    const cases: [string, Uint8Array, RegExp][] = [
      ['truncated.parquet', full.subarray(0, full.length - 7), /footer is unreadable.*truncated or not parquet/],
      ['tiny.parquet', full.subarray(0, 5), /only 5 bytes long/],
      ['text.parquet', new TextEncoder().encode('this is not a parquet file, only some text'), /truncated or not parquet/],
      ['null.parquet', writeStringParquet(['a\n', null]), /row 1 of 'text' is null/],
      ['column.parquet', writeStringParquet(['a\n'], { column: 'content' }), /no 'text' column \(columns: content\)/],
    ];
    for (const [name, bytes, msg] of cases) {
      const p = join(tmp.dir, name);
      writeFileSync(p, bytes);
      const err = await readParquetTextColumn(p).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, name).toBeInstanceOf(ParquetCorpusError);
      expect((err as Error).message, name).toMatch(msg);
      expect((err as Error).message, name).toMatch(/delete it and download it again/);
    }
  });

  it('linesToText restores blank lines and missing newlines', () => {
    expect(linesToText(['', ' a \n', 'b'])).toBe(' \n a \nb\n');
    expect(linesToText([])).toBe('');
  });
});
