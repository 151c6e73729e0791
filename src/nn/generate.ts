// Text generation with a KV cache: one forward pass over the prompt, then one token at a time.
// Sampling (temperature, top-k) happens on the CPU on the one logits row that has to come back
// anyway to choose the next token; its random numbers are Philox, so a seed fixes the text.
import { noGrad } from '../autograd/graph.ts';
import * as ops from '../autograd/ops/index.ts';
import { tidy } from '../tensor/scope.ts';
import { uniform } from '../reference/philox.ts';
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

/** Continues `prompt` (token ids) and returns only the new tokens. */
export async function generate(model: GPT2, prompt: readonly number[], opts: GenerateOptions): Promise<number[]> {
  const { maxNewTokens, temperature = 1, topK = 0, seed = 0, stopToken } = opts;
  if (prompt.length === 0) throw new Error('generate: the prompt must hold at least one token');
  const room = model.config.nPositions - prompt.length;
  if (room <= 0) throw new Error(`generate: the prompt (${prompt.length} tokens) fills the context (${model.config.nPositions})`);
  const wasTraining = model.training;
  model.eval();
  const cache = model.newCache(1);
  const out: number[] = [];
  try {
    let next = prompt.slice();
    let pos = 0;
    for (let i = 0; i < Math.min(maxNewTokens, room); i++) {
      const logits = tidy(() => noGrad(() => model.forwardCached(ops.tensor(new Int32Array(next), [1, next.length], 'i32'), cache, pos)));
      const row = await logits.toArray();
      logits.dispose();
      pos += next.length;
      const id = sampleToken(row, temperature, topK, uniform(1, seed, i)[0]);
      out.push(id);
      if (id === stopToken) break;
      next = [id];
    }
  } finally {
    cache.forEach((c) => (c.k.dispose(), c.v.dispose()));
    model.train(wasTraining);
  }
  return out;
}
