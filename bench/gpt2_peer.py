#!/usr/bin/env python3
"""PyTorch peer for bench/gpt2.ts: the same GPT-2 (nanoGPT-style, GPT-2 init, tied head) trained
with AdamW on random tokens; prints JSON with tokens/s. Development tool only (Debian python3-torch)."""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec.get('threads', 2))
# 'cpu' here; 'cuda' on a lent GPU (then every timing synchronises, and peak memory is reported).
dev = torch.device(spec.get('device', 'cpu'))
sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
torch.manual_seed(0)
L, H, C, V, T, B = spec['nLayer'], spec['nHead'], spec['nEmbd'], spec['vocab'], spec['context'], spec['batch']


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x):
        Bn, Tn, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(Bn, Tn, H, C // H).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(torch.ones(Tn, Tn, dtype=torch.bool, device=x.device).tril().logical_not(), float('-inf')).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(Bn, Tn, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate='tanh'))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for b in self.h:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.T
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


model = GPT().to(dev)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
idx = torch.randint(0, V, (B, T), device=dev)
tg = torch.randint(0, V, (B, T), device=dev)


def step():
    opt.zero_grad(set_to_none=True)
    model(idx, tg).backward()
    opt.step()


for _ in range(2):
    step()
n = spec.get('steps', 5)
sync()
if dev.type == 'cuda':
    torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(n):
    step()
sync()
dt = (time.perf_counter() - t0) / n
peak = torch.cuda.max_memory_allocated() if dev.type == 'cuda' else None
if spec.get('stepOnly'):
    print(json.dumps({'msPerStep': dt * 1000, 'tokensPerS': B * T / dt, 'torch': torch.__version__, 'device': str(dev), 'peakBytes': peak}))
    sys.exit(0)

# Gradient vs exact HVP (double backward: grad with create_graph, then grad of Σ g·v) vs jvp
# (torch.autograd.functional.jvp, itself a double VJP), interleaved like bench/gpt2.ts.
params = list(model.parameters())
probe = [torch.randn_like(p) for p in params]


def grad():
    torch.autograd.grad(model(idx, tg), params)


def hvp():
    g = torch.autograd.grad(model(idx, tg), params, create_graph=True)
    torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, probe)), params)


def jvp():
    # d/ds loss(θ + s·v) at s = 0, by the same double-VJP trick torch.autograd.functional.jvp uses
    loss = model(idx, tg)
    u = torch.zeros_like(loss, requires_grad=True)
    g = torch.autograd.grad(loss, params, grad_outputs=u, create_graph=True)
    torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, probe)), u)


def timed(fn):
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return (time.perf_counter() - t) * 1000


rounds = {'grad': [], 'hvp': [], 'jvp': []}
for fn in (grad, hvp, jvp):
    fn()
for _ in range(4):
    for name, fn in (('grad', grad), ('hvp', hvp), ('jvp', jvp)):
        rounds[name].append(timed(fn))


def median(xs):
    return sorted(xs)[len(xs) // 2]


print(json.dumps({'msPerStep': dt * 1000, 'tokensPerS': B * T / dt, 'torch': torch.__version__, 'device': str(dev), 'peakBytes': peak,
                  'gradMs': median(rounds['grad']), 'hvpMs': median(rounds['hvp']), 'jvpMs': median(rounds['jvp']),
                  'hvpRatio': median([h / g for h, g in zip(rounds['hvp'], rounds['grad'])]),
                  'jvpRatio': median([j / g for j, g in zip(rounds['jvp'], rounds['grad'])])}))
