// The neural-network functions GPT-2 needs, composed from differentiable engine ops: their
// derivatives of every order (gradients, HVPs for Sophia-H) come from the pieces.
import * as ops from '../autograd/ops/index.ts';
import * as raw from '../tensor/ops.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { fmt } from '../tensor/shape.ts';
import { bindingLimit, formatBytes } from '../gpu/runtime.ts';
import { sizeClass } from '../gpu/pool.ts';
import { MAX_FUSED_HEAD_DIM } from '../tensor/kernels/attention.ts';
import { fullp, lowp } from './autocast.ts';

const { add, mul, sub, div, tanh, sum, mean, rsqrt, where, logsumexp, takeAlongLastAxis, matmul, softmax, reshape, causalMask } = ops;

/** GELU, tanh approximation (GPT-2's "gelu_new"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function gelu(x: Tensor): Tensor {
  const inner = mul(Math.sqrt(2 / Math.PI), add(x, mul(0.044715, mul(x, mul(x, x)))));
  return mul(mul(0.5, x), add(1, tanh(inner)));
}

export type LayerNormStrategy = 'auto' | 'stats-kernel' | 'composed';
let layerNormStrategy: LayerNormStrategy = 'auto';

/** Forces one LayerNorm implementation (tests, benchmarks); 'stats-kernel' still falls back where it cannot run. */
export function setLayerNormStrategy(s: LayerNormStrategy): void {
  layerNormStrategy = s;
}

/** The implementation the last layerNorm call used (tests check that both ran). */
export let lastLayerNorm: 'stats-kernel' | 'composed' | 'none' = 'none';

/**
 * LayerNorm over the last axis with biased variance, as torch.nn.LayerNorm:
 * (x − μ)·(var + ε)^(-1/2)·weight + bias. The statistics come from one kernel
 * (ops.layerNormStats) or from two composed reductions; the rest is one fused elementwise
 * kernel either way, and both have the same derivatives of every order.
 *
 * 'auto' takes the statistics kernel wherever x fits one binding: `npm run bench:layernorm --
 * --rounds=2` (2-core lavapipe, 2026-12-03), composed / kernel in worker-CPU time at [512, 128],
 * [1024, 128], [1024, 768], [8192, 768]: forward 1.20, 1.34, 1.17, 1.14×; forward+backward 1.25,
 * 1.15, 1.37, 1.42×; HVP 1.29, 1.16, 1.26, 1.16× (the backward graph is smaller: μ and r have
 * one rule each instead of the chains of mean, square, mean, add and rsqrt). The tiny training
 * step, where LayerNorm is a small part, was the same either way (1.00×).
 */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor {
  x = fullp(x); // statistics in f32 under autocast
  const limit = bindingLimit();
  // The kernel binds x's whole buffer (a contiguous copy, of a pool size class, when x is lazy or strided).
  const kernel =
    layerNormStrategy !== 'composed' && (x.isLazy || !x.isContiguous() ? sizeClass(x.size * 4) <= limit : x.layout().storage.buffer.size <= limit);
  lastLayerNorm = kernel ? 'stats-kernel' : 'composed';
  if (kernel) {
    const { mean: mu, rstd } = ops.layerNormStats(x, eps);
    return add(mul(mul(sub(x, mu), rstd), weight), bias);
  }
  const mu = mean(x, -1, true);
  const xc = sub(x, mu);
  const variance = mean(mul(xc, xc), -1, true);
  return add(mul(mul(xc, rsqrt(add(variance, eps))), weight), bias);
}

/**
 * x·W + b with W stored [in, out] (GPT-2's Conv1D layout); leading dims are flattened into one
 * matmul. Under autocast('f16') input, weight and bias are cast to f16 and so is the output.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  const [inF, outF] = weight.shape;
  if (x.shape[x.rank - 1] !== inF) throw new Error(`linear: input ${fmt(x.shape)} does not end in ${inF} (weight ${fmt(weight.shape)})`);
  const lead = x.shape.slice(0, -1);
  const y = matmul(reshape(lowp(x), [-1, inF]), lowp(weight));
  return reshape(bias ? add(y, lowp(bias)) : y, [...lead, outF]);
}

export { causalMask };

export type AttentionStrategy = 'auto' | 'fused' | 'composed';
let attentionStrategy: AttentionStrategy = 'auto';

/** Forces one attention implementation (tests, benchmarks); 'fused' still falls back where it cannot run. */
export function setAttentionStrategy(s: AttentionStrategy): void {
  attentionStrategy = s;
}

