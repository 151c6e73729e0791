// matmul kernels (src/tensor/kernels/matmul.ts) against a float64 CPU matmul.
//
// Tolerance: every output must satisfy |c − c64| ≤ 1e-5 · Σₖ |aᵢₖ| |bₖⱼ| (+1e-30), i.e. relative to
// the magnitude the f32 sum was built from. f32 rounding of a K-term dot product is bounded by
// ≈ K · 2⁻²⁴ in the worst case and is ≈ 1e-7 in practice; every shape here has K ≤ 200.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add, expand, init, matmul, mul, reshape, slice, tensor, transpose, type Tensor } from '../../src/index.ts';
import { lastMatmulKernel, setMatmulStrategy, setPackThroughBuffer, type MatmulStrategy } from '../../src/tensor/kernels/matmul.ts';
import { ctx } from '../../src/gpu/device.ts';
import { setBindingLimit } from '../../src/gpu/runtime.ts';

const REL_TOL = 1e-5;

beforeAll(async () => {
  await init();
});
afterAll(() => setMatmulStrategy('auto'));

/** Deterministic values in [-1, 1) (mulberry32). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** A logical [batch][rows][cols] matrix stack, readable at (b, i, j). */
interface Mat {
  batch: number;
  rows: number;
  cols: number;
  at(b: number, i: number, j: number): number;
}

function dense(data: Float32Array, batch: number, rows: number, cols: number): Mat {
  return { batch, rows, cols, at: (b, i, j) => data[(b * rows + i) * cols + j] };
}

async function check(gpuOut: Tensor, A: Mat, B: Mat): Promise<void> {
  const batch = Math.max(A.batch, B.batch);
  const [M, K, N] = [A.rows, A.cols, B.cols];
  const got = await gpuOut.toArray();
  expect(got.length).toBe(batch * M * N);
  let worst = 0;
  for (let b = 0; b < batch; b++) {
    const ab = A.batch === 1 ? 0 : b;
    const bb = B.batch === 1 ? 0 : b;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let sum = 0;
        let mag = 0;
        for (let k = 0; k < K; k++) {
          const p = A.at(ab, i, k) * B.at(bb, k, j);
          sum += p;
          mag += Math.abs(p);
        }
        const err = Math.abs(got[(b * M + i) * N + j] - sum) / (REL_TOL * mag + 1e-30);
        worst = Math.max(worst, err);
      }
    }
  }
  // worst is the error in units of the tolerance.
  expect(worst).toBeLessThanOrEqual(1);
}

const seen = new Set<string>();

/** C = A·B for plain (optionally batched) operands; transA/transB store the operand transposed and pass transpose(). */
async function plain(M: number, K: number, N: number, opts: { batchA?: number; batchB?: number; transA?: boolean; transB?: boolean; seed?: number } = {}) {
  const { batchA = 1, batchB = 1, transA = false, transB = false, seed = M * 7919 + K * 104729 + N } = opts;
  const a = values(batchA * M * K, seed);
  const b = values(batchB * K * N, seed + 1);
  const lead = (n: number) => (n > 1 ? [n] : []);
  // Stored layouts: A as [.., M, K] or [.., K, M]; the logical A is the same values either way.
  const ta = tensor(a, [...lead(batchA), ...(transA ? [K, M] : [M, K])]);
  const tb = tensor(b, [...lead(batchB), ...(transB ? [N, K] : [K, N])]);
  const A: Mat = transA ? { batch: batchA, rows: M, cols: K, at: (x, i, k) => a[(x * K + k) * M + i] } : dense(a, batchA, M, K);
  const B: Mat = transB ? { batch: batchB, rows: K, cols: N, at: (x, k, j) => b[(x * N + j) * K + k] } : dense(b, batchB, K, N);
  const c = matmul(transA ? transpose(ta) : ta, transB ? transpose(tb) : tb);
  seen.add(lastMatmulKernel);
  await check(c, A, B);
  for (const t of [ta, tb, c]) t.dispose();
}

