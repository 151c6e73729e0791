// The second-order benches' shared problem: GPT-2 tiny's loss on a fixed 8×64 batch of token
// ids, its parameters and a Gaussian probe, from the engine in `root` (this checkout, or an
// older commit unpacked elsewhere to compare engines).
import { fileURLToPath } from 'node:url';

export const thisCheckout = fileURLToPath(new URL('..', import.meta.url));

export async function tinyProblem(root = thisCheckout, B = 8, L = 64) {
  const E = await import(`${root}/src/index.ts`);
  const { functionalCall, GPT2, gpt2Config } = await import(`${root}/src/nn/index.ts`);
  type T = InstanceType<typeof E.Tensor>;
  const ctx = await E.initOrExit();
  const cfg = gpt2Config('tiny');
  const model = new GPT2(cfg, 0);
  const rand = (seed: number) => Int32Array.from({ length: B * L }, (_, i) => (i * 7919 + seed * 104729) % cfg.vocabSize);
  const ids = E.tensor(rand(1), [B, L], 'i32');
  const targets = E.tensor(rand(2), [B, L], 'i32');
  const params: T[] = model.parameters();
  const loss = (...ps: T[]): T => functionalCall(model, ps, () => model.loss(ids, targets));
  const probe: T[] = params.map((p) => E.keep(E.randn([...p.shape]).realize()));
  return { E, ctx, params, loss, probe, B, L };
}
