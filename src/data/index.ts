// Text data for language-model training: WikiText / embedded SOTU corpora, the GPT-2
// tokenizer, a token-id cache, and seeded batching. See docs/data.md.
export * from './datasets.ts';
export * from './wikitext.ts';
export * from './parquet.ts';
export * from './download.ts';
export * from './tokenizer.ts';
export * from './cache.ts';
export * from './tokens.ts';
export * from './loader.ts';
export * from './rng.ts';
export { sotuSplits } from './sotu.ts';
export { createProgress, type Progress, type ProgressOptions } from './progress.ts';
