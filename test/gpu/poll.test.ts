// Dawn's polling is paced (src/gpu/poll.ts): a long wait leaves the JS thread mostly idle, while
// JavaScript's own setImmediate calls keep Node's behaviour.
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { pacedPollCount } from '../../src/gpu/poll.ts';

beforeAll(async () => {
  await E.init();
});

const schedstat = `/proc/self/task/${process.pid}/schedstat`;
/** CPU seconds the JS main thread has used (Linux). */
const mainThreadCpu = () => Number(readFileSync(schedstat, 'utf8').split(' ')[0]) / 1e9;

describe('Dawn polling', () => {
  it('leaves JavaScript setImmediate callbacks to Node', async () => {
    const order: string[] = [];
    const handle = setImmediate(() => order.push('cleared'));
    expect(handle.constructor.name).toBe('Immediate');
    clearImmediate(handle);
    await new Promise<void>((resolve) => setImmediate(function named() {
      order.push('named');
      resolve();
    }));
    await new Promise((resolve) => setImmediate(resolve.bind(null, undefined)));
    expect(order).toEqual(['named']);
  });

  it("leaves a Promise's resolve (anonymous and native, like Dawn's callbacks) to Node, even right after a wait", async () => {
    const a = E.randn([64, 64]);
    await E.matmul(a, a).toArray(); // Dawn has just re-armed its polls
    let handle: unknown;
    await new Promise<void>((resolve) => {
      handle = setImmediate(resolve);
    });
    expect((handle as object).constructor.name).toBe('Immediate');
    // A loop yielding through setImmediate runs at Node's speed, not a timer's.
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) await new Promise((r) => setImmediate(r));
    expect(performance.now() - t0).toBeLessThan(150);
  });

  it('polls a long wait from a timer instead of spinning the JS thread', async () => {
    const a = E.randn([512, 512]);
    E.matmul(a, a).realize();
    await E.runtime.sync(); // compiles the kernel
    const before = pacedPollCount();
    const cpu0 = existsSync(schedstat) ? mainThreadCpu() : null;
    const t0 = performance.now();
    let c = a;
    // Enough dependent work for a wait of a few hundred milliseconds on lavapipe (less on a GPU).
    for (let i = 0; i < 40; i++) c = E.tidy(() => E.mul(E.matmul(c, a), 1 / 32)).realize();
    await E.runtime.sync();
    const wallS = (performance.now() - t0) / 1000;
    if (wallS < 0.05) return; // a real GPU finishes before there is anything to pace
    expect(pacedPollCount()).toBeGreaterThan(before);
    // Spinning, the main thread would be busy for the whole wait (≈ 100 % of wall time).
    if (cpu0 !== null) expect(mainThreadCpu() - cpu0).toBeLessThan(0.5 * wallS);
  });
});
