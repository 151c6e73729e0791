// GPT-2 exactly as the reference architecture (Radford et al. 2019; HF transformers' GPT2Model,
// nanoGPT's model.py): token + position embeddings, pre-LayerNorm blocks with fused-qkv causal
// self-attention and a GELU MLP, a final LayerNorm, and an LM head tied to the token embedding.
import * as ops from '../autograd/ops/index.ts';
import * as raw from '../tensor/ops.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { causalAttention, dropout, type AttentionDropout, gelu, headLogits, layerNorm, linear, lmHeadCrossEntropy, lmHeadCrossEntropyWithGnbDelta, lmHeadEvalSums, lmHeadSampledCrossEntropy } from './functional.ts';
import { Module } from './module.ts';

export interface GPT2Config {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  /** Context length (n_positions). */
  nPositions: number;
  vocabSize: number;
  layerNormEpsilon: number;
  dropout: number;
}

const BASE = { vocabSize: 50257, layerNormEpsilon: 1e-5, dropout: 0 };
export const GPT2_PRESETS: Record<string, GPT2Config> = {
  /** GPT-2 small, 124M parameters. */
  gpt2: { ...BASE, nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024 },
  /** Trains in minutes on the CPU adapter. */
  tiny: { ...BASE, nLayer: 4, nHead: 4, nEmbd: 128, nPositions: 128 },
  small: { ...BASE, nLayer: 6, nHead: 6, nEmbd: 384, nPositions: 256 },
};

export function gpt2Config(preset: string, overrides: Partial<GPT2Config> = {}): GPT2Config {
  const base = GPT2_PRESETS[preset];
  if (!base) throw new Error(`Unknown GPT-2 preset '${preset}'; choose one of: ${Object.keys(GPT2_PRESETS).join(', ')}`);
  const c = { ...base, ...overrides };
  if (c.nEmbd % c.nHead !== 0) throw new Error(`GPT-2 config: n_embd ${c.nEmbd} is not divisible by n_head ${c.nHead}`);
  return c;
}

class LayerNorm extends Module {
  constructor(n: number, readonly eps: number) {
    super();
    this.param('weight', ops.ones([n]));
    this.param('bias', ops.zeros([n]));
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.p('weight'), this.p('bias'), this.eps);
  }
}

/** GPT-2's Conv1D: weight [in, out], y = x·W + b. */
class Conv1D extends Module {
  constructor(inF: number, outF: number, std: number, gen: ops.Generator) {
    super();
    this.param('weight', gen.randn([inF, outF], 0, std).realize());
    this.param('bias', ops.zeros([outF]));
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.p('weight'), this.p('bias'));
  }
}

class Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  constructor(private readonly cfg: GPT2Config, gen: ops.Generator) {
    super();
    const std = 0.02;
    this.c_attn = this.child('c_attn', new Conv1D(cfg.nEmbd, 3 * cfg.nEmbd, std, gen));
    // Residual projections are scaled by 1/√(2·n_layer) (GPT-2 paper, §2.3).
    this.c_proj = this.child('c_proj', new Conv1D(cfg.nEmbd, cfg.nEmbd, std / Math.sqrt(2 * cfg.nLayer), gen));
  }
  /** `drop`: dropout on the attention probabilities (training with cfg.dropout > 0). */
  forward(x: Tensor, drop?: AttentionDropout): Tensor {
    const [B, T, C] = x.shape;
    const H = this.cfg.nHead;
    const D = C / H;
    const qkv = this.c_attn.forward(x); // [B, T, 3C]
    const heads = ops.split(qkv, C, -1).map((t) => ops.permute(ops.reshape(t, [B, T, H, D]), [0, 2, 1, 3]));
    const y = causalAttention(heads[0], heads[1], heads[2], drop); // [B, H, T, D]
    return this.c_proj.forward(ops.reshape(ops.permute(y, [0, 2, 1, 3]), [B, T, C]));
  }

  /**
   * Incremental attention for generation: x [B, Tn, C] holds the tokens at positions
   * pos … pos+Tn−1; their keys and values are written into the cache, and each query attends to
   * every cached position up to its own.
   */
  forwardCached(x: Tensor, cache: LayerCache, pos: number): Tensor {
    const [B, Tn, C] = x.shape;
    const H = this.cfg.nHead;
    const D = C / H;
    const [q, k, v] = ops.split(this.c_attn.forward(x), C, -1).map((t) => ops.permute(ops.reshape(t, [B, Tn, H, D]), [0, 2, 1, 3]));
    const end = pos + Tn;
    ops.assign(ops.slice(cache.k, [null, null, [pos, end], null]), k);
    ops.assign(ops.slice(cache.v, [null, null, [pos, end], null]), v);
    const keys = ops.slice(cache.k, [null, null, [0, end], null]);
    const values = ops.slice(cache.v, [null, null, [0, end], null]);
    const scores = ops.mul(ops.matmul(q, ops.transpose(keys)), 1 / Math.sqrt(D));
    // Query i sits at position pos + i and may see keys 0 … pos + i.
    const visible = raw.binary('ge', raw.binary('add', raw.indexAlong([Tn, end], 0), raw.scalar(pos)), raw.indexAlong([Tn, end], 1));
    const y = ops.matmul(ops.softmax(ops.where(visible, scores, -Infinity), -1), values);
    return this.c_proj.forward(ops.reshape(ops.permute(y, [0, 2, 1, 3]), [B, Tn, C]));
  }
}

