#!/usr/bin/env python3
"""Optimizer fixtures from PyTorch (run with Debian's python3-torch: /usr/bin/python3 scripts/optim_fixtures.py).

For each optimizer configuration: initial parameters, the gradients fed at each step, and the
parameters after each step, from torch.optim itself. Also learning-rate schedules, clip_grad_norm_,
and the official SophiaG update (its formula copied from the authors' code, see below).
"""
import json
import math
import os

import torch

torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), '..', 'test', 'fixtures', 'optim', 'fixtures.json')
SHAPES = [(3, 4), (5,)]
STEPS = 6


def tensors():
    params = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, dtype=torch.float64) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def run(cls, kwargs, late=0, skip=()):
    """`late`: the second parameter has no gradient (None) in the first `late` steps.
    `skip`: steps (from 0) whose gradients are non-finite (the test makes one NaN): as under
    torch.cuda.amp.GradScaler, optimizer.step() is not called then, so nothing changes and no
    step count advances."""
    params, grads = tensors()
    ps = [p.clone().requires_grad_() for p in params]
    opt = cls(ps, **kwargs)
    after = []
    for t, gs in enumerate(grads):
        for i, (p, g) in enumerate(zip(ps, gs)):
            p.grad = None if (i == 1 and t < late) else g.clone()
        if t not in skip:
            opt.step()
        after.append([p.detach().flatten().tolist() for p in ps])
    out = {'params': [p.flatten().tolist() for p in params], 'grads': [[g.flatten().tolist() for g in gs] for gs in grads], 'after': after}
    if skip:
        out['skip'] = list(skip)
    return out


def run_groups():
    """AdamW with two parameter groups: decay and lr ×1 for the matrix, no decay and lr ×0.5 for the vector."""
    params, grads = tensors()
    ps = [p.clone().requires_grad_() for p in params]
    opt = torch.optim.AdamW([{'params': [ps[0]], 'weight_decay': 0.1, 'lr': 0.02}, {'params': [ps[1]], 'weight_decay': 0.0, 'lr': 0.01}],
                            lr=0.02, betas=(0.9, 0.95))
    after = []
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
        after.append([p.detach().flatten().tolist() for p in ps])
    return {'params': [p.flatten().tolist() for p in params], 'grads': [[g.flatten().tolist() for g in gs] for gs in grads], 'after': after}


def sophiag_official(lr, betas, rho, wd, bs, k):
    """The authors' SophiaG: hessian EMA of g⊙g from sampled-label gradients every k steps;
    step: θ ← θ(1 − lr·wd); m ← β1 m + (1−β1) g; θ ← θ − lr·sign(m)·min(|m|/(ρ·bs·h + 1e-15), 1)."""
    params, grads = tensors()
    hgrads = [[torch.randn(s, dtype=torch.float64) * 0.3 for s in SHAPES] for _ in range(STEPS)]
    ps = [p.clone() for p in params]
    m = [torch.zeros_like(p) for p in ps]
    h = [torch.zeros_like(p) for p in ps]
    after = []
    for t in range(STEPS):
        if t % k == 0:  # refresh before steps 1, k+1, ... (paper Algorithm 3 line "if t mod k = 1")
            for i in range(len(ps)):
                h[i] = betas[1] * h[i] + (1 - betas[1]) * hgrads[t][i] * hgrads[t][i]
        for i in range(len(ps)):
            ps[i] = ps[i] * (1 - lr * wd)
            m[i] = betas[0] * m[i] + (1 - betas[0]) * grads[t][i]
            ratio = (m[i].abs() / (rho * bs * h[i] + 1e-15)).clamp(None, 1)
            ps[i] = ps[i] - lr * m[i].sign() * ratio
        after.append([p.flatten().tolist() for p in ps])
    return {'params': [p.flatten().tolist() for p in params], 'grads': [[g.flatten().tolist() for g in gs] for gs in grads],
            'hessianGrads': [[g.flatten().tolist() for g in gs] for gs in hgrads], 'after': after,
            'options': {'lr': lr, 'betas': betas, 'rho': rho, 'weightDecay': wd, 'batchTokens': bs, 'hessianEvery': k}}


