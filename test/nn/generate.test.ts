// Generation with the KV cache agrees with full recomputation.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadGpt2Tokenizer } from '../../src/data/tokenizer.ts';
import * as E from '../../src/index.ts';
import { GPT2, generate, gpt2Config, sampleToken, saveGPT2 } from '../../src/nn/index.ts';
import { expectClose } from '../helpers.ts';

let model: GPT2;
beforeAll(async () => {
  await E.init();
  model = new GPT2(gpt2Config('tiny', { vocabSize: 64, nPositions: 24, nLayer: 2, nEmbd: 32, nHead: 4 }), 11);
});

async function lastLogits(ids: number[]): Promise<Float32Array> {
  const logits = E.noGrad(() => model.forward(E.tensor(new Int32Array(ids), [1, ids.length], 'i32')));
  const all = await logits.toArray();
  return all.slice((ids.length - 1) * 64);
}

describe('generation', () => {
  it('cached logits equal the full forward pass at every step', async () => {
    const cache = model.newCache(1);
    const seq = [5, 9, 33, 2];
    let got = await E.noGrad(() => model.forwardCached(E.tensor(new Int32Array(seq), [1, 4], 'i32'), cache, 0)).toArray();
    expectClose(got, await lastLogits(seq), 1e-5, 1e-5, 'prefill');
    for (const [i, t] of [17, 40, 1].entries()) {
      got = await E.noGrad(() => model.forwardCached(E.tensor(new Int32Array([t]), [1, 1], 'i32'), cache, 4 + i)).toArray();
      seq.push(t);
      expectClose(got, await lastLogits(seq), 1e-5, 1e-5, `step ${i}`);
    }
  });
  it('greedy generation equals argmax of recomputed logits; a seed fixes sampled text', async () => {
    const prompt = [3, 14, 15];
    const greedy = await generate(model, prompt, { maxNewTokens: 6, temperature: 0 });
    const seq = [...prompt];
    for (let i = 0; i < 6; i++) seq.push(sampleToken(await lastLogits(seq), 0, 0, 0));
    expect(greedy).toEqual(seq.slice(3));
    const a = await generate(model, prompt, { maxNewTokens: 8, temperature: 1, topK: 10, seed: 7 });
    const b = await generate(model, prompt, { maxNewTokens: 8, temperature: 1, topK: 10, seed: 7 });
    expect(a).toEqual(b);
    expect(a.every((t) => t >= 0 && t < 64)).toBe(true);
  });
  it('past the context (24) it predicts from the last 24 tokens, as nanoGPT crops; a longer prompt is cropped too', async () => {
    const prompt = Array.from({ length: 20 }, (_, i) => (i * 7) % 64);
    const greedy = await generate(model, prompt, { maxNewTokens: 10, temperature: 0 });
    expect(greedy.length).toBe(10);
    const seq = [...prompt];
    for (let i = 0; i < 10; i++) seq.push(sampleToken(await lastLogits(seq.slice(-24)), 0, 0, 0));
    expect(greedy).toEqual(seq.slice(20));
    const long = Array.from({ length: 30 }, (_, i) => (i * 5) % 64);
    expect(await generate(model, long, { maxNewTokens: 3, temperature: 0 })).toEqual(await generate(model, long.slice(-24), { maxNewTokens: 3, temperature: 0 }));
    await expect(generate(model, prompt, { maxNewTokens: 2, temperature: -1 })).rejects.toThrow(/temperature must be ≥ 0/);
  });
  it('top-k never picks outside the k most likely tokens', () => {
    const logits = Float32Array.from({ length: 20 }, (_, i) => i);
    for (let j = 0; j < 50; j++) expect(sampleToken(logits, 1.5, 3, j / 50)).toBeGreaterThanOrEqual(17);
  });
});

describe('examples/generate.ts', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const run = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'examples/generate.ts', ...args], { cwd: root, encoding: 'utf8' });
  it('samples a saved model from a text prompt: greedy output equals generate() on the same ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'generate-'));
    const m = new GPT2(gpt2Config('tiny', { nLayer: 1, nEmbd: 16, nHead: 2, nPositions: 16 }), 3);
    await saveGPT2(m, dir);
    const tok = loadGpt2Tokenizer();
    const prompt = tok.encode('Hello world');
    const want = tok.decode([...prompt, ...(await generate(m, prompt, { maxNewTokens: 20, temperature: 0 }))]);
    m.dispose();
    const r = run(['--model', dir, '--prompt', 'Hello world', '--max-new-tokens', '20', '--temperature', '0', '--stop-at-eot=false']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${want}\n`);
    const bad = run(['--prompt', 'x']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--model DIR is required/);
  }, 120_000);
});
