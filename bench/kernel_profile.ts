// `npx tsx bench/kernel_profile.ts [TOP]`: where the GPU time of one gradient and one exact HVP
// goes on GPT-2 tiny (8×64), kernel family by kernel family (timestamp queries, one pass per
// dispatch, so totals can run higher than bench/second_order.ts's wall times). Labels are the
// pipeline's name and its grid, and for matmuls (and their operand packing) the product's shape.
import { tinyProblem } from './tiny_problem.ts';

const top = Number(process.argv[2] ?? 25);
const { E, ctx, params, loss: f, probe } = await tinyProblem();
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
