// GPT-2's pieces on their own: causal attention, LayerNorm, GELU, cross-entropy, the chunked
// LM-head loss, Module naming, and safetensors round trips / malformed files.
import { mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import * as N from '../../src/nn/index.ts';
import * as R from '../../src/reference/ndarray.ts';
import { uniform } from '../../src/reference/philox.ts';
import { expectClose, randomArray, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

describe('causal attention', () => {
  it('no position sees the future: changing token t+1.. leaves outputs ≤ t unchanged', async () => {
    const [B, H, T, D] = [1, 2, 6, 4];
    const q = randomArray([B, H, T, D], 1);
    const k = randomArray([B, H, T, D], 2);
    const v = randomArray([B, H, T, D], 3);
    const k2 = new R.NDArray(k.data.slice(), k.shape);
    const v2 = new R.NDArray(v.data.slice(), v.shape);
    for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) {
      k2.data[(h * T + 4) * D + d] += 5; // perturb keys/values of positions 4 and 5
      v2.data[(h * T + 5) * D + d] -= 3;
    }
    const y1 = await N.causalAttention(toGpu(q), toGpu(k), toGpu(v)).toArray();
    const y2 = await N.causalAttention(toGpu(q), toGpu(k2), toGpu(v2)).toArray();
    for (let h = 0; h < H; h++)
      for (let t = 0; t < T; t++)
        for (let d = 0; d < D; d++) {
          const i = (h * T + t) * D + d;
          if (t < 4) expect(y2[i]).toBe(y1[i]);
          else expect(y2[i]).not.toBe(y1[i]);
        }
  });
  it('matches softmax(q·kᵀ/√D + mask)·v in float64', async () => {
    const [T, D] = [5, 3];
    const q = randomArray([1, 1, T, D], 4);
    const k = randomArray([1, 1, T, D], 5);
    const v = randomArray([1, 1, T, D], 6);
    const s = R.mul(R.matmul(q, R.transpose(k)), 1 / Math.sqrt(D));
    const mask = R.NDArray.from(Array.from({ length: T * T }, (_, i) => (Math.floor(i / T) >= i % T ? 1 : 0)), [T, T]);
    const expected = R.matmul(R.softmax(R.where(mask, s, -Infinity)), v);
    expectClose(await N.causalAttention(toGpu(q), toGpu(k), toGpu(v)).toArray(), expected.data, 1e-5, 1e-6, 'attention');
  });
});

describe('attention dropout (nanoGPT attn_dropout)', () => {
  it('drops attention probabilities with the Philox mask: (softmax(masked)⊙keep/(1−p))·v in float64', async () => {
    const [B, H, T, D] = [1, 2, 5, 3];
    const q = randomArray([B, H, T, D], 31);
    const k = randomArray([B, H, T, D], 32);
    const v = randomArray([B, H, T, D], 33);
    const p = 0.3;
    const y = await N.causalAttention(toGpu(q), toGpu(k), toGpu(v), { p, gen: new E.Generator(77) }).toArray();
    expect(N.lastAttention).toBe('composed');
    // A fresh generator's first draw: Philox uniforms at counter 0, kept where u < 1 − p.
    const u = uniform(B * H * T * T, 77, 0);
    const keep = R.NDArray.from(Array.from(u, (x) => (x < 1 - p ? 1 / (1 - p) : 0)), [B, H, T, T]);
    const mask = R.NDArray.from(Array.from({ length: T * T }, (_, i) => (Math.floor(i / T) >= i % T ? 1 : 0)), [T, T]);
    const probs = R.softmax(R.where(mask, R.mul(R.matmul(q, R.transpose(k)), 1 / Math.sqrt(D)), -Infinity));
    expect(keep.data.some((x) => x === 0)).toBe(true); // something was dropped
    expectClose(y, R.matmul(R.mul(probs, keep), v).data, 1e-5, 1e-6, 'attention with dropout');
    // p = 0 (or no dropout) is the plain attention, fused where it can be.
    const plain = await N.causalAttention(toGpu(q), toGpu(k), toGpu(v), { p: 0, gen: new E.Generator(77) }).toArray();
    expectClose(plain, R.matmul(probs, v).data, 1e-5, 1e-6, 'p = 0');
  });
  it('GPT-2 with dropout: training-mode losses vary with the masks, eval mode is deterministic and mask-free', async () => {
    const model = new N.GPT2(N.gpt2Config('tiny', { nLayer: 1, nHead: 2, nEmbd: 16, vocabSize: 64, nPositions: 8, dropout: 0.2 }), 4);
    const ids = E.tensor(Int32Array.from([1, 5, 9, 2, 7, 3, 3, 8]), [1, 8], 'i32');
    const tg = E.tensor(Int32Array.from([5, 9, 2, 7, 3, 3, 8, 1]), [1, 8], 'i32');
    const train = [await model.loss(ids, tg).item(), await model.loss(ids, tg).item()];
    expect(train[0]).not.toBe(train[1]);
    model.eval();
    const evalLoss = [await model.loss(ids, tg).item(), await model.loss(ids, tg).item()];
    expect(evalLoss[0]).toBe(evalLoss[1]);
    const noDrop = new N.GPT2(N.gpt2Config('tiny', { nLayer: 1, nHead: 2, nEmbd: 16, vocabSize: 64, nPositions: 8, dropout: 0 }), 4);
    expect(await noDrop.loss(ids, tg).item()).toBe(evalLoss[0]);
  });
});

describe('GPT-2 initialisation', () => {
  it('weights N(0, 0.02), residual projections N(0, 0.02/√(2·n_layer)), biases 0, LayerNorm 1 and 0', async () => {
    const L = 3;
    const model = new N.GPT2(N.gpt2Config('tiny', { nLayer: L, nHead: 2, nEmbd: 64, vocabSize: 512, nPositions: 32 }), 9);
    const stats = (x: Float32Array) => {
      const mean = x.reduce((a, b) => a + b, 0) / x.length;
      return { mean, std: Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length) };
    };
    for (const [name, p] of model.namedParameters()) {
      const x = (await p.toArray()) as Float32Array;
      if (/\.bias$/.test(name)) {
        expect(x.every((v) => v === 0), name).toBe(true);
      } else if (/ln_\d\.weight|ln_f\.weight/.test(name)) {
        expect(x.every((v) => v === 1), name).toBe(true);
      } else {
        const want = /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * L) : 0.02;
        const { mean, std } = stats(x);
        // n ≥ 4096 draws: the sample std is within ~2.2% of σ (5 standard errors), the mean within 5σ/√n.
        expect(Math.abs(std / want - 1), `${name} std ${std}`).toBeLessThan(5 / Math.sqrt(2 * x.length));
        expect(Math.abs(mean), `${name} mean`).toBeLessThan((5 * want) / Math.sqrt(x.length));
      }
    }
  });
});

