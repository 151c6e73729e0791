// The inspection command end to end: its output file agrees with the PyTorch fixture.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as E from '../../src/index.ts';
import { functionalCall, loadGPT2 } from '../../src/nn/index.ts';
import { readSafetensors, writeSafetensors } from '../../src/nn/safetensors.ts';
import * as O from '../../src/optim/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const fx = join(root, 'test/fixtures/gpt2/');

/** Runs the inspection command on the fixture's model and batch with `extra` flags; returns what it wrote. */
function inspect(extra: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'inspect-')), 'out.safetensors');
  execFileSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-inspect.ts', '--model', fx + 'model', '--tokens', fx + 'tokens.json', '--out', out, ...extra], {
    cwd: root,
    stdio: 'pipe',
  });
  return readSafetensors(out).tensors;
}

/** Runs the command on the fixture with `extra` flags to a fresh output path; returns exit status, output and whether the file was written. */
function runFixture(extra: string[]) {
  const out = join(mkdtempSync(join(tmpdir(), 'inspect-')), 'out.safetensors');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-inspect.ts', '--model', fx + 'model', '--tokens', fx + 'tokens.json', '--out', out, ...extra], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, wrote: existsSync(out) };
}

describe('examples/gpt2-inspect.ts', () => {
  it('writes logits, loss, gradients and HVPs that match PyTorch', () => {
    const got = inspect(['--hvp-vector', fx + 'hvp_vector.safetensors']);
    const ref = readSafetensors(fx + 'reference.safetensors').tensors;
    expectClose(got.get('logits')!.data, ref.get('logits')!.data, 1e-5, 1e-5, 'logits');
    expectClose(got.get('loss')!.data, ref.get('loss')!.data, 1e-5, 0, 'loss');
    const names = [...ref.keys()].filter((k) => k.startsWith('grad.') || k.startsWith('hvp.'));
    expect(names.length).toBe(56);
    for (const n of names) {
      const scale = Math.max(...Array.from(ref.get(n)!.data, Math.abs));
      expectClose(got.get(n)!.data, ref.get(n)!.data, 0, 1e-4 * scale, n);
    }
  });
  it('--steps with an optimizer writes parameters and state; --hessian-diag writes non-negative GNB estimates', () => {
    const got = inspect(['--steps', '2', '--optimizer', 'sophia-g', '--lr', '0.01', '--weight-decay', '0', '--hess-every', '1', '--hessian-diag', 'gnb', '--samples', '2', '--seed', '5']);
    const ref = readSafetensors(fx + 'reference.safetensors').tensors;
    const names = [...ref.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    for (const n of names) {
      expect(got.get(`param.${n}`)!.shape).toEqual(ref.get(`grad.${n}`)!.shape);
      for (const key of ['m', 'h']) expect(got.has(`state.${n}.${key}`), `state.${n}.${key}`).toBe(true);
      expect(Array.from(got.get(`hdiag.${n}`)!.data).every((v) => v >= 0)).toBe(true);
      // Two Sophia steps move every coordinate by at most 2·lr beyond weight decay (none here).
      const p0 = readSafetensors(fx + 'model/model.safetensors').tensors.get(n)!.data;
      expect(Array.from(got.get(`param.${n}`)!.data).every((v, i) => Math.abs(v - p0[i]) <= 0.02 * (1 + 1e-5))).toBe(true);
    }
  });
  it('--steps 3 --optimizer adamw writes the parameters torch.optim.AdamW reaches (the fixture)', () => {
    const got = inspect(['--steps', '3', '--optimizer', 'adamw', '--lr', '1e-2', '--beta1', '0.9', '--beta2', '0.95', '--eps', '1e-8', '--weight-decay', '0.1']);
    const ref = readSafetensors(fx + 'reference.safetensors').tensors;
    const initial = readSafetensors(fx + 'model/model.safetensors').tensors;
    const names = [...ref.keys()].filter((k) => k.startsWith('adamw.')).map((k) => k.slice(6));
    expect(names.length).toBe(28);
    for (const n of names) {
      const [p, want, g, p0] = [got.get(`param.${n}`)!.data, ref.get(`adamw.${n}`)!.data, ref.get(`grad.${n}`)!.data, initial.get(n)!.data];
      const scale = Math.max(...Array.from(want, Math.abs));
      const gScale = Math.max(...Array.from(g, Math.abs));
      for (let i = 0; i < p.length; i++) {
        // As in gpt2-pytorch.test.ts: where the true gradient is zero, f32 noise makes Adam step; only |Δθ| ≤ 3·lr holds.
        if (Math.abs(g[i]) > 1e-7 * gScale) expect(Math.abs(p[i] - want[i]), `param.${n}[${i}]`).toBeLessThanOrEqual(1e-4 * scale);
        else expect(Math.abs(p[i] - p0[i]), `param.${n}[${i}] (zero gradient)`).toBeLessThanOrEqual(3 * 1e-2 * (1 + 1e-3) + 3 * 1e-3 * Math.abs(p0[i]));
      }
      for (const key of ['m', 'v']) expect(got.has(`state.${n}.${key}`), `state.${n}.${key}`).toBe(true);
    }
  });
  it('every optimizer and estimator option reaches the library: the command equals the same steps run in-process', async () => {
    await E.init();
    const tokens = JSON.parse(readFileSync(fx + 'tokens.json', 'utf8')) as { inputs: number[][]; targets: number[][] };
    const [B, T] = [tokens.inputs.length, tokens.inputs[0].length];
    /** The command's steps (and Hessian-diagonal estimates) replayed with the library on the fixture. */
    const replay = async (make: (named: O.NamedParam[]) => O.Optimizer, steps: number, seed: number, opts: { probe?: O.Probe; diagSamples?: number } = {}) => {
      const model = loadGPT2(fx + 'model');
      const inputs = E.tensor(new Int32Array(tokens.inputs.flat()), [B, T], 'i32');
      const targets = E.tensor(new Int32Array(tokens.targets.flat()), [B, T], 'i32');
      const named = model.namedParameters().map(([name, param]) => ({ name, param }));
      const loss = (...ps: E.Tensor[]) => functionalCall(model, ps, () => model.loss(inputs, targets));
      const out = new Map<string, Float32Array>();
      if (opts.diagSamples) {
        const gen = new E.Generator(seed);
        const sum = new Map<string, E.Tensor>();
        for (let s = 0; s < opts.diagSamples; s++) for (const [n, t] of O.hutchinsonEstimate(loss, named, gen, opts.probe)) sum.set(n, E.keep(sum.has(n) ? E.add(sum.get(n)!, t).realize() : t));
        for (const [n, t] of sum) out.set(`hdiag.${n}`, await E.mul(t, 1 / opts.diagSamples).toArray());
      }
      const opt = make(named);
      const gen = new E.Generator(seed);
      for (let s = 0; s < steps; s++) {
        if (opt instanceof O.Sophia && opt.wantsHessian()) opt.updateHessian(O.hutchinsonEstimate(loss, named, gen, opts.probe), B * T);
        E.tidy(() => model.loss(inputs, targets).backward());
        opt.step();
        opt.zeroGrad();
      }
      for (const { name, param } of named) out.set(`param.${name}`, await param.toArray());
      for (const [k, t] of opt.stateDict().tensors) if (k.startsWith('state.')) out.set(k, await t.toArray());
      model.dispose();
      return out;
    };
    const same = (got: Map<string, { data: ArrayLike<number> }>, want: Map<string, Float32Array>) => {
      for (const [k, w] of want) expectClose(got.get(k)!.data, w, 1e-6, 1e-7, k);
      return [...want.keys()];
    };
    const sgd = inspect(['--steps', '2', '--optimizer', 'sgd', '--lr', '0.05', '--momentum', '0.9', '--nesterov', '--weight-decay', '0.01', '--hessian-diag', 'hutchinson', '--probe', 'gaussian', '--samples', '2', '--seed', '3']);
    const sgdKeys = same(sgd, await replay((n) => new O.SGD(n, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 }), 2, 3, { probe: 'gaussian', diagSamples: 2 }));
    expect(sgdKeys.some((k) => k.startsWith('hdiag.'))).toBe(true);
    // Without --weight-decay, AdamW keeps its own default (torch's 0.01), not 0.
    const adam = inspect(['--steps', '2', '--optimizer', 'adamw', '--lr', '0.01', '--amsgrad']);
    expect(same(adam, await replay((n) => new O.AdamW(n, { lr: 0.01, amsgrad: true }), 2, 0)).some((k) => k.endsWith('.vmax'))).toBe(true);
    const sophia = inspect(['--steps', '2', '--optimizer', 'sophia-h', '--lr', '0.01', '--hess-every', '1', '--probe', 'gaussian', '--clip-threshold', '0.5', '--bias-correct-h', '--gamma', '0.02', '--seed', '4']);
    same(sophia, await replay((n) => new O.Sophia(n, { lr: 0.01, form: 'paper', hessianEvery: 1, clipThreshold: 0.5, biasCorrection: true, gamma: 0.02 }), 2, 4, { probe: 'gaussian' }));
  }, 180_000);
  it('rejects unknown flags and malformed token files with a clear message', () => {
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-inspect.ts', ...args], { cwd: root, stdio: 'pipe' });
        return '';
      } catch (e) {
        return String((e as { stderr: Buffer }).stderr);
      }
    };
    expect(run(['--modle', 'x'])).toMatch(/Unknown option '--modle'[\s\S]*usage:/);
    expect(run(['--model', fx + 'model', '--tokens', fx + 'tokens.json', '--out', '/tmp/x.safetensors', '--optimizer', 'adam'])).toMatch(/--steps N and --optimizer .* go together/);
    expect(run(['--model', fx + 'model', '--tokens', fx + 'tokens.json', '--out', '/tmp/x.safetensors', '--hessian-diag', 'hutchinson', '--probe', 'uniform'])).toMatch(/--probe must be rademacher or gaussian; got 'uniform'/);
    expect(run(['--model', fx + 'model', '--tokens', fx + 'model/config.json', '--out', '/tmp/x.safetensors'])).toMatch(/expected \{"inputs"/);
  });
  it('--steps and --samples must be positive integers: the flag, the value and what is allowed are named, and nothing is written', () => {
    // --samples 1.5 used to divide the summed estimates by 1.5, --samples 0 wrote no hdiag at all,
    // --steps 2.5 ran 3 steps; --steps 0 would write the loaded weights as if stepped.
    for (const [flag, v] of [['--samples', '1.5'], ['--samples', '0'], ['--samples=-2', ''], ['--steps', '2.5'], ['--steps', '0'], ['--steps=-1', '']]) {
      const opt = flag.startsWith('--steps') ? ['--optimizer', 'sgd'] : ['--hessian-diag', 'gnb'];
      const r = runFixture([...(v ? [flag, v] : [flag]), ...opt]);
      const [name, value] = v ? [flag, v] : flag.split('=');
      expect(r.status, `${flag} ${v}`).toBe(2);
      expect(r.stderr).toContain(`${name} must be a positive integer (1, 2, ...), got '${value}'`);
      expect(r.wrote).toBe(false);
    }
    // The rule is in --help too.
    expect(spawnSync(process.execPath, ['--import', 'tsx', 'examples/gpt2-inspect.ts', '--help'], { cwd: root, encoding: 'utf8' }).stdout).toMatch(/--steps N and --samples S are positive integers/);
  });
  it('an --hvp-vector file missing a parameter or holding a wrong shape is refused, naming the file and the tensor', () => {
    // A vector that silently lacked a tensor (or had a transposed one) would give a wrong HVP, not an error.
    const vec = readSafetensors(fx + 'hvp_vector.safetensors').tensors;
    const dir = mkdtempSync(join(tmpdir(), 'inspect-vec-'));
    const missing = new Map(vec);
    missing.delete('h.1.mlp.c_fc.bias');
    writeSafetensors(join(dir, 'missing.safetensors'), missing);
    const r1 = runFixture(['--hvp-vector', join(dir, 'missing.safetensors')]);
    expect(r1.status).not.toBe(0);
    expect(r1.stderr).toMatch(/missing\.safetensors: missing vector for parameter 'h\.1\.mlp\.c_fc\.bias'/);
    const wrong = new Map(vec);
    wrong.set('ln_f.weight', { dtype: 'F32', shape: [4, 8], data: new Float32Array(32) });
    writeSafetensors(join(dir, 'wrong.safetensors'), wrong);
    const r2 = runFixture(['--hvp-vector', join(dir, 'wrong.safetensors')]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/wrong\.safetensors: 'ln_f\.weight' has shape \[4,8\], the parameter \[32\]/);
    expect(r1.wrote || r2.wrote).toBe(false);
  });
  it("prints finite statistics for every layer's activations and every gradient, the gradients' agreeing with the fixture", () => {
    // The printed table is what a user reads first; it must name each layer and show its real numbers.
    const r = runFixture([]);
    expect(r.status, r.stderr).toBe(0);
    const num = String.raw`(-?\d\.\d{3}e[+-]\d+)`;
    const row = new RegExp(String.raw`^  (\S+)\s+mean\s+${num}  std ${num}  max\|x\| ${num}$`);
    const section = (title: string) => {
      const lines = r.stdout.split('\n');
      const from = lines.indexOf(title) + 1;
      const rows = new Map<string, number[]>();
      for (let i = from; i < lines.length && lines[i] !== ''; i++) {
        const m = row.exec(lines[i]);
        expect(m, lines[i]).not.toBeNull();
        rows.set(m![1], m!.slice(2).map(Number));
      }
      return rows;
    };
    const acts = section('activations');
    expect([...acts.keys()]).toEqual(['embeddings', 'h.0', 'h.1', 'ln_f']);
    for (const [name, [mean, std, max]] of acts) {
      expect([mean, std, max].every(Number.isFinite), name).toBe(true);
      expect(std > 0 && max >= Math.abs(mean), name).toBe(true);
    }
    const ref = readSafetensors(fx + 'reference.safetensors').tensors;
    const grads = section('gradients');
    expect(grads.size).toBe(28);
    for (const [name, [, std, max]] of grads) {
      const g = Array.from(ref.get(`grad.${name}`)!.data);
      const mean = g.reduce((a, b) => a + b, 0) / g.length;
      const refStd = Math.sqrt(g.reduce((a, b) => a + (b - mean) ** 2, 0) / g.length);
      // Four significant digits are printed; the values agree to f32 and rounding.
      expect(Math.abs(std - refStd), `${name} std`).toBeLessThanOrEqual(2e-3 * refStd);
      expect(Math.abs(max - Math.max(...g.map(Math.abs))), `${name} max|x|`).toBeLessThanOrEqual(2e-3 * max);
    }
  });
});