/** The implementation the last causalAttention call used (tests check that both ran). */
export let lastAttention: 'fused' | 'composed' | 'none' = 'none';

/**
 * Causal scaled-dot-product attention over q, k, v [B, H, T, D]: softmax(q·kᵀ/√D, masked) · v.
 * No position sees the future. Two implementations with the same derivatives of every order:
 * the fused kernel (ops.fusedCausalAttention) and the composition below.
 *
 * 'auto' takes the fused one wherever it fits (head size ≤ 64, f32, one binding per operand). On
 * lavapipe (its subgroup kernel) it won at every shape measured; on GPUs (its tiled kernel) it
 * also keeps the [B, H, T, T] probabilities out of the saved graph, not yet timed there. `npm run
 * bench:attention -- --rounds=2` on the 2-core lavapipe machine (2026-11-24, load ≈ 6), ms per
 * call of lavapipe worker-thread CPU (the steadier figure on a shared machine), fused vs composed:
 *   [8, 4, 64, 32]     forward 1.0 vs 14.6 (14×)    forward+backward 9.4 vs 29.3 (3.1×)    HVP 47 vs 76 (1.6×)
 *   [8, 4, 128, 32]    forward 3.4 vs 37.2 (11×)    forward+backward 32.5 vs 78.9 (2.4×)   HVP 141 vs 218 (1.5×)
 *   [1, 12, 1024, 64]  forward 143 vs 541 (3.8×)    forward+backward 917 vs 1317 (1.4×)    HVP 3327 vs 3553 (1.07×)
 * (wall-clock ratios agree in direction; the backward and HVP are engine-op graphs in both, so
 * the gain there comes from the forward and from not keeping the softmax chain.) The whole tiny
 * training step (same bench, alternating): worker CPU 1956 vs 2118 ms and 1796 vs 1918 ms per step
 * (1.07–1.08×). `npm run bench:gpt2 -- --attention=fused|composed`, three pairs: HVP/gradient
 * 2.68/2.79/2.33× fused vs 4.34/3.23/3.24× composed; its wall ms/step swung with the machine's load
 * (the PyTorch peer in the same runs ranged 615–4115 ms), so it does not rank the two.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, drop?: AttentionDropout): Tensor {
  raw.checkAttentionShapes('causalAttention', q, k, v);
  return inScoreBlocks(q, k, v, (qb, kb, vb) => {
    // Dropout on the attention probabilities needs them materialised: the composition does that.
    const dropping = drop !== undefined && drop.p > 0;
    const fused = !dropping && attentionStrategy !== 'composed' && fusedAttentionFits(qb, kb, vb);
    lastAttention = fused ? 'fused' : 'composed';
    return fused ? ops.fusedCausalAttention(qb, kb, vb) : composedCausalAttention(qb, kb, vb, drop);
  });
}

/**
 * Runs `attend` on blocks of whole batch entries (or of heads, where one entry is too big) whose
 * [b, h, T, T] scores fit one storage binding, and concatenates the outputs. Both implementations
 * hold such a tensor: the composition in its forward, the fused kernel in its backward (which
 * recomputes the probabilities). GPT-2 small at B = 8, T = 1024 has 403 MB of scores per layer,
 * lavapipe binds 128 MiB. Blocks are views, and slicing and concatenation are differentiable, so
 * gradients and HVPs are those of the unsplit attention. Where the scores fit: one call, no split.
 */