describe('LayerNorm, GELU, cross-entropy', () => {
  it('layerNorm = (x − mean)/√(var + eps)·w + b with biased variance', async () => {
    const x = randomArray([3, 8], 7, -3, 3);
    const w = randomArray([8], 8);
    const b = randomArray([8], 9);
    const mu = R.mean(x, -1, true);
    const xc = R.sub(x, mu);
    const expected = R.add(R.mul(R.div(xc, R.sqrt(R.add(R.mean(R.mul(xc, xc), -1, true), 1e-5))), w), b);
    expectClose(await N.layerNorm(toGpu(x), toGpu(w), toGpu(b)).toArray(), expected.data, 1e-5, 1e-5, 'layerNorm');
  });
  it('gelu (tanh approximation) at known points', async () => {
    const y = await N.gelu(E.tensor([-3, -1, 0, 0.5, 2])).toArray();
    // torch.nn.functional.gelu(x, approximate='tanh')
    expectClose(y, [-0.0036373920, -0.1588080, 0, 0.3457140, 1.9545977], 1e-5, 1e-7, 'gelu');
  });
  it('crossEntropy ignores ignore_index targets and averages over the rest', async () => {
    const logits = randomArray([4, 5], 10, -2, 2);
    const targets = [1, -100, 4, 0];
    const lsm = R.logSoftmax(logits);
    const expected = -(lsm.data[0 * 5 + 1] + lsm.data[2 * 5 + 4] + lsm.data[3 * 5 + 0]) / 3;
    const got = await N.crossEntropy(toGpu(logits), E.tensor(new Int32Array(targets))).item();
    expect(Math.abs(got - expected)).toBeLessThan(1e-5);
  });
  it('the chunked LM-head loss equals the plain one, gradients included', async () => {
    const h = toGpu(randomArray([7, 6], 11));
    const w = toGpu(randomArray([13, 6], 12));
    const t = E.tensor(new Int32Array([3, 0, 12, -100, 5, 5, 1]));
    const plain = (hh: E.Tensor, ww: E.Tensor) => N.crossEntropy(E.matmul(hh, E.transpose(ww)), t);
    const chunked = (hh: E.Tensor, ww: E.Tensor) => N.lmHeadCrossEntropy(hh, ww, t, { maxChunkBytes: 3 * 13 * 4 }); // 3 rows a chunk
    const a = E.valueAndGrad(plain)(h, w);
    const b = E.valueAndGrad(chunked)(h, w);
    expectClose([await b.value.item()], [await a.value.item()], 1e-6, 1e-7, 'loss');
    for (let i = 0; i < 2; i++) expectClose(await b.grads[i].toArray(), await a.grads[i].toArray(), 1e-5, 1e-7, `grad ${i}`);
  });
});

