// Corpus split → GPT-2 token ids, through the on-disk token cache.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readTokenCache, tokenCacheKey, tokenCachePath, userCacheDir, writeTokenCache } from './cache.ts';
import type { Split } from './datasets.ts';
import { createProgress } from './progress.ts';
import { encodeLarge, gpt2TokenizerFingerprint, loadGpt2Tokenizer, type TextTokenizer } from './tokenizer.ts';
import { readSplitText, type Corpus } from './wikitext.ts';

/**
 * Undo WikiText's number/hyphen escapes: " @-@ " → "-", " @,@ " → ",", " @.@ " → "."
 * ("state @-@ of @-@ the @-@ art" → "state-of-the-art", "1 @,@ 000 @.@ 5" → "1,000.5").
 * `<unk>` is left alone: it is the v1 corpus's marker for a rare word and has no original text.
 */
export function detokenizeWikitext(text: string): string {
  return text.replace(/ @([-,.])@ /g, '$1');
}

export interface TokenizeOptions {
  /** Apply detokenizeWikitext before tokenizing (default false: the text as distributed). */
  detokenize?: boolean;
  /** Folder for token caches; false disables the cache. Default <user cache>/tokens. */
  cacheDir?: string | false;
  /** Ignore and overwrite an existing (e.g. stale or damaged) cache file. */
  rebuildCache?: boolean;
  /** Progress bar on stderr while tokenizing; default: when stderr is a terminal. */
  progress?: boolean;
  /** Passed to readSplitText. */
  verify?: boolean;
  tokenizer?: TextTokenizer;
}

export interface TokenizedSplit {
  tokens: Uint16Array;
  dataset: string;
  split: Split;
  fromCache: boolean;
  cachePath: string | null;
  /** sha256 of the exact text that was tokenized. */
  sourceSha256: string;
  /** Wall time of this call (reading + hashing + tokenizing or cache load). */
  seconds: number;
}

/** GPT-2 ids of one split, from the cache when its key matches, else tokenized (and cached). */
export async function tokenizeSplit(corpus: Corpus, split: Split, opts: TokenizeOptions = {}): Promise<TokenizedSplit> {
  const t0 = performance.now();
  let text = await readSplitText(corpus, split, { verify: opts.verify });
  if (opts.detokenize) text = detokenizeWikitext(text);
  const sourceSha256 = createHash('sha256').update(text, 'utf8').digest('hex');
  // Only the fingerprint is needed for a cache hit; the tokenizer itself is built on a miss.
  const fingerprint = opts.tokenizer?.fingerprint ?? gpt2TokenizerFingerprint();
  const done = (tokens: Uint16Array, fromCache: boolean, cachePath: string | null): TokenizedSplit => ({
    tokens,
    dataset: corpus.dataset,
    split,
    fromCache,
    cachePath,
    sourceSha256,
    seconds: (performance.now() - t0) / 1000,
  });

  let cachePath: string | null = null;
  let key = '';
  if (opts.cacheDir !== false) {
    const dir = opts.cacheDir ?? join(userCacheDir(), 'tokens');
    key = tokenCacheKey({ sourceSha256, tokenizer: fingerprint, options: { detokenize: Boolean(opts.detokenize) } });
    cachePath = tokenCachePath(dir, `${corpus.dataset}.${split}`, key);
    // A damaged or stale file is an error (TokenCacheError says what to do), never silently reused.
    if (existsSync(cachePath) && !opts.rebuildCache) return done(readTokenCache(cachePath, key), true, cachePath);
  }

  const bar = createProgress({
    label: `tokenize ${corpus.dataset} ${split}`,
    total: text.length,
    enabled: opts.progress,
    format: (n) => `${(n / 1e6).toFixed(1)}M`,
  });
  const tokenizer = opts.tokenizer ?? loadGpt2Tokenizer();
  const tokens = encodeLarge(tokenizer, text, (chars, _total, n) => bar.update(chars, `${(n / 1e6).toFixed(2)}M tokens`));
  bar.finish(`${(tokens.length / 1e6).toFixed(2)}M tokens`);
  if (cachePath) writeTokenCache(cachePath, key, tokens);
  return done(tokens, false, cachePath);
}
