// Hugging Face GPT-2 model directories: config.json (GPT2Config fields) + model.safetensors with
// HF's tensor names. Conv1D weights are stored [in, out], exactly as our layers hold them.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ops from '../autograd/ops/index.ts';
import { GPT2, type GPT2Config } from './gpt2.ts';
import { readSafetensors, writeFileAtomic, writeSafetensors, type HostTensor } from './safetensors.ts';

/** Buffers old HF checkpoints carry that are not parameters (the causal mask, F32 or BOOL). */
const IGNORED = [/^h\.\d+\.attn\.(masked_)?bias$/];
const unprefixed = (name: string) => (name.startsWith('transformer.') ? name.slice('transformer.'.length) : name);

export function configFromHF(json: Record<string, unknown>, file = 'config.json'): GPT2Config {
  const need = (k: string): number => {
    const v = json[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${file}: field '${k}' is missing or not a number`);
    return v;
  };
  if (need('n_embd') % need('n_head') !== 0) throw new Error(`${file}: n_embd (${need('n_embd')}) must be a multiple of n_head (${need('n_head')})`);
  // GPT2Config options this model does not implement: refused rather than silently ignored.
  const unsupported = (k: string, ok: (v: unknown) => boolean, what: string) => {
    if (json[k] !== undefined && json[k] !== null && !ok(json[k])) throw new Error(`${file}: ${k} = ${JSON.stringify(json[k])} is not supported (this GPT-2 has ${what})`);
  };
  unsupported('activation_function', (v) => v === 'gelu_new' || v === 'gelu_pytorch_tanh', "GELU's tanh approximation, 'gelu_new'");
  unsupported('n_inner', (v) => v === 4 * need('n_embd'), `an MLP of 4·n_embd = ${4 * need('n_embd')}`);
  unsupported('scale_attn_weights', (v) => v === true, 'attention scores scaled by 1/√head_dim');
  unsupported('scale_attn_by_inverse_layer_idx', (v) => v === false, 'no per-layer score scaling');
  unsupported('tie_word_embeddings', (v) => v === true, 'the LM head tied to wte');
  return {
    nLayer: need('n_layer'),
    nHead: need('n_head'),
    nEmbd: need('n_embd'),
    nPositions: need('n_positions'),
    vocabSize: need('vocab_size'),
    layerNormEpsilon: typeof json.layer_norm_epsilon === 'number' ? json.layer_norm_epsilon : 1e-5,
    dropout: 0,
  };
}

export function configToHF(c: GPT2Config): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_embd: c.nEmbd,
    n_positions: c.nPositions,
    n_ctx: c.nPositions,
    vocab_size: c.vocabSize,
    layer_norm_epsilon: c.layerNormEpsilon,
    activation_function: 'gelu_new',
    resid_pdrop: c.dropout,
    embd_pdrop: c.dropout,
    attn_pdrop: c.dropout,
    tie_word_embeddings: true,
  };
}

/** Loads a GPT-2 from an HF-layout directory; every tensor is checked by name, dtype and shape. */
export function loadGPT2(dir: string): GPT2 {
  const cfgPath = join(dir, 'config.json');
  const stPath = join(dir, 'model.safetensors');
  for (const p of [cfgPath, stPath]) if (!existsSync(p)) throw new Error(`loadGPT2: ${p} not found (a model directory holds config.json and model.safetensors in Hugging Face's GPT-2 layout)`);
  const config = configFromHF(JSON.parse(readFileSync(cfgPath, 'utf8')), cfgPath);
  const { tensors } = readSafetensors(stPath, (name) => IGNORED.some((r) => r.test(unprefixed(name))));
  const model = new GPT2(config);
  const byName = new Map<string, HostTensor>();
  for (const [raw, t] of tensors) byName.set(unprefixed(raw), t);
  // The head is tied to wte: a checkpoint's own lm_head.weight must be that same table.
  const head = byName.get('lm_head.weight');
  if (head) {
    const wte = byName.get('wte.weight');
    if (!wte || head.shape.join() !== wte.shape.join() || head.data.some((x, i) => x !== wte.data[i])) {
      throw new Error(`loadGPT2: ${stPath} has an lm_head.weight that differs from wte.weight; this GPT-2 ties the LM head to the token embedding (an untied head is not supported)`);
    }
    byName.delete('lm_head.weight');
  }
  const expected = new Map(model.namedParameters());
  const extra = [...byName.keys()].filter((n) => !expected.has(n));
  if (extra.length) throw new Error(`loadGPT2: ${stPath} has tensors this GPT-2 config does not: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', ...' : ''}`);
  for (const [name, param] of expected) {
    const t = byName.get(name);
    if (!t) throw new Error(`loadGPT2: ${stPath} is missing tensor '${name}'`);
    if (t.dtype !== 'F32') throw new Error(`loadGPT2: tensor '${name}' has dtype ${t.dtype}; expected a float type`);
    if (t.shape.join() !== param.shape.join()) throw new Error(`loadGPT2: tensor '${name}' has shape [${t.shape}], expected [${param.shape}] for this config`);
    model.setParameter(name, ops.tensor(t.data as Float32Array, t.shape));
  }
  return model;
}

/** Reads every parameter back and writes an HF-layout directory (atomically, file by file). */
export async function saveGPT2(model: GPT2, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const out = new Map<string, HostTensor>();
  for (const [name, p] of model.namedParameters()) out.set(name, { dtype: 'F32', shape: [...p.shape], data: await p.toArray() });
  writeSafetensors(join(dir, 'model.safetensors'), out, { format: 'pt' });
  writeFileAtomic(join(dir, 'config.json'), JSON.stringify(configToHF(model.config), null, 2) + '\n');
}