describe('Module and weights', () => {
  it('GPT-2 parameters carry Hugging Face names in a stable order, with the right count', () => {
    const m = new N.GPT2(N.gpt2Config('tiny', { vocabSize: 100, nPositions: 16 }), 0);
    const names = m.namedParameters().map(([n]) => n);
    expect(names.slice(0, 4)).toEqual(['wte.weight', 'wpe.weight', 'h.0.ln_1.weight', 'h.0.ln_1.bias']);
    expect(names).toContain('h.3.mlp.c_proj.bias');
    expect(names.at(-1)).toBe('ln_f.bias');
    const C = 128;
    expect(m.numParameters()).toBe(100 * C + 16 * C + 4 * (12 * C * C + 13 * C) + 2 * C);
    m.dispose();
  });
  it("the presets: gpt2 is HF's GPT2Config (124,439,808 parameters with the tied head), tiny the issue's 4×4×128", () => {
    const count = (c: N.GPT2Config) => c.vocabSize * c.nEmbd + c.nPositions * c.nEmbd + c.nLayer * (12 * c.nEmbd ** 2 + 13 * c.nEmbd) + 2 * c.nEmbd;
    const g = N.gpt2Config('gpt2');
    expect([g.nLayer, g.nHead, g.nEmbd, g.nPositions, g.vocabSize, g.layerNormEpsilon]).toEqual([12, 12, 768, 1024, 50257, 1e-5]);
    expect(count(g)).toBe(124_439_808);
    const t = N.gpt2Config('tiny');
    expect([t.nLayer, t.nHead, t.nEmbd, t.nPositions, t.vocabSize]).toEqual([4, 4, 128, 128, 50257]);
  });
  it('Module buffers: registered by name, listed with their child path, not parameters, disposed with the module', async () => {
    class Inner extends N.Module {
      constructor() {
        super();
        this.param('w', E.ones([2]));
        this.buffer('mask', E.zeros([3]));
      }
    }
    class Outer extends N.Module {
      constructor() {
        super();
        this.child('inner', new Inner());
        this.buffer('table', E.ones([4]));
      }
    }
    const m = new Outer();
    expect(m.namedBuffers().map(([n, b]) => [n, b.shape])).toEqual([['table', [4]], ['inner.mask', [3]]]);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['inner.w']);
    const held = m.namedBuffers().map(([, b]) => b);
    m.dispose();
    expect(held.every((b) => b.disposed)).toBe(true);
  });
  it('save → load round-trips every parameter and gives the same logits', async () => {
    const m = new N.GPT2(N.gpt2Config('tiny', { vocabSize: 50, nPositions: 8, nLayer: 1, nEmbd: 16, nHead: 2 }), 3);
    const dir = mkdtempSync(join(tmpdir(), 'gpt2-'));
    await N.saveGPT2(m, dir);
    const m2 = N.loadGPT2(dir);
    const ids = E.tensor(new Int32Array([1, 2, 3, 4]), [1, 4], 'i32');
    expect(Array.from(await m2.forward(ids).toArray())).toEqual(Array.from(await m.forward(ids).toArray()));
  });
  it("HF's own checkpoint layout loads: causal-mask buffers (F32 or BOOL) are skipped, a tied lm_head.weight is accepted, an untied one refused", async () => {
    const m = new N.GPT2(N.gpt2Config('tiny', { vocabSize: 50, nPositions: 8, nLayer: 2, nEmbd: 16, nHead: 2 }), 3);
    const dir = mkdtempSync(join(tmpdir(), 'gpt2-hf-'));
    await N.saveGPT2(m, dir);
    const st = N.readSafetensors(join(dir, 'model.safetensors')).tensors;
    const stPath = join(dir, 'model.safetensors');
    const ids = E.tensor(new Int32Array([1, 2, 3, 4]), [1, 4], 'i32');
    const want = Array.from(await m.forward(ids).toArray());
    // As HF's gpt2 model.safetensors: transformer. prefix, h.N.attn.bias [1, 1, n_ctx, n_ctx] F32, h.N.attn.masked_bias, lm_head.weight = wte.
    const tril = Float32Array.from({ length: 64 }, (_, i) => (i % 8 <= Math.floor(i / 8) ? 1 : 0));
    const hf = new Map([...st].map(([k, v]) => ['transformer.' + k, v] as const));
    for (const i of [0, 1]) {
      hf.set(`transformer.h.${i}.attn.bias`, { dtype: 'F32', shape: [1, 1, 8, 8], data: tril });
      hf.set(`transformer.h.${i}.attn.masked_bias`, { dtype: 'F32', shape: [], data: new Float32Array([-1e4]) });
    }
    hf.set('lm_head.weight', st.get('wte.weight')!);
    N.writeSafetensors(stPath, hf);
    expect(Array.from(await N.loadGPT2(dir).forward(ids).toArray())).toEqual(want);
    // A mask stored as BOOL (which no float tensor holds) is skipped too.
    const bytes = readFileSync(stPath);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString());
    const end = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { data_offsets: number[] }).data_offsets[1]));
    header['transformer.h.0.attn.bias'] = { dtype: 'BOOL', shape: [1, 1, 8, 8], data_offsets: [end, end + 64] };
    const json = Buffer.from(JSON.stringify(header));
    const out = Buffer.alloc(8 + json.length + end + 64);
    out.writeBigUInt64LE(BigInt(json.length), 0);
    json.copy(out, 8);
    bytes.copy(out, 8 + json.length, 8 + headerLen, 8 + headerLen + end);
    out.fill(1, 8 + json.length + end);
    writeFileSync(stPath, out);
    expect(Array.from(await N.loadGPT2(dir).forward(ids).toArray())).toEqual(want);
    // An lm_head.weight that is not wte would give other logits than the file's model: refused.
    const untied = new Map(hf);
    untied.set('lm_head.weight', { dtype: 'F32', shape: st.get('wte.weight')!.shape, data: (st.get('wte.weight')!.data as Float32Array).map((x) => x * 2) });
    N.writeSafetensors(stPath, untied);
    expect(() => N.loadGPT2(dir)).toThrow(/lm_head.weight that differs from wte.weight; this GPT-2 ties the LM head/);
  });
  it('malformed weights get clear errors naming the tensor', async () => {
    const m = new N.GPT2(N.gpt2Config('tiny', { vocabSize: 50, nPositions: 8, nLayer: 1, nEmbd: 16, nHead: 2 }), 3);
    const dir = mkdtempSync(join(tmpdir(), 'gpt2-bad-'));
    await N.saveGPT2(m, dir);
    const st = N.readSafetensors(join(dir, 'model.safetensors')).tensors;
    const write = (t: Map<string, N.HostTensor>) => N.writeSafetensors(join(dir, 'model.safetensors'), t);
    const missing = new Map(st);
    missing.delete('h.0.attn.c_proj.bias');
    write(missing);
    expect(() => N.loadGPT2(dir)).toThrow(/missing tensor 'h.0.attn.c_proj.bias'/);
    const wrong = new Map(st);
    wrong.set('ln_f.weight', { dtype: 'F32', shape: [8], data: new Float32Array(8) });
    write(wrong);
    expect(() => N.loadGPT2(dir)).toThrow(/'ln_f.weight' has shape \[8\], expected \[16\]/);
    const extra = new Map(st);
    extra.set('h.7.mlp.c_fc.weight', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    write(extra);
    expect(() => N.loadGPT2(dir)).toThrow(/tensors this GPT-2 config does not: h.7.mlp.c_fc.weight/);
    const prefixed = new Map([...st].map(([k, v]) => ['transformer.' + k, v] as const));
    write(prefixed);
    expect(N.loadGPT2(dir).numParameters()).toBe(m.numParameters());
    const asInt = new Map(st);
    asInt.set('h.0.ln_1.bias', { dtype: 'I32', shape: [16], data: new Int32Array(16) });
    write(asInt);
    expect(() => N.loadGPT2(dir)).toThrow(/tensor 'h.0.ln_1.bias' has dtype I32; expected a float type/);
    writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(dir, 'model.safetensors')).subarray(0, 100));
    expect(() => N.loadGPT2(dir)).toThrow(/model.safetensors: (bad header length|tensor .* inconsistent)/);
    writeFileSync(join(dir, 'model.safetensors'), Buffer.from('not a safetensors file at all'));
    expect(() => N.loadGPT2(dir)).toThrow(/model.safetensors/);
  });
});