function inScoreBlocks(q: Tensor, k: Tensor, v: Tensor, attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor): Tensor {
  const [B, H, T] = q.shape;
  const perHead = T * T * 4; // f32 scores (the f16 composition's softmax runs in f32 too)
  const limit = bindingLimit();
  if (B * H * perHead <= limit) return attend(q, k, v);
  if (perHead > limit) {
    throw new Error(`causalAttention: one head's ${T}×${T} f32 scores (${formatBytes(perHead)}) exceed this adapter's maxStorageBufferBindingSize (${formatBytes(limit)}); use a shorter context`);
  }
  if (H * perHead <= limit) return inBlocks([q, k, v], 0, Math.floor(limit / (H * perHead)), attend);
  return inBlocks([q, k, v], 0, 1, (qb, kb, vb) => inBlocks([qb, kb, vb], 1, Math.floor(limit / perHead), attend));
}

/** `fn` over pieces of `n` along `axis` of each operand (views), its results concatenated there. */
function inBlocks(operands: Tensor[], axis: number, n: number, fn: (q: Tensor, k: Tensor, v: Tensor) => Tensor): Tensor {
  const [qs, ks, vs] = operands.map((t) => ops.split(t, n, axis));
  return ops.concat(qs.map((qi, i) => fn(qi, ks[i], vs[i])), axis);
}

/**
 * Dropout on the attention probabilities (nanoGPT's attn_dropout, HF's attn_pdrop,
 * scaled_dot_product_attention's dropout_p): each weight is zeroed with probability p and the
 * survivors scaled by 1/(1−p), with masks drawn from `gen`.
 */
export interface AttentionDropout {
  p: number;
  gen: ops.Generator;
}

/** Whether the head size and dtype are the fused kernel's and every operand fits one storage binding. */
function fusedAttentionFits(q: Tensor, k: Tensor, v: Tensor): boolean {
  if (q.shape[3] > MAX_FUSED_HEAD_DIM || [q, k, v].some((t) => t.dtype !== 'f32')) return false;
  const limit = bindingLimit();
  if (q.size * 4 > limit) return false;
  return [q, k, v].every((t) => t.isLazy || t.layout().storage.buffer.size <= limit);
}

/** softmax(q·kᵀ/√D with −∞ above the diagonal)·v from engine ops (materialises [B, H, T, T]). */
export function composedCausalAttention(q: Tensor, k: Tensor, v: Tensor, drop?: AttentionDropout): Tensor {
  const T = q.shape[2];
  const D = q.shape[3];
  const scores = mul(matmul(q, ops.transpose(k)), 1 / Math.sqrt(D));
  const masked = where(causalMask(T), scores, -Infinity);
  // Under autocast('f16') the products are f16 and the softmax f32 (lowp/fullp are no-ops otherwise).
  const probs = softmax(fullp(masked), -1);
  return matmul(lowp(drop && drop.p > 0 ? dropout(probs, drop.p, drop.gen) : probs), v);
}

/**
 * Mean cross-entropy of logits [..., V] against integer targets [...] (i32). Targets equal to
 * `ignoreIndex` contribute nothing and are excluded from the mean (torch's ignore_index).
 */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex = -100): Tensor {
  const V = logits.shape[logits.rank - 1];
  if (targets.dtype !== 'i32') throw new Error(`crossEntropy: targets must be i32 token ids, got ${targets.dtype}`);
  if (targets.shape.join() !== logits.shape.slice(0, -1).join()) {
    throw new Error(`crossEntropy: targets ${fmt(targets.shape)} must match logits ${fmt(logits.shape)} without the class axis`);
  }
  const flat = reshape(fullp(logits), [-1, V]); // the loss in f32 under autocast
  const t = reshape(targets, [-1]);
  const nll = sub(logsumexp(flat, -1), takeAlongLastAxis(flat, t));
  const keep = raw.binary('ne', t, raw.scalar(ignoreIndex));
  return div(sum(where(keep, nll, 0)), raw.binary('max', raw.reduce('sum', keep, undefined, false), raw.scalar(1)));
}

/**
 * h·Wᵀ for the LM head. When the embedding W is larger than one storage binding (GPT-2's
 * 50257×768 f32 table is 154 MB; lavapipe binds 128 MiB), the product is taken over vocabulary
 * slices and the logits are concatenated.
 */