/** Keys and values of one layer for positions seen so far: [B, H, nPositions, D] each. */
export interface LayerCache {
  k: Tensor;
  v: Tensor;
}

class MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  constructor(cfg: GPT2Config, gen: ops.Generator) {
    super();
    this.c_fc = this.child('c_fc', new Conv1D(cfg.nEmbd, 4 * cfg.nEmbd, 0.02, gen));
    this.c_proj = this.child('c_proj', new Conv1D(4 * cfg.nEmbd, cfg.nEmbd, 0.02 / Math.sqrt(2 * cfg.nLayer), gen));
  }
  forward(x: Tensor): Tensor {
    return this.c_proj.forward(gelu(this.c_fc.forward(x)));
  }
}

class Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: MLP;
  constructor(private readonly cfg: GPT2Config, private readonly gen: ops.Generator) {
    super();
    this.ln_1 = this.child('ln_1', new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon));
    this.attn = this.child('attn', new Attention(cfg, gen));
    this.ln_2 = this.child('ln_2', new LayerNorm(cfg.nEmbd, cfg.layerNormEpsilon));
    this.mlp = this.child('mlp', new MLP(cfg, gen));
  }
  forward(x: Tensor): Tensor {
    // nanoGPT's three dropouts: attention probabilities, and each residual branch's output.
    const p = this.training ? this.cfg.dropout : 0;
    x = ops.add(x, dropout(this.attn.forward(this.ln_1.forward(x), { p, gen: this.gen }), p, this.gen));
    return ops.add(x, dropout(this.mlp.forward(this.ln_2.forward(x)), p, this.gen));
  }
  forwardCached(x: Tensor, cache: LayerCache, pos: number): Tensor {
    x = ops.add(x, this.attn.forwardCached(this.ln_1.forward(x), cache, pos));
    return ops.add(x, this.mlp.forward(this.ln_2.forward(x)));
  }
}

export class GPT2 extends Module {
  readonly blocks: Block[] = [];
  readonly ln_f: LayerNorm;
  /** Dropout masks (when dropout > 0) come from here. */
  readonly gen: ops.Generator;

  constructor(readonly config: GPT2Config, seed = 0) {
    super();
    const gen = (this.gen = new ops.Generator(seed));
    this.param('wte.weight', gen.randn([config.vocabSize, config.nEmbd], 0, 0.02).realize());
    this.param('wpe.weight', gen.randn([config.nPositions, config.nEmbd], 0, 0.02).realize());
    for (let i = 0; i < config.nLayer; i++) this.blocks.push(this.child(`h.${i}`, new Block(config, gen)));
    this.ln_f = this.child('ln_f', new LayerNorm(config.nEmbd, config.layerNormEpsilon));
  }

  get wte(): Tensor {
    return this.p('wte.weight');
  }
  get wpe(): Tensor {
    return this.p('wpe.weight');
  }

