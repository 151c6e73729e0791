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
 * WikiText as ordinary text, line by line (WikiText's tokenizer split every punctuation mark off
 * with spaces; GPT-2 saw text without them):
 * - number and hyphen escapes: `state @-@ of @-@ the @-@ art` → `state-of-the-art`,
 *   `1 @,@ 000 @.@ 5` → `1,000.5`;
 * - no space before `, . ; : ! ? % ) ] }` or a contraction (`it 's`, `isn 't`, `they 're`), none
 *   after `( [ { $`: `blue , ( 24 in ) .` → `blue, (24 in).`, `$ 5` → `$5`;
 * - double quotes paired within the line hug their words (`the " crusher " ,` → `the "crusher",`);
 *   a line with an odd count keeps its quotes as they are;
 * - headings: `= = History = =` → `== History ==`; each line loses its leading and trailing space.
 * Left alone: `<unk>` (the v1 corpus's marker for a rare word, whose original is gone), single
 * quotes (a lone `'` is as often a plural possessive, `the lobsters ' claws`, as a quotation
 * mark), dashes and the degree sign, whose original spacing varies.
 */
export function detokenizeWikitext(text: string): string {
  return text.split('\n').map(detokenizeLine).join('\n');
}

const NO_SPACE_BEFORE = /^[.,;:!?%)\]}]+$/;
const NO_SPACE_AFTER = /^[([{$]$/;
const CONTRACTION = /^'(s|re|ve|ll|d|m|t)$/i;
const ESCAPES: Record<string, string> = { '@-@': '-', '@,@': ',', '@.@': '.' };

function detokenizeLine(line: string): string {
  const words = line.split(' ').filter((w) => w !== '');
  const quotes = words.filter((w) => w === '"').length;
  let open = false; // inside a double quote (only tracked when the line's quotes pair up)
  let out = '';
  let glueNext = true; // no space before the next word (line start, after `(`, an escape, an opening quote)
  for (const w of words) {
    const escape = ESCAPES[w];
    let glue = glueNext;
    let word = w;
    glueNext = false;
    if (escape) {
      word = escape;
      glue = true;
      glueNext = true;
    } else if (w === '"' && quotes % 2 === 0) {
      open = !open;
      if (open) glueNext = true;
      else glue = true;
    } else if (NO_SPACE_BEFORE.test(w) || CONTRACTION.test(w)) {
      glue = true;
    } else if (w === '=' && out.endsWith('=')) {
      glue = true; // `= =` → `==` (headings)
    }
    if (NO_SPACE_AFTER.test(w)) glueNext = true;
    out += glue ? word : ' ' + word;
  }
  return out;
}

export interface TokenizeOptions {
  /** Apply detokenizeWikitext before tokenizing (default false: the text as distributed). */
  detokenize?: boolean;
  /** Folder for token caches; false disables the cache. Default <user cache>/tokens. */
  cacheDir?: string | false;
  /** Ignore and overwrite an existing (e.g. stale or damaged) cache file. */
  rebuildCache?: boolean;
  /** Progress bar while tokenizing; default: when stderr is a terminal. */
  progress?: boolean;
  /** Where the bar is drawn (default stderr). */
  progressStream?: NodeJS.WritableStream;
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
    stream: opts.progressStream,
    format: (n) => `${(n / 1e6).toFixed(1)}M`,
  });
  const tokenizer = opts.tokenizer ?? loadGpt2Tokenizer();
  const tokens = encodeLarge(tokenizer, text, (chars, _total, n) => bar.update(chars, `${(n / 1e6).toFixed(2)}M tokens`));
  bar.finish(`${(tokens.length / 1e6).toFixed(2)}M tokens`);
  if (cachePath) writeTokenCache(cachePath, key, tokens);
  return done(tokens, false, cachePath);
}
