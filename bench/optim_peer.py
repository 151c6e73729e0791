#!/usr/bin/env python3
"""PyTorch CPU peer for bench/optim.ts: one optimizer step (torch.optim.SGD with momentum, Adam,
AdamW, and SophiaG's step written with the official code's in-place ops) over parameters of the
given shapes, gradients given. Best of `rounds`; prints JSON {name: ms per step}.
Development tool only (Debian python3-torch).

Usage: python3 bench/optim_peer.py '{"shapes": [[50257, 128], ...], "threads": 2, "rounds": 3}'
"""
import json
import sys
import time

import torch

spec = json.loads(sys.argv[1])
torch.set_num_threads(spec.get("threads", 2))
torch.manual_seed(0)
rounds = spec.get("rounds", 3)


def sophiag_step(params, state, lr=1e-4, b1=0.965, rho=0.04, bs=512, wd=0.1):
    # The authors' SophiaG update (official repo, _single_tensor_sophiag), h given.
    for p in params:
        m, h = state[p]
        m.mul_(b1).add_(p.grad, alpha=1 - b1)
        p.mul_(1 - lr * wd)
        ratio = (m.abs() / (rho * bs * h + 1e-15)).clamp(None, 1)
        p.addcmul_(m.sign(), ratio, value=-lr)


def make(name, params):
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
        return opt.step
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3).step
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3).step
    state = {p: (torch.zeros_like(p), torch.rand_like(p)) for p in params}
    return lambda: sophiag_step(params, state)


out = {"torch": torch.__version__}
names = ["sgd", "adam", "adamw", "sophiag"]
sets = {}
for name in names:
    params = [torch.nn.Parameter(torch.randn(*s) * 0.02) for s in spec["shapes"]]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-2
    sets[name] = make(name, params)
reps = 5
with torch.no_grad():
    for name in names:
        sets[name]()  # warm-up: state allocation
    best = {name: float("inf") for name in names}
    for _ in range(rounds):  # interleaved, as the engine's side
        for name in names:
            t0 = time.perf_counter()
            for _ in range(reps):
                sets[name]()
            best[name] = min(best[name], (time.perf_counter() - t0) / reps * 1e3)
out.update(best)
print(json.dumps(out))
