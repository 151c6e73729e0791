// LayerNorm's row statistics from one kernel, as graph nodes with exact derivatives, so that
// LayerNorm built from them (src/nn/functional.ts) differentiates to any order like the fully
// composed one, while its forward runs one statistics kernel instead of two reductions.
//
//   μ = mean(x)              ∂μ/∂xⱼ = 1/C
//   r = (var(x) + ε)^(-1/2)  ∂r/∂xⱼ = −r³·(xⱼ − μ)/C   (var is biased: Σ(x − μ)²/C)
//
// Each rule is written in engine ops over x and the nodes themselves (r's rule reads r and μ),
// so second derivatives flow through the statistics too.
import * as raw from '../../tensor/ops.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { record } from '../graph.ts';
import { mul, sub } from './elementwise.ts';
import { expand } from './views.ts';

/** Mean and 1/√(biased variance + eps) over the last axis of an f32 tensor, each [..., 1]. */
export function layerNormStats(x: Tensor, eps: number): { mean: Tensor; rstd: Tensor } {
  const stats = raw.layerNormStats(x, eps);
  const C = x.shape[x.rank - 1];
  const mean: Tensor = record(stats.mean, 'layerNormMean', [x], (g) => [expand(mul(g, 1 / C), x.shape)]);
  const rstd: Tensor = record(stats.rstd, 'layerNormRstd', [x], (g) => [mul(mul(g, mul(mul(rstd, mul(rstd, rstd)), -1 / C)), sub(x, mean))]);
  return { mean, rstd };
}
