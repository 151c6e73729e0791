// Categorical sampling on the GPU (Gumbel-max) and argmax.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';

beforeAll(async () => {
  await E.init();
});

describe('sampling', () => {
  it('argmax picks the first maximum along the last axis', async () => {
    const x = E.tensor([1, 5, 5, 2, 9, 0, -1, -3], [2, 4]);
    expect(Array.from(await E.argmax(x).toInt32Array())).toEqual([1, 0]);
    expect(Array.from(await E.argmax(x, 0).toInt32Array())).toEqual([1, 0, 0, 0]);
    expect(Array.from(await E.argmax(E.reshape(x, [2, 2, 2]), 1).toInt32Array())).toEqual([1, 0, 0, 0]);
    expect(() => E.argmax(x, 2)).toThrow(/axis 2 is out of range/);
  });
  it('categorical frequencies match softmax probabilities (and the seed fixes the draw)', async () => {
    const logits = [0, 1, 2, -1];
    const rows = 4000;
    const x = E.expand(E.tensor(logits, [1, 4]), [rows, 4]);
    const ids = await E.categorical(x, new E.Generator(5)).toInt32Array();
    const again = await E.categorical(x, new E.Generator(5)).toInt32Array();
    expect(Array.from(again)).toEqual(Array.from(ids));
    const z = logits.map(Math.exp).reduce((a, b) => a + b, 0);
    for (let k = 0; k < 4; k++) {
      const p = Math.exp(logits[k]) / z;
      const freq = ids.filter((i) => i === k).length / rows;
      expect(Math.abs(freq - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / rows));
    }
  });
});

describe('fused categorical sampling', () => {
  it('draws the same ids as the composed Gumbel-max sampler (same seed, same uniforms)', async () => {
    const logits = E.mul(E.randn([37, 1001]), 3).realize();
    const a = await E.categorical(logits, new E.Generator(9), { fused: true }).toInt32Array();
    const b = await E.categorical(logits, new E.Generator(9), { fused: false }).toInt32Array();
    const same = a.filter((v, i) => v === b[i]).length;
    // Equal unless −log(−log u) rounds differently in the two kernels and flips a near-tie.
    expect(same).toBeGreaterThanOrEqual(36);
    expect(Array.from(a).every((v) => v >= 0 && v < 1001)).toBe(true);
  });
});

describe('inverse-CDF categorical sampling', () => {
  const within = (ids: Int32Array, logits: number[], label: string) => {
    const m = Math.max(...logits);
    const z = logits.map((l) => Math.exp(l - m)).reduce((a, b) => a + b, 0);
    logits.forEach((l, k) => {
      const p = Math.exp(l - m) / z;
      const freq = ids.filter((i) => i === k).length / ids.length;
      expect(Math.abs(freq - p), `${label}: id ${k}, p ${p.toFixed(4)}, freq ${freq.toFixed(4)}`).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / ids.length) + 1e-9);
    });
  };
  it('frequencies match softmax on short rows (most lanes empty) and the seed fixes the draw', async () => {
    const logits = [0, 1, 2, -1];
    const x = E.expand(E.tensor(logits, [1, 4]), [4000, 4]);
    const ids = await E.categorical(x, new E.Generator(5), { method: 'inverse-cdf' }).toInt32Array();
    expect(Array.from(await E.categorical(x, new E.Generator(5), { method: 'inverse-cdf' }).toInt32Array())).toEqual(Array.from(ids));
    within(ids, logits, 'V = 4');
  });
  it('frequencies match softmax on long rows spread over many lanes, never picking a zero-probability id', async () => {
    const V = 3000;
    // A few likely ids in different lanes' stretches, the rest far less likely, one impossible.
    const logits = Array.from({ length: V }, (_, i) => (i % 397 === 5 ? 4 : -2 + 0.001 * i));
    logits[2999] = -1e30;
    const x = E.expand(E.tensor(logits, [1, V]), [3000, V]);
    const ids = await E.categorical(x, new E.Generator(8), { method: 'inverse-cdf' }).toInt32Array();
    expect(ids.every((i) => i >= 0 && i < V - 1)).toBe(true);
    const likely = logits.map((l, i) => (l === 4 ? i : -1)).filter((i) => i >= 0);
    const m = Math.max(...logits);
    const z = logits.map((l) => Math.exp(l - m)).reduce((a, b) => a + b, 0);
    for (const k of likely) {
      const p = Math.exp(logits[k] - m) / z;
      const freq = ids.filter((i) => i === k).length / ids.length;
      expect(Math.abs(freq - p), `id ${k}`).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / ids.length));
    }
    const rest = 1 - likely.reduce((a, k) => a + Math.exp(logits[k] - m) / z, 0);
    const freqRest = ids.filter((i) => !likely.includes(i)).length / ids.length;
    expect(Math.abs(freqRest - rest)).toBeLessThan(5 * Math.sqrt((rest * (1 - rest)) / ids.length));
  });
});
