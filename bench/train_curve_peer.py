#!/usr/bin/env python3
"""PyTorch peer for bench/train_curve.ts: trains the same GPT-2 from the same initial weights on the
same batches with torch.optim.AdamW (the same parameter groups, learning rates and gradient
clipping), in float32 on the CPU, and prints JSON with the per-step losses and tokens/s.
The model is scripts/gpt2_fixture.py's functional GPT-2 (written independently of the engine).
Development tool only (Debian python3-torch)."""
import json
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', 'scripts'))
import gpt2_fixture as G  # noqa: E402

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec.get('threads', 2))


def read_safetensors(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == '__metadata__':
            continue
        a, b = h['data_offsets']
        assert h['dtype'] == 'F32', f'{name}: {h["dtype"]}'
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype='<f4').copy().reshape(h['shape']))
    return out


cfg = json.load(open(os.path.join(spec['model'], 'config.json')))
for k in ('n_layer', 'n_head', 'n_embd', 'n_positions', 'vocab_size', 'layer_norm_epsilon'):
    G.CFG[k] = cfg[k]
# 'float64' gives the reference both float32 runs are measured against.
dtype = torch.float64 if spec.get('dtype') == 'float64' else torch.float32
params = {n: t.to(dtype).requires_grad_() for n, t in read_safetensors(os.path.join(spec['model'], 'model.safetensors')).items()}
B, T, steps = spec['batch'], spec['context'], spec['steps']
tokens = np.fromfile(spec['batches'], dtype='<i4').reshape(steps, 2, B, T)
decay = [params[n] for n in spec['decay']]
rest = [params[n] for n in params if n not in set(spec['decay'])]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': spec['weightDecay']}, {'params': rest, 'weight_decay': 0.0}],
                        lr=spec['lrs'][0], betas=tuple(spec['betas']), eps=1e-8)
losses, t0 = [], None
for i in range(steps):
    if i == spec['warm']:
        t0 = time.perf_counter()
    for g in opt.param_groups:
        g['lr'] = spec['lrs'][i]
    ids = torch.from_numpy(tokens[i, 0]).long()
    tg = torch.from_numpy(tokens[i, 1]).long()
    loss, _ = G.loss_fn(params, ids, tg)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(params.values()), spec['gradClip'])
    opt.step()
    losses.append(loss.item())
seconds = time.perf_counter() - t0
print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'losses': losses,
                  'tokensPerS': (steps - spec['warm']) * B * T / seconds}))
