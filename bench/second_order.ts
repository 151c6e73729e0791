// `npx tsx bench/second_order.ts [ROOT]`: gradient vs exact HVP vs jvp on GPT-2 tiny (8×64), in
// interleaved rounds, wall time and process CPU time (lavapipe's worker threads included, so it
// counts work rather than waiting and is steadier than wall time on a shared machine). ROOT is
// a checkout of this repository (default: this one), e.g. an older commit unpacked with
// `git archive <commit> src shaders | tar -x -C /tmp/base`, to compare engines run after run.
import { thisCheckout, tinyProblem } from './tiny_problem.ts';

const root = process.argv[2] ?? thisCheckout;
const { E, ctx, params, loss: f, probe, B, L } = await tinyProblem(root);
const fns = { grad: () => void E.grad(f)(...params), hvp: () => void E.hvp(f, params, probe), jvp: () => void E.jvp(f, params, probe) };
type Name = keyof typeof fns;
const wall: Record<Name, number[]> = { grad: [], hvp: [], jvp: [] };
const cpu: Record<Name, number[]> = { grad: [], hvp: [], jvp: [] };
const once = async (name: Name | null, fn: () => void) => {
  await E.runtime.sync();
  const c = process.cpuUsage();
  const t = performance.now();
  E.tidy(fn);
  await E.runtime.sync();
  const d = process.cpuUsage(c);
  if (name) (wall[name].push(performance.now() - t), cpu[name].push((d.user + d.system) / 1000));
};
for (const fn of Object.values(fns)) await once(null, fn); // shader compiles, buffer pool
for (let r = 0; r < 4; r++) for (const [k, fn] of Object.entries(fns)) await once(k as Name, fn);
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const ratio = (xs: number[], ys: number[]) => med(xs.map((x, i) => x / ys[i])).toFixed(2);
console.log(`${root}: GPT-2 tiny, ${B}×${L}, median of 4 interleaved rounds`);
console.log(`  wall: gradient ${med(wall.grad).toFixed(0)} ms, HVP ${med(wall.hvp).toFixed(0)} ms (${ratio(wall.hvp, wall.grad)}×), jvp ${med(wall.jvp).toFixed(0)} ms (${ratio(wall.jvp, wall.grad)}×)`);
console.log(`  CPU:  gradient ${med(cpu.grad).toFixed(0)} ms, HVP ${med(cpu.hvp).toFixed(0)} ms (${ratio(cpu.hvp, cpu.grad)}×), jvp ${med(cpu.jvp).toFixed(0)} ms (${ratio(cpu.jvp, cpu.grad)}×)`);
ctx.device.destroy();