describe('safetensors files from other writers', () => {
  const file = (header: object, data: Uint8Array, pad = 0) => {
    const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
    const out = Buffer.alloc(8 + json.length + data.length);
    out.writeBigUInt64LE(BigInt(json.length), 0);
    json.copy(out, 8);
    out.set(data, 8 + json.length);
    return out;
  };
  it('unaligned tensor data loads (copied), an unloadable dtype names the tensor, non-ASCII metadata keeps data aligned', () => {
    const f = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    for (const pad of [0, 1, 2, 3]) {
      const t = N.parseSafetensors(file({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f, pad), 'x.safetensors').tensors.get('w')!;
      expect(Array.from(t.data), `pad ${pad}`).toEqual([1.5, -2]);
    }
    expect(() => N.parseSafetensors(file({ mask: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), 'x.safetensors')).toThrow(/x.safetensors.*tensor 'mask' has dtype U8/);
    const enc = N.encodeSafetensors({ 'wé': { dtype: 'F32', shape: [2], data: new Float32Array([3, 4]) } }, { note: 'λ—ü' });
    expect((8 + Number(new DataView(enc.buffer).getBigUint64(0, true))) % 8).toBe(0);
    const back = N.parseSafetensors(enc);
    expect(Array.from(back.tensors.get('wé')!.data)).toEqual([3, 4]);
    expect(back.metadata.note).toBe('λ—ü');
  });
  it("a config.json whose n_embd is not a multiple of n_head says so", () => {
    expect(() => N.configFromHF({ n_layer: 1, n_head: 3, n_embd: 16, n_positions: 8, vocab_size: 10 })).toThrow(/n_embd \(16\) must be a multiple of n_head \(3\)/);
    // GPT2Config options the model does not implement are refused, not ignored; HF's defaults pass.
    const base = { n_layer: 1, n_head: 2, n_embd: 16, n_positions: 8, vocab_size: 10 };
    expect(N.configFromHF({ ...base, activation_function: 'gelu_new', n_inner: null, scale_attn_weights: true, tie_word_embeddings: true }).nEmbd).toBe(16);
    expect(() => N.configFromHF({ ...base, activation_function: 'relu' })).toThrow(/activation_function = "relu" is not supported .*gelu_new/);
    expect(() => N.configFromHF({ ...base, n_inner: 32 })).toThrow(/n_inner = 32 is not supported .*4·n_embd = 64/);
    expect(() => N.configFromHF({ ...base, scale_attn_by_inverse_layer_idx: true })).toThrow(/scale_attn_by_inverse_layer_idx/);
  });
});

describe('long-row kernels (vocabulary-sized rows)', () => {
  it('takeAlongLastAxis and cross-entropy over 300 classes: values, gradients and HVP match the composed form', async () => {
    const x = toGpu(randomArray([4, 300], 31, -3, 3));
    const ids = E.tensor(new Int32Array([5, 299, 0, 123]));
    const fused = (a: E.Tensor) => E.sum(E.mul(E.sub(E.logsumexp(a, -1), E.takeAlongLastAxis(a, ids)), E.tensor([1, 2, 3, 4])));
    // The same function through small-row paths: split the 300 columns into two halves of 150.
    const composed = (a: E.Tensor) => {
      const [l, r] = E.split(a, 150, -1);
      const lse = E.logsumexp(E.concat([E.logsumexp(l, -1, true), E.logsumexp(r, -1, true)], -1), -1);
      const picked = E.sum(E.where(E.oneHot(ids, 300), a, 0), -1);
      return E.sum(E.mul(E.sub(lse, picked), E.tensor([1, 2, 3, 4])));
    };
    expectClose([await fused(x).item()], [await composed(x).item()], 1e-5, 1e-5, 'value');
    const [gf] = E.grad(fused)(x);
    const [gc] = E.grad(composed)(x);
    expectClose(await gf.toArray(), await gc.toArray(), 1e-4, 1e-6, 'grad');
    const v = toGpu(randomArray([4, 300], 32));
    const [hf] = E.hvp(fused, [x], [v]);
    const [hc] = E.hvp(composed, [x], [v]);
    expectClose(await hf.toArray(), await hc.toArray(), 1e-4, 1e-5, 'hvp');
  });
});

describe('evaluation sums', () => {
  it('NLL, argmax accuracy and count over chunks match the reference', async () => {
    const h = randomArray([9, 6], 21);
    const w = randomArray([11, 6], 22);
    const t = [3, 0, 10, -1, 5, 5, 1, -1, 7];
    const logits = R.matmul(h, R.transpose(w));
    const lsm = R.logSoftmax(logits);
    let nll = 0, correct = 0, count = 0;
    t.forEach((ti, i) => {
      if (ti < 0) return;
      count++;
      nll -= lsm.data[i * 11 + ti];
      const row = Array.from(logits.data.slice(i * 11, i * 11 + 11));
      if (row[ti] === Math.max(...row)) correct++;
    });
    const s = N.lmHeadEvalSums(toGpu(h), toGpu(w), E.tensor(new Int32Array(t)));
    expect(Math.abs((await s.nll.item()) - nll)).toBeLessThan(1e-4);
    expect(await s.correct.item()).toBe(correct);
    expect(await s.count.item()).toBe(count);
  });
});

describe('LM head memory', () => {
  it("a plain backward frees each chunk's [rows, V] gradient after its two products", async () => {
    const [Nr, C, V, rows] = [128, 4, 1000, 16];
    const h = E.keep(E.randn([Nr, C]).realize());
    const w = E.keep(E.randn([V, C]).realize());
    h.requiresGrad = w.requiresGrad = true;
    const tg = E.keep(E.tensor(Int32Array.from({ length: Nr }, (_, i) => (i * 37) % V), [Nr], 'i32'));
    let growth = 0;
    E.tidy(() => {
      const loss = N.lmHeadCrossEntropy(h, w, tg, { maxChunkBytes: rows * V * 4 });
      E.resetPeakMemory();
      const before = E.memoryStats().liveBytes;
      loss.backward();
      growth = E.memoryStats().peakLiveBytes - before;
    });
    // Keeping every chunk's gradient alive adds all N×V logits' worth (512 KB; measured 711 KB
    // in all); freeing each after use leaves the per-chunk dW partials and one chunk (≈ 270 KB).
    expect(growth).toBeLessThan(0.75 * Nr * V * 4);
    for (const t of [h, w, tg]) t.dispose();
  });
});
