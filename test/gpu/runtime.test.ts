// The runtime's profiling and reduction choices: profile() attributes GPU time to each kernel
// family and counts its dispatches; reductions agree with the reference whichever kernel runs.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { pipelineCount } from '../../src/gpu/runtime.ts';
import * as R from '../../src/reference/ndarray.ts';
import { expectClose, randomArray, toGpu } from '../helpers.ts';

beforeAll(async () => {
  await E.init();
});

describe('profile()', () => {
  it('times every dispatch and names its kernel family and grid', async () => {
    const a = E.randn([64, 64]);
    const report = await E.profile(() => {
      E.matmul(a, a).realize();
      E.sum(E.exp(a), 1).realize();
      E.add(a, 1).realize();
    });
    const labels = [...report.keys()];
    expect(labels.some((l) => l.startsWith('matmul')), labels.join()).toBe(true);
    // Products say their shape: grids alone do not tell e.g. an LM head's dX from a layer's x·W.
    expect(labels.filter((l) => l.startsWith('matmul')).every((l) => l.endsWith('[64×64]·[64×64]')), labels.join()).toBe(true);
    expect(labels.some((l) => l.startsWith('reduce_sum')), labels.join()).toBe(true);
    expect(labels.some((l) => l.startsWith('elementwise')), labels.join()).toBe(true);
    for (const { ms, count } of report.values()) {
      expect(count).toBeGreaterThanOrEqual(1);
      expect(ms).toBeGreaterThanOrEqual(0);
    }
    // Recording is back to normal afterwards (one pass for many dispatches).
    expect(E.runtime.profiler).toBeNull();
  });
});

describe('reductions', () => {
  it('row sums of many short and few long rows, and total sums split into rows first', async () => {
    for (const [shape, axis] of [[[512, 128], 1], [[512, 128], 0], [[4, 3000], 1], [[300, 260], undefined]] as const) {
      const x = randomArray([...shape], 7);
      const want = axis === undefined ? R.sum(x) : R.sum(x, axis);
      const got = axis === undefined ? E.sum(toGpu(x)) : E.sum(toGpu(x), axis);
      expectClose(await got.toArray(), want.data, 1e-5, 1e-4, `sum ${shape} axis ${axis}`);
    }
  });
});

describe('dispatch batching and the pipeline cache', () => {
  it('a chain of kernels is one submission; the same kernels again compile no new pipeline', async () => {
    const x = E.randn([256, 64]).realize();
    const w = E.randn([64, 64]).realize();
    await E.runtime.sync();
    // Ten dependent matmul + reduction + elementwise steps, each realised (a kernel each).
    const chain = () => {
      let y = x;
      for (let i = 0; i < 10; i++) y = E.tanh(E.matmul(y, w)).realize();
      return E.sum(y, 0).realize();
    };
    const first = chain(); // compiles the pipelines, grows any scratch textures
    const pipes = pipelineCount();
    await E.runtime.sync();
    const s0 = { ...E.runtime.stats };
    const again = chain();
    const s1 = { ...E.runtime.stats };
    expect(s1.dispatches - s0.dispatches).toBeGreaterThanOrEqual(11);
    expect(s1.submits - s0.submits).toBe(0); // recorded; submitted when something waits or reads
    expect(pipelineCount()).toBe(pipes);
    expect(Array.from(await again.toArray())).toEqual(Array.from(await first.toArray()));
  });
});