  /**
   * Final hidden states [B, T, C] for token ids [B, T] (i32). `trace`, if given, sees each
   * block's output (for inspection tools).
   */
  hidden(ids: Tensor, trace?: (name: string, x: Tensor) => void): Tensor {
    const T = ids.shape[1];
    if (ids.rank !== 2 || ids.dtype !== 'i32') throw new Error(`GPT2: input ids must be an i32 tensor [B, T], got ${ids.dtype} [${ids.shape}]`);
    if (T > this.config.nPositions) throw new Error(`GPT2: sequence length ${T} exceeds the context length ${this.config.nPositions}`);
    const tok = ops.indexSelect(this.wte, ids); // [B, T, C]
    const pos = ops.slice(this.wpe, [[0, T], null]); // [T, C]
    let x = dropout(ops.add(tok, pos), this.training ? this.config.dropout : 0, this.gen);
    trace?.('embeddings', x);
    this.blocks.forEach((b, i) => {
      x = b.forward(x);
      trace?.(`h.${i}`, x);
    });
    const out = this.ln_f.forward(x);
    trace?.('ln_f', out);
    return out;
  }

  /** Logits [B, T, V] through the LM head tied to the token embedding. */
  forward(ids: Tensor): Tensor {
    const h = this.hidden(ids);
    const [B, T, C] = h.shape;
    return ops.reshape(headLogits(ops.reshape(h, [B * T, C]), this.wte), [B, T, this.config.vocabSize]);
  }

  /** An empty KV cache for `batch` sequences (one per layer). */
  newCache(batch: number): LayerCache[] {
    const { nHead, nEmbd, nPositions } = this.config;
    const shape = [batch, nHead, nPositions, nEmbd / nHead];
    return this.blocks.map(() => ({ k: ops.zeros(shape), v: ops.zeros(shape) }));
  }

  /**
   * Logits [B, V] of the last of the tokens `ids` [B, Tn], which sit at positions pos … pos+Tn−1,
   * reusing (and extending) the KV cache. Inference only.
   */
  forwardCached(ids: Tensor, cache: LayerCache[], pos: number): Tensor {
    const [B, Tn] = ids.shape;
    if (pos + Tn > this.config.nPositions) throw new Error(`GPT2: position ${pos + Tn} exceeds the context length ${this.config.nPositions}`);
    let x = ops.add(ops.indexSelect(this.wte, ids), ops.slice(this.wpe, [[pos, pos + Tn], null]));
    this.blocks.forEach((b, i) => (x = b.forwardCached(x, cache[i], pos)));
    const last = ops.reshape(ops.slice(this.ln_f.forward(x), [null, [Tn - 1, Tn], null]), [B, -1]);
    return headLogits(last, this.wte);
  }

  /** GNB's loss: mean cross-entropy on labels sampled from the model itself (see functional.ts). */
  sampledLoss(ids: Tensor, targets: Tensor, gen: ops.Generator): Tensor {
    const h = this.hidden(ids);
    const [B, T, C] = h.shape;
    return lmHeadSampledCrossEntropy(ops.reshape(h, [B * T, C]), this.wte, ops.reshape(targets, [B * T]), gen);
  }

  /**
   * The mean loss on `targets` and, for a GNB estimate on this same minibatch, D = L̂ − L with L̂
   * the loss on labels sampled from the model (see lmHeadCrossEntropyWithGnbDelta): ∇L + ∇D is
   * GNB's ĝ. One forward serves both.
   */
  lossWithGnbDelta(ids: Tensor, targets: Tensor, gen: ops.Generator): { loss: Tensor; delta: Tensor } {
    const h = this.hidden(ids);
    const [B, T, C] = h.shape;
    return lmHeadCrossEntropyWithGnbDelta(ops.reshape(h, [B * T, C]), this.wte, ops.reshape(targets, [B * T]), gen);
  }

  /** Sums for evaluation (no graph): NLL, correct argmax predictions, scored targets. */
  evalSums(ids: Tensor, targets: Tensor): { nll: Tensor; correct: Tensor; count: Tensor } {
    const h = this.hidden(ids);
    const [B, T, C] = h.shape;
    return lmHeadEvalSums(ops.reshape(h, [B * T, C]), this.wte, ops.reshape(targets, [B * T]));
  }

  /** Mean next-token cross-entropy of `targets` [B, T]; negative targets (−100, −1) are ignored. */
  loss(ids: Tensor, targets: Tensor): Tensor {
    const h = this.hidden(ids);
    const [B, T, C] = h.shape;
    return lmHeadCrossEntropy(ops.reshape(h, [B * T, C]), this.wte, ops.reshape(targets, [B * T]));
  }
}