export function headLogits(h: Tensor, wte: Tensor): Tensor {
  const [V, C] = wte.shape;
  // Under autocast('f16') the head is a linear layer like the others: f16 operands and logits.
  if (wte.isLazy || wte.layout().storage.buffer.size <= bindingLimit()) return matmul(lowp(h), ops.transpose(lowp(wte)));
  const per = Math.max(64, Math.floor(bindingLimit() / (C * 4) / 64) * 64);
  const parts: Tensor[] = [];
  for (let v0 = 0; v0 < V; v0 += per) parts.push(matmul(lowp(h), ops.transpose(lowp(ops.slice(wte, [[v0, Math.min(V, v0 + per)], null])))));
  return ops.concat(parts, -1);
}

/**
 * Runs `parts(logits, targets, scored, rows of h)` over row chunks of the LM head's logits h·Wᵀ and sums
 * each returned scalar over the chunks. No logits buffer exceeds `maxChunkBytes`: vocabulary-
 * sized logits of a whole batch are larger than a storage binding may be on some adapters
 * (1024 × 50257 × 4 B = 206 MB), and never need to exist at once. Targets < 0 are not scored.
 * Composed of engine ops, so everything built on it has gradients and HVPs.
 */
export function sumOverLogitChunks(
  h: Tensor,
  wte: Tensor,
  targets: Tensor,
  parts: (logits: Tensor, targets: Tensor, scored: Tensor, rows: Tensor) => Tensor[],
  maxChunkBytes = 128 * 2 ** 20,
): Tensor[] {
  const [N, C] = h.shape;
  const V = wte.shape[0];
  if (h.rank !== 2 || wte.shape[1] !== C || targets.shape.join() !== `${N}`) {
    throw new Error(`LM head: expected h [N, C], wte [V, C], targets [N]; got ${fmt(h.shape)}, ${fmt(wte.shape)}, ${fmt(targets.shape)}`);
  }
  const cap = Math.max(1, Math.floor(Math.min(maxChunkBytes, bindingLimit()) / (V * 4)));
  // Equal chunks, rounded up to whole 32-row matmul tiles where that stays under the cap: 512 rows
  // under a 333-row cap run as 256 + 256, not 333 + 179 (which pads both to 352 + 192 rows).
  const even = Math.ceil(N / Math.ceil(N / cap));
  const rows = Math.ceil(even / 32) * 32 <= cap ? Math.ceil(even / 32) * 32 : even;
  let totals: Tensor[] | null = null;
  for (let r0 = 0; r0 < N; r0 += rows) {
    const r1 = Math.min(N, r0 + rows);
    // Under autocast the f16 logits are taken to f32 once (realised: log-sum-exp and the target
    // lookup both read them) so the loss is computed in f32.
    const hRows = ops.slice(h, [[r0, r1], null]);
    const head = headLogits(hRows, wte);
    const logits = head.dtype === 'f16' ? fullp(head).realize() : head;
    const t = ops.slice(targets, [[r0, r1]]);
    const p = parts(logits, t, raw.binary('ge', t, raw.scalar(0)), hRows);
    totals = totals ? totals.map((a, k) => add(a, p[k])) : p;
  }
  return totals!;
}

/** Number of targets ≥ 0 (the scored positions). */
function scoredTargets(targets: Tensor): Tensor {
  return raw.reduce('sum', raw.binary('ge', targets, raw.scalar(0)), undefined, false);
}

/** Number of targets ≥ 0, at least 1, so an all-ignored batch gives a loss of 0, not NaN. */
export function scoredCount(targets: Tensor): Tensor {
  return raw.binary('max', scoredTargets(targets), raw.scalar(1));
}

/** The LM head fused with the loss: mean cross-entropy of h·Wᵀ against targets (< 0 ignored). */
export function lmHeadCrossEntropy(h: Tensor, wte: Tensor, targets: Tensor, opts: { maxChunkBytes?: number } = {}): Tensor {
  const [total] = sumOverLogitChunks(h, wte, targets, (logits, t, scored) => [sum(where(scored, sub(logsumexp(logits, -1), takeAlongLastAxis(logits, t)), 0))], opts.maxChunkBytes);
  return div(total, scoredCount(targets));
}

