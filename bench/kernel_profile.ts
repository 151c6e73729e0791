// `npx tsx bench/kernel_profile.ts [TOP]`: where the GPU time of one gradient and one exact HVP
// goes on GPT-2 tiny (8×64), kernel family by kernel family (timestamp queries, one pass per
// dispatch, so totals run higher than bench/second_order.ts's wall times). Labels are the
// pipeline's name and its grid, which tells apart e.g. the LM head's [512, 50257] products.
import * as E from '../src/index.ts';
import { functionalCall, GPT2, gpt2Config } from '../src/nn/index.ts';

const top = Number(process.argv[2] ?? 25);
const ctx = await E.initOrExit();
const B = 8;
const L = 64;
const cfg = gpt2Config('tiny');
const model = new GPT2(cfg, 0);
const rand = (seed: number) => Int32Array.from({ length: B * L }, (_, i) => (i * 7919 + seed * 104729) % cfg.vocabSize);
const ids = E.tensor(rand(1), [B, L], 'i32');
const targets = E.tensor(rand(2), [B, L], 'i32');
const params = model.parameters();
const f = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(ids, targets));
const probe = params.map((p) => E.keep(E.randn([...p.shape]).realize()));
const cases = { gradient: () => void E.grad(f)(...params), hvp: () => void E.hvp(f, params, probe) };
for (const [name, fn] of Object.entries(cases)) {
  E.tidy(fn); // compiles every shader first
  await E.runtime.sync();
  const report = await E.profile(() => E.tidy(fn));
  const rows = [...report.entries()];
  const ms = rows.reduce((s, [, r]) => s + r.ms, 0);
  const count = rows.reduce((s, [, r]) => s + r.count, 0);
  console.log(`== ${name}: ${ms.toFixed(1)} ms of GPU time in ${count} dispatches`);
  for (const [label, r] of rows.slice(0, top)) console.log(`  ${r.ms.toFixed(2).padStart(9)} ms ${String(r.count).padStart(5)}×  ${label}`);
}
ctx.device.destroy();
