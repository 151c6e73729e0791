import { readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  TOKEN_CACHE_VERSION,
  TokenCacheError,
  readTokenCache,
  tokenCacheKey,
  tokenCachePath,
  userCacheDir,
  writeTokenCache,
} from '../../src/data/cache.ts';
import { makeTmp } from './helpers/env.ts';

const tmp = makeTmp();
afterAll(tmp.cleanup);

const key = tokenCacheKey({ sourceSha256: 'a'.repeat(64), tokenizer: 'gpt2', options: { detokenize: false } });

function expectCacheError(fn: () => unknown, problem: string, message: RegExp) {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TokenCacheError);
    expect((e as TokenCacheError).problem).toBe(problem);
    expect((e as Error).message).toMatch(message);
    expect((e as Error).message).toMatch(/delete it \(rm .*\) or rebuild it/);
    return;
  }
  throw new Error('expected a TokenCacheError');
}

describe('token cache file', () => {
  it('round-trips any uint16 array (property)', () => {
    let i = 0;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 65535 }), { maxLength: 2000 }), (arr) => {
        const ids = Uint16Array.from(arr);
        const p = join(tmp.dir, `rt${i++}.tok`);
        writeTokenCache(p, key, ids);
        expect(readTokenCache(p, key)).toEqual(ids);
      }),
      { numRuns: 50 },
    );
    // Atomic write: no temporary files are left behind.
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('keys depend on source, tokenizer and options (not on option order)', () => {
    const base = { sourceSha256: 'a'.repeat(64), tokenizer: 'gpt2', options: { detokenize: false, x: 1 } };
    const k = tokenCacheKey(base);
    expect(tokenCacheKey({ ...base, options: { x: 1, detokenize: false } })).toBe(k);
    expect(tokenCacheKey({ ...base, sourceSha256: 'b'.repeat(64) })).not.toBe(k);
    expect(tokenCacheKey({ ...base, tokenizer: 'other' })).not.toBe(k);
    expect(tokenCacheKey({ ...base, options: { detokenize: true, x: 1 } })).not.toBe(k);
    expect(tokenCachePath('/c', 'wikitext-2.train', k)).toBe(`/c/wikitext-2.train.${k.slice(0, 16)}.tok`);
  });

  const ids = Uint16Array.from({ length: 1000 }, (_, i) => (i * 31) % 50257);
  const good = join(tmp.dir, 'good.tok');
  writeTokenCache(good, key, ids);
  const bytes = readFileSync(good);

  it('refuses a cache written by an older (or newer) format version', () => {
    const old = Buffer.from(bytes);
    old.writeUInt32LE(TOKEN_CACHE_VERSION - 1, 8);
    writeFileSync(join(tmp.dir, 'old.tok'), old);
    expectCacheError(() => readTokenCache(join(tmp.dir, 'old.tok'), key), 'old-version', /older version of this program/);
    old.writeUInt32LE(TOKEN_CACHE_VERSION + 1, 8);
    writeFileSync(join(tmp.dir, 'new.tok'), old);
    expectCacheError(() => readTokenCache(join(tmp.dir, 'new.tok'), key), 'new-version', /newer version/);
  });

  it('refuses truncated, damaged, foreign and mismatched files', () => {
    writeFileSync(join(tmp.dir, 'trunc.tok'), bytes.subarray(0, bytes.length - 10));
    expectCacheError(() => readTokenCache(join(tmp.dir, 'trunc.tok'), key), 'truncated', /promises 1000 ids/);
    writeFileSync(join(tmp.dir, 'trunc-header.tok'), bytes.subarray(0, 40));
    expectCacheError(() => readTokenCache(join(tmp.dir, 'trunc-header.tok'), key), 'truncated', /shorter than its 88-byte header/);
    const flipped = Buffer.from(bytes);
    flipped[500] ^= 0x01;
    writeFileSync(join(tmp.dir, 'flip.tok'), flipped);
    expectCacheError(() => readTokenCache(join(tmp.dir, 'flip.tok'), key), 'corrupt', /do not match the checksum/);
    writeFileSync(join(tmp.dir, 'foreign.tok'), 'hello, this is not a cache file at all, but long enough for a header........................');
    expectCacheError(() => readTokenCache(join(tmp.dir, 'foreign.tok'), key), 'not-a-cache', /magic/);
    const other = tokenCacheKey({ sourceSha256: 'c'.repeat(64), tokenizer: 'gpt2', options: {} });
    expectCacheError(() => readTokenCache(good, other), 'wrong-key', /another source text, tokenizer or option/);
  });

  it('lives in $XDG_CACHE_HOME/sophia-gpt or ~/.cache/sophia-gpt', () => {
    expect(userCacheDir({ XDG_CACHE_HOME: '/x/cache' })).toBe('/x/cache/sophia-gpt');
    expect(userCacheDir({})).toMatch(/\.cache\/sophia-gpt$/);
  });
});