/**
 * Sophia's GNB loss: mean cross-entropy against labels ŷ sampled from the model's own
 * softmax (sampled inside each logits chunk, on the GPU, from `gen`, by inverse CDF: one uniform
 * per token, half the cost of Gumbel-max here). Positions whose real
 * target is < 0 are not scored. Its gradient ĝ gives the Gauss-Newton-Bartlett estimate B·ĝ⊙ĝ.
 */
export function lmHeadSampledCrossEntropy(h: Tensor, wte: Tensor, targets: Tensor, gen: ops.Generator): Tensor {
  const [total] = sumOverLogitChunks(h, wte, targets, (logits, _t, scored) => {
    const sampled = ops.categorical(ops.detach(logits), gen, { method: 'inverse-cdf' });
    return [sum(where(scored, sub(logsumexp(logits, -1), takeAlongLastAxis(logits, sampled)), 0))];
  });
  return div(total, scoredCount(targets));
}

/**
 * The training loss L (as lmHeadCrossEntropy) together with what Sophia's GNB estimate needs on
 * the same minibatch: labels ŷ sampled from the same logits (from `gen`), and the scalar
 * D = Σₙ (zₙ[yₙ] − zₙ[ŷₙ]) / count, which is exactly L̂ − L, where L̂ is the mean cross-entropy
 * on ŷ. So ĝ = ∇L̂ = ∇L + ∇D, and D = Σₙ hₙ·(W[yₙ] − W[ŷₙ]) / count needs no vocabulary-sized
 * product: its gradient is one more backward through the blocks plus two row gathers' adjoints,
 * instead of a second forward and backward with the LM head. f32 only (the trainer falls back to
 * a separate estimator pass under autocast).
 */
export function lmHeadCrossEntropyWithGnbDelta(h: Tensor, wte: Tensor, targets: Tensor, gen: ops.Generator, opts: { maxChunkBytes?: number } = {}): { loss: Tensor; delta: Tensor } {
  const sampled: Tensor[] = [];
  const [nll] = sumOverLogitChunks(
    h,
    wte,
    targets,
    (logits, t, scored) => {
      sampled.push(ops.categorical(ops.detach(logits), gen, { method: 'inverse-cdf' }));
      return [sum(where(scored, sub(logsumexp(logits, -1), takeAlongLastAxis(logits, t)), 0))];
    },
    opts.maxChunkBytes,
  );
  // One gather of 2N rows, W[y] then W[ŷ], against [h; −h] (unscored rows zeroed; their target,
  // < 0, gathers row 0): its adjoint is a single scatter into the V×C table, not one per chunk.
  const scored = raw.binary('ge', targets, raw.scalar(0));
  const kept = where(ops.reshape(scored, [-1, 1]), h, 0);
  const ids = ops.concat([raw.cast(raw.binary('max', targets, raw.scalar(0)), 'i32'), ops.concat(sampled)]);
  const diff = sum(mul(ops.concat([kept, ops.neg(kept)]), ops.indexSelect(wte, ids)));
  const count = scoredCount(targets);
  return { loss: div(nll, count), delta: div(diff, count) };
}

/**
 * Evaluation sums without gradients: total negative log-likelihood and the number of scored
 * positions whose target is the argmax (next-token accuracy), plus the scored count.
 */
export function lmHeadEvalSums(h: Tensor, wte: Tensor, targets: Tensor): { nll: Tensor; correct: Tensor; count: Tensor } {
  const [nll, correct] = sumOverLogitChunks(h, wte, targets, (logits, t, scored) => {
    const picked = takeAlongLastAxis(logits, t);
    const best = ops.max(logits, -1);
    return [sum(where(scored, sub(logsumexp(logits, -1), picked), 0)), sum(where(scored, ops.ge(picked, best), 0))];
  });
  return { nll, correct, count: scoredTargets(targets) };
}

/** Inverted dropout: zero with probability p, scale survivors by 1/(1−p). */
export function dropout(x: Tensor, p: number, gen: ops.Generator): Tensor {
  if (p <= 0) return x;
  const keep = gen.bernoulli([...x.shape], 1 - p);
  return mul(x, mul(keep, 1 / (1 - p)));
}