def schedules():
    out = {}
    p = [torch.zeros(1, requires_grad=True)]
    for name, (t0, tmult, eta_min) in {'restarts_1': (5, 1, 0.01), 'restarts_2': (3, 2, 0.0)}.items():
        opt = torch.optim.SGD(p, lr=0.1)
        sch = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=tmult, eta_min=eta_min)
        lrs = []
        for _ in range(40):
            lrs.append(opt.param_groups[0]['lr'])
            opt.step()
            sch.step()
        out[name] = {'lr': 0.1, 't0': t0, 'tMult': tmult, 'minLr': eta_min, 'lrs': lrs}
    # Linear warm-up (from lr/W to lr over W steps) then cosine decay to a minimum over T steps:
    # SequentialLR(LinearLR(1/W, total_iters=W-1), CosineAnnealingLR(T, eta_min), milestones=[W]).
    for name, (w, t, eta_min) in {'warmup_cosine': (5, 20, 0.001)}.items():
        opt = torch.optim.SGD(p, lr=0.1)
        sch = torch.optim.lr_scheduler.SequentialLR(opt, [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / w, end_factor=1.0, total_iters=w - 1),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t, eta_min=eta_min)], milestones=[w])
        lrs = []
        for _ in range(w + t):
            lrs.append(opt.param_groups[0]['lr'])
            opt.step()
            sch.step()
        out[name] = {'lr': 0.1, 'warmup': w, 'total': t, 'minLr': eta_min, 'lrs': lrs}
    return out


def clipping():
    cases = []
    for max_norm in [0.5, 1.0, 100.0]:
        gs = [torch.randn(s, dtype=torch.float64) for s in SHAPES]
        ps = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        norm = torch.nn.utils.clip_grad_norm_(ps, max_norm)
        cases.append({'maxNorm': max_norm, 'grads': [g.flatten().tolist() for g in gs], 'norm': norm.item(),
                      'clipped': [p.grad.flatten().tolist() for p in ps]})
    return cases


def main():
    fx = {
        'shapes': SHAPES,
        'sgd': run(torch.optim.SGD, dict(lr=0.1)),
        'sgd_momentum_wd': run(torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
        'sgd_nesterov': run(torch.optim.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02)),
        'adam': run(torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)),
        'adam_amsgrad': run(torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True)),
        'adamw': run(torch.optim.AdamW, dict(lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)),
        'adamw_amsgrad': run(torch.optim.AdamW, dict(lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.05, amsgrad=True)),
        'sgd_dampening': run(torch.optim.SGD, dict(lr=0.1, momentum=0.5, dampening=0.5)),
        'adamw_groups': run_groups(),
        # The second parameter has no gradient in steps 1-2: its bias correction and momentum
        # initialisation follow its own step count, as torch's per-parameter state['step'].
        'adam_late': run(torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.99)), late=2),
        'sgd_late': run(torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3), late=2),
        'sophiag': sophiag_official(lr=0.02, betas=(0.965, 0.99), rho=0.04, wd=0.1, bs=16, k=3),
        'schedules': schedules(),
        'clip': clipping(),
        # Non-finite gradients in the steps listed in 'skip' (GradScaler skips optimizer.step()):
        # bias corrections and SGD's first-step buffer follow the count of steps actually taken.
        # (Last, so the cases above keep their random draws.)
        'adam_skip': run(torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.01), skip=(1,)),
        'adamw_amsgrad_skip': run(torch.optim.AdamW, dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.1, amsgrad=True), skip=(0, 3)),
        'adam_late_skip': run(torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.99)), late=2, skip=(3,)),
        'sgd_skip': run(torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3), skip=(0, 2)),
    }
    with open(OUT, 'w') as f:
        json.dump(fx, f)
    print('wrote', OUT)


if __name__ == '__main__':
    main()