// 'tex;textureStore': the tex kernel with its operands packed by textureStore, as it does where
// an operand's texels exceed one storage binding (elsewhere they go through a buffer and a copy).
for (const variant of ['simple', 'tex', 'tex;textureStore', 'tiled', 'auto'] as const) {
  const strategy = variant.split(';')[0] as MatmulStrategy;
  describe(`matmul, strategy ${variant}`, () => {
    beforeAll(() => {
      setMatmulStrategy(strategy);
      setPackThroughBuffer(variant === strategy);
    });
    afterAll(() => setPackThroughBuffer(true));
    it('1×1×1', () => plain(1, 1, 1));
    it('odd sizes 17×33×5', () => plain(17, 33, 5));
    it('aligned 64×64×64', () => plain(64, 64, 64));
    it('K % 4 == 0, N % 4 != 0 (33×20×70)', () => plain(33, 20, 70));
    it('K % 4 != 0 (70×37×68)', () => plain(70, 37, 68));
    it('several tiles with ragged edges (130×200×150)', () => plain(130, 200, 150));
    it('Aᵀ·B', () => plain(45, 64, 72, { transA: true }));
    it('A·Bᵀ', () => plain(40, 48, 36, { transB: true }));
    it('Aᵀ·Bᵀ with odd sizes', () => plain(23, 19, 29, { transA: true, transB: true }));
    it('batched', () => plain(19, 24, 40, { batchA: 3, batchB: 3 }));
    it('batched, transposed B', () => plain(33, 16, 21, { batchA: 2, batchB: 2, transB: true }));
    it('broadcast B (folded into one tall matrix)', () => plain(10, 16, 12, { batchA: 4 }));
    it('broadcast B with transposed A (not foldable)', () => plain(10, 16, 12, { batchA: 4, transA: true }));
    it('broadcast A', () => plain(10, 16, 12, { batchB: 5 }));
    // 130 matrices make 130 tiles: the tiled kernel's 128×128 variant (8×8 per invocation).
    it('many batched matrices', () => plain(20, 36, 33, { batchA: 130, batchB: 130 }));
    it('many batched matrices, transposed A', () => plain(20, 36, 33, { batchA: 130, batchB: 130, transA: true }));
  });
}

describe('matmul, strided and composed operands', () => {
  beforeAll(() => setMatmulStrategy('tex'));

  it('sliced operands (unaligned offsets, row strides that are not K)', async () => {
    const [M, K, N] = [21, 30, 26];
    const big = values(40 * 50, 11);
    const t = tensor(big, [40, 50]);
    // A = big[3:24, 5:35], B = big[1:31, 7:33]: offset 155 and 57, row stride 50.
    const A = slice(t, [[3, 3 + M], [5, 5 + K]]);
    const B = slice(t, [[1, 1 + K], [7, 7 + N]]);
    const c = matmul(A, B);
    seen.add(lastMatmulKernel);
    await check(c, { batch: 1, rows: M, cols: K, at: (_, i, k) => big[(3 + i) * 50 + 5 + k] }, { batch: 1, rows: K, cols: N, at: (_, k, j) => big[(1 + k) * 50 + 7 + j] });
    for (const x of [t, A, B, c]) x.dispose();
  });

  it('an operand whose packed texels exceed one storage binding is packed by textureStore, the other through a buffer', async () => {
    // A [1, 2048] pads to 32 rows: 256 KiB of texels; B [2048, 16] pads to 64 columns: 512 KiB.
    setBindingLimit(300 * 1024);
    try {
      await plain(1, 2048, 16);
      expect(lastMatmulKernel).toBe('tex(a:vec4,b:vec4;textureStore)');
    } finally {
      setBindingLimit(null);
    }
  });

  it('both operands views of one buffer (x · xᵀ)', async () => {
    const [M, K] = [37, 28];
    const x = values(M * K, 71);
    const tx = tensor(x, [M, K]);
    const c = matmul(tx, transpose(tx));
    seen.add(lastMatmulKernel);
    await check(c, dense(x, 1, M, K), { batch: 1, rows: K, cols: M, at: (_, k, j) => x[j * K + k] });
    for (const t of [tx, c]) t.dispose();
  });

  it('broadcast batch dims on both sides ([2,1,M,K] · [1,3,K,N])', async () => {
    const [M, K, N] = [9, 12, 14];
    const a = values(2 * M * K, 21);
    const b = values(3 * K * N, 22);
    const c = matmul(tensor(a, [2, 1, M, K]), tensor(b, [1, 3, K, N]));
    expect(c.shape).toEqual([2, 3, M, N]);
    const A: Mat = { batch: 6, rows: M, cols: K, at: (x, i, k) => a[(Math.floor(x / 3) * M + i) * K + k] };
    const B: Mat = { batch: 6, rows: K, cols: N, at: (x, k, j) => b[((x % 3) * K + k) * N + j] };
    await check(c, A, B);
    c.dispose();
  });

  it('expanded (stride-0) batch operand', async () => {
    const [M, K, N] = [8, 12, 16];
    const a = values(M * K, 31);
    const b = values(4 * K * N, 32);
    const ta = expand(tensor(a, [1, M, K]), [4, M, K]);
    const c = matmul(ta, tensor(b, [4, K, N]));
    seen.add(lastMatmulKernel);
    await check(c, dense(a, 1, M, K), dense(b, 4, K, N));
    c.dispose();
  });

  it('lazy inputs and a lazy consumer keep their order around the extra submit', async () => {
    const [M, K, N] = [36, 40, 44];
    const x = values(M * K, 41);
    const y = values(M * K, 42);
    const w = values(K * N, 43);
    const s = new Float32Array(M * K).map((_, i) => x[i] + y[i]);
    const c = mul(matmul(add(tensor(x, [M, K]), tensor(y, [M, K])), tensor(w, [K, N])), 2);
    await check(c, { batch: 1, rows: M, cols: K, at: (_, i, k) => 2 * s[i * K + k] }, dense(w, 1, K, N));
    c.dispose();
  });

  it('more than 65,535 matrices (batch chunking and dispatch splitting)', async () => {
    const batch = 65537;
    const a = values(batch * 2, 51);
    const b = values(batch * 2 * 3, 52);
    for (const strategy of ['tex', 'simple'] as const) {
      setMatmulStrategy(strategy);
      const c = matmul(tensor(a, [batch, 1, 2]), tensor(b, [batch, 2, 3]));
      seen.add(lastMatmulKernel);
      await check(c, dense(a, batch, 1, 2), dense(b, batch, 2, 3));
      c.dispose();
    }
    setMatmulStrategy('tex');
  });

  it('reshaped 3-D activations times a weight matrix (the transformer pattern)', async () => {
    const [Bt, T, C, D] = [2, 24, 32, 40];
    const x = values(Bt * T * C, 61);
    const w = values(C * D, 62);
    const c = matmul(reshape(tensor(x, [Bt * T, C]), [Bt, T, C]), tensor(w, [C, D]));
    expect(c.shape).toEqual([Bt, T, D]);
    await check(c, dense(x, Bt, T, C), dense(w, 1, C, D));
    c.dispose();
  });
});

