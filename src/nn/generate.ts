// Text generation with a KV cache: one forward pass over the prompt, then one token at a time.
// Sampling (temperature, top-k) happens on the CPU on the one logits row that has to come back
// anyway to choose the next token; its random numbers are Philox, so a seed fixes the text.
import { noGrad } from '../autograd/graph.ts';
import * as ops from '../autograd/ops/index.ts';
import { tidy } from '../tensor/scope.ts';
import { uniform } from '../reference/philox.ts';
import { headLogits } from './functional.ts';
import type { GPT2 } from './gpt2.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 means greedy (argmax). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  topK?: number;
  seed?: number;
  /** Stop after emitting this token (e.g. <|endoftext|> = 50256). */
  stopToken?: number;
}

/** Samples a token id from one row of logits. */
export function sampleToken(logits: Float32Array, temperature: number, topK: number, u: number): number {
  if (temperature <= 0) return logits.reduce((best, v, i) => (v > logits[best] ? i : best), 0);
  let ids = Array.from(logits.keys());
  if (topK > 0 && topK < logits.length) ids = ids.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const m = Math.max(...ids.map((i) => logits[i]));
  const w = ids.map((i) => Math.exp((logits[i] - m) / temperature));
  let r = u * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < ids.length; j++) if ((r -= w[j]) < 0) return ids[j];
  return ids[ids.length - 1];
}

/**
 * Continues `prompt` (token ids) and returns only the new tokens. While the sequence fits the
 * context, each token costs one cached step; once it is full, each next token is predicted, as
 * nanoGPT does, from the last nPositions tokens (a full forward pass: with learned absolute
 * positions the cache cannot slide). A prompt longer than the context is cropped the same way.
 */
export async function generate(model: GPT2, prompt: readonly number[], opts: GenerateOptions): Promise<number[]> {
  const { maxNewTokens, temperature = 1, topK = 0, seed = 0, stopToken } = opts;
  if (prompt.length === 0) throw new Error('generate: the prompt must hold at least one token');
  if (!(Number.isInteger(maxNewTokens) && maxNewTokens >= 0)) throw new RangeError(`generate: maxNewTokens must be an integer ≥ 0, got ${maxNewTokens}`);
  if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be ≥ 0 (0 = greedy), got ${temperature}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new RangeError(`generate: topK must be an integer ≥ 0 (0 = all tokens), got ${topK}`);
  const ctxLen = model.config.nPositions;
  const wasTraining = model.training;
  model.eval();
  const cache = model.newCache(1);
  const seq = prompt.slice(-ctxLen);
  const out: number[] = [];
  const ids = (xs: readonly number[]) => ops.tensor(new Int32Array(xs), [1, xs.length], 'i32');
  try {
    let next = seq.slice();
    let pos = 0;
    for (let i = 0; i < maxNewTokens; i++) {
      let row: Float32Array;
      if (pos + next.length <= ctxLen) {
        const logits = tidy(() => noGrad(() => model.forwardCached(ids(next), cache, pos)));
        row = await logits.toArray();
        logits.dispose();
        pos += next.length;
      } else {
        const window = seq.slice(-ctxLen);
        const C = model.config.nEmbd;
        // The head on the last position only (all 1024 rows of GPT-2's logits would be 206 MB).
        const logits = tidy(() => noGrad(() => headLogits(ops.slice(ops.reshape(model.hidden(ids(window)), [window.length, C]), [[window.length - 1, window.length], null]), model.wte)));
        row = await logits.toArray();
        logits.dispose();
      }
      const id = sampleToken(row, temperature, topK, uniform(1, seed, i)[0]);
      out.push(id);
      seq.push(id);
      if (id === stopToken) break;
      next = [id];
    }
  } finally {
    cache.forEach((c) => (c.k.dispose(), c.v.dispose()));
    model.train(wasTraining);
  }
  return out;
}
