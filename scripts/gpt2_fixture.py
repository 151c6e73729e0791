#!/usr/bin/env python3
"""Writes the GPT-2 reference fixture the engine is tested against (like llm.c's test_gpt2).

A small GPT-2 is built here in PyTorch, independently of the TypeScript code, in float64. The
fixture holds its weights (as a Hugging Face model directory), a batch of tokens, the logits, the
loss, every parameter's gradient, a Hessian-vector product for a random vector, and the
parameters after three AdamW steps.

Run with Debian's PyTorch:  /usr/bin/python3 scripts/gpt2_fixture.py
(a development tool only; the package never needs Python).
"""
import json
import math
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'gpt2')
CFG = dict(n_layer=2, n_head=2, n_embd=32, n_positions=16, vocab_size=101, layer_norm_epsilon=1e-5)
B, T = 2, 8
torch.manual_seed(1234)
DT = torch.float64


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, CFG['layer_norm_epsilon'])


def param_names():
    names = ['wte.weight', 'wpe.weight']
    for i in range(CFG['n_layer']):
        for part in ['ln_1.weight', 'ln_1.bias', 'attn.c_attn.weight', 'attn.c_attn.bias', 'attn.c_proj.weight',
                     'attn.c_proj.bias', 'ln_2.weight', 'ln_2.bias', 'mlp.c_fc.weight', 'mlp.c_fc.bias',
                     'mlp.c_proj.weight', 'mlp.c_proj.bias']:
            names.append(f'h.{i}.{part}')
    return names + ['ln_f.weight', 'ln_f.bias']


def init_params():
    C, V, P = CFG['n_embd'], CFG['vocab_size'], CFG['n_positions']
    shapes = {'wte.weight': (V, C), 'wpe.weight': (P, C), 'ln_f.weight': (C,), 'ln_f.bias': (C,)}
    for i in range(CFG['n_layer']):
        h = f'h.{i}.'
        shapes.update({h + 'ln_1.weight': (C,), h + 'ln_1.bias': (C,), h + 'ln_2.weight': (C,), h + 'ln_2.bias': (C,),
                       h + 'attn.c_attn.weight': (C, 3 * C), h + 'attn.c_attn.bias': (3 * C,),
                       h + 'attn.c_proj.weight': (C, C), h + 'attn.c_proj.bias': (C,),
                       h + 'mlp.c_fc.weight': (C, 4 * C), h + 'mlp.c_fc.bias': (4 * C,),
                       h + 'mlp.c_proj.weight': (4 * C, C), h + 'mlp.c_proj.bias': (C,)})
    params = {}
    for n in param_names():
        s = shapes[n]
        if n.endswith('ln_1.weight') or n.endswith('ln_2.weight') or n == 'ln_f.weight':
            t = 1 + 0.1 * torch.randn(s, dtype=DT)  # not all-ones: a wrong LayerNorm-weight gradient must show
        elif n.endswith('bias'):
            t = 0.05 * torch.randn(s, dtype=DT)
        else:
            t = 0.15 * torch.randn(s, dtype=DT)  # larger than GPT-2's 0.02 so every layer shapes the output
        params[n] = t.requires_grad_()
    return params


def forward(p, ids):
    C, H = CFG['n_embd'], CFG['n_head']
    D = C // H
    Bn, Tn = ids.shape
    x = p['wte.weight'][ids] + p['wpe.weight'][:Tn]
    mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for i in range(CFG['n_layer']):
        h = f'h.{i}.'
        a = layer_norm(x, p[h + 'ln_1.weight'], p[h + 'ln_1.bias'])
        qkv = a @ p[h + 'attn.c_attn.weight'] + p[h + 'attn.c_attn.bias']
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = [t.view(Bn, Tn, H, D).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
        att = att.masked_fill(~mask, float('-inf')).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
        x = x + y @ p[h + 'attn.c_proj.weight'] + p[h + 'attn.c_proj.bias']
        m = layer_norm(x, p[h + 'ln_2.weight'], p[h + 'ln_2.bias'])
        m = gelu_new(m @ p[h + 'mlp.c_fc.weight'] + p[h + 'mlp.c_fc.bias'])
        x = x + m @ p[h + 'mlp.c_proj.weight'] + p[h + 'mlp.c_proj.bias']
    x = layer_norm(x, p['ln_f.weight'], p['ln_f.bias'])
    return x @ p['wte.weight'].T


def loss_fn(p, ids, targets):
    logits = forward(p, ids)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100), logits


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype == torch.int32:
            dtype, data = 'I32', t.contiguous().numpy().astype('<i4').tobytes()
        else:
            dtype, data = 'F32', t.detach().to(torch.float32).contiguous().numpy().astype('<f4').tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    params = init_params()
    names = param_names()
    ids = torch.randint(0, CFG['vocab_size'], (B, T))
    targets = torch.randint(0, CFG['vocab_size'], (B, T))
    targets[1, 3] = -100  # one ignored position

    loss, logits = loss_fn(params, ids, targets)
    grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True)
    vec = {n: torch.randn(params[n].shape, dtype=DT) for n in names}
    dot = sum((g * vec[n]).sum() for g, n in zip(grads, names))
    hvp = torch.autograd.grad(dot, [params[n] for n in names])

    # Three AdamW steps on the same batch (torch.optim.AdamW defaults but for lr/betas/decay).
    trained = {n: params[n].detach().clone().requires_grad_() for n in names}
    opt = torch.optim.AdamW([trained[n] for n in names], lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        l, _ = loss_fn(trained, ids, targets)
        l.backward()
        opt.step()

    model_dir = os.path.join(OUT, 'model')
    os.makedirs(model_dir, exist_ok=True)
    write_safetensors(os.path.join(model_dir, 'model.safetensors'), {n: params[n] for n in names})
    hf = dict(CFG, model_type='gpt2', architectures=['GPT2LMHeadModel'], n_ctx=CFG['n_positions'],
              activation_function='gelu_new', tie_word_embeddings=True)
    with open(os.path.join(model_dir, 'config.json'), 'w') as f:
        json.dump(hf, f, indent=2)
        f.write('\n')
    with open(os.path.join(OUT, 'tokens.json'), 'w') as f:
        json.dump({'inputs': ids.tolist(), 'targets': targets.tolist()}, f)
        f.write('\n')
    ref = {'inputs': ids.to(torch.int32), 'targets': targets.to(torch.int32), 'logits': logits, 'loss': loss.reshape(())}
    for n, g, h in zip(names, grads, hvp):
        ref['grad.' + n] = g
        ref['hvp.' + n] = h
        ref['adamw.' + n] = trained[n]
    write_safetensors(os.path.join(OUT, 'hvp_vector.safetensors'), vec)
    write_safetensors(os.path.join(OUT, 'reference.safetensors'), ref)
    print(f'loss {loss.item():.6f}; wrote {OUT}')


if __name__ == '__main__':
    main()