describe('2-D products past the binding limit, in pieces', () => {
  // Each case exceeds a shrunken limit somewhere, where one kernel binding the whole buffer throws:
  // the product is split by rows of A and C, by the inner dimension, or by columns of B and C.
  const under = async (limit: number, run: () => Promise<void>) => {
    setBindingLimit(limit);
    try {
      await run();
    } finally {
      setBindingLimit(null);
    }
  };
  it('C larger than a binding: rows of A and C (64×16 · 16×64, 16 KiB of C under 8 KiB)', () => under(8192, () => plain(64, 16, 64)));
  it('a transposed A larger than a binding: the inner dimension (Aᵀ of x [256, 16])', () => under(8192, () => plain(16, 256, 8, { transA: true })));
  it('B larger than a binding: the inner dimension (256×32 B)', () => under(12 * 1024, () => plain(8, 256, 32)));
  it('a transposed B larger than a binding: columns of B and C (Bᵀ of w [256, 16])', () => under(12 * 1024, () => plain(8, 16, 256, { transB: true })));
  it('everything too big at once, transposed both ways (96×80 · 80×96 under 4 KiB)', () => under(4096, () => plain(96, 80, 96, { transA: true, transB: true })));
  it('a lazy A larger than a binding is computed piece by piece', async () => {
    const x = values(128 * 24, 5);
    const w = values(24 * 16, 6);
    const [tx, tw] = [tensor(x, [128, 24]), tensor(w, [24, 16])];
    await under(4096, async () => {
      const c = matmul(mul(add(tx, 1), 2), tw); // (x + 1)·2 is 12 KiB, never realised whole
      await check(c, { batch: 1, rows: 128, cols: 24, at: (_, i, k) => (x[i * 24 + k] + 1) * 2 }, dense(w, 1, 24, 16));
      c.dispose();
    });
    tx.dispose();
    tw.dispose();
  });
  it('random shapes, layouts and limits agree with the float64 product (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 96 }), fc.integer({ min: 1, max: 96 }), fc.integer({ min: 1, max: 96 }), fc.boolean(), fc.boolean(), fc.integer({ min: 2048, max: 24 * 1024 }), async (M, K, N, transA, transB, limit) => {
        await under(limit, () => plain(M, K, N, { transA, transB }));
      }),
      { numRuns: 25, seed: 7 },
    );
  });
});

describe('matmul kernel selection', () => {
  it('auto uses the simple kernel for tiny products and the tex kernel for big ones (when supported)', async () => {
    setMatmulStrategy('auto');
    await plain(4, 4, 4);
    expect(lastMatmulKernel).toBe('simple');
    await plain(192, 160, 128);
    const texCapable = ctx().eightLaneSubgroups;
    expect(lastMatmulKernel.startsWith('tex')).toBe(texCapable);
  });

  it('every kernel variant ran', () => {
    const texCapable = ctx().eightLaneSubgroups;
    const expected = ['simple'];
    // The tiled kernel, both block sizes, each operand walked along either dimension.
    for (const T of [4, 8]) for (const a of ['k', 'm']) expected.push(`tiled${T}(a:${a},b:n)`);
    expected.push('tiled4(a:k,b:k)', 'tiled4(a:m,b:k)');
    if (texCapable) for (const a of ['vec4', 'gather']) for (const b of ['vec4', 'gather']) expected.push(`tex(a:${a},b:${b})`, `tex(a:${a},b:${b};textureStore)`);
    for (const v of expected) expect(seen, `variant ${v}`).toContain(v);
  });
});
