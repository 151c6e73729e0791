"""PyTorch peer for bench/engine.ts: the same matmul shapes and elementwise ops, on the CPU (2 threads)
or, with "device": "cuda", on the GPU in float32 (TF32 off: PyTorch's default for matmuls).

Usage: python3 bench/torch_peer.py '<json spec>'   (spec: {"matmul": [[name, M, K, N, transA, transB], ...],
"elementwise_n": n, "seconds": s, "device": "cpu" | "cuda"}). Prints one JSON object on stdout.
"""
import json
import sys
import time

import torch

spec = json.loads(sys.argv[1])
torch.set_num_threads(2)
torch.manual_seed(0)
target = float(spec.get("seconds", 1.0))
dev = torch.device(spec.get("device", "cpu"))
torch.backends.cuda.matmul.allow_tf32 = False


def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timeit(fn, flops_or_bytes):
    fn()  # warm-up
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, int(target / 2 / once))
    dt = float("inf")
    for _ in range(2):  # best of two batches, as bench/engine.ts does for the engine
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        dt = min(dt, (time.perf_counter() - t0) / reps)
    return dt, flops_or_bytes / dt / 1e9


out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(dev), "matmul": [], "elementwise": []}
for name, M, K, N, ta, tb in spec["matmul"]:
    a = torch.randn(K, M, device=dev) if ta else torch.randn(M, K, device=dev)
    b = torch.randn(N, K, device=dev) if tb else torch.randn(K, N, device=dev)
    A = a.t() if ta else a
    B = b.t() if tb else b
    dt, g = timeit(lambda: torch.matmul(A, B), 2.0 * M * N * K)
    out["matmul"].append({"name": name, "M": M, "K": K, "N": N, "ms": dt * 1e3, "gflops": g})

n = spec["elementwise_n"]
x = torch.randn(n, device=dev)
y = torch.randn(n, device=dev)
dt, g = timeit(lambda: torch.add(x, y), 3.0 * 4 * n)
out["elementwise"].append({"name": "add", "n": n, "ms": dt * 1e3, "gbps": g})
dt, g = timeit(lambda: torch.relu(x * y + (x - y)) * 0.5, 3.0 * 4 * n)
out["elementwise"].append({"name": "chain5", "n": n, "ms": dt * 1e3, "gbps": g})
print(json.dumps(out))
