#!/usr/bin/env bash
# The prepared run for a lent GPU machine (no Node there: the bundle from scripts/gpu-pack.sh),
# in order of what matters most:
#   env     the GPU (nvidia-smi) and the adapter Dawn opens (doctor)
#   tests   the tests that exercise the GPU kernels (the tiled matmul and attention kernels a CPU
#           adapter never picks on its own) and the PyTorch fixtures, on the GPU adapter
#   gpt2    GPT-2 124M's f32 training step at B=8, T=1024 next to PyTorch eager on CUDA
#   engine  matmul GFLOP/s and elementwise GB/s next to PyTorch on CUDA
#   tiny    GPT-2 tiny: step, HVP/gradient, jvp and Sophia-G/AdamW on the GPU, PyTorch CUDA beside
#   job     the main job's default run (examples/gpt2-wikitext.ts), its results table
# Each step has a time limit, and no step starts past a deadline (GPU_SESSION_SECONDS, default
# 540), so the run fits a 10-minute device call. Everything lands in $OUT (or ./gpu-out):
# summary.txt (also printed) and gpu-session.tgz (every log, the benches' JSON, the job's table).
# From this machine:
#   bash scripts/gpu-pack.sh                                  # once, ≈ 2 min
#   device run: carry [".gpu"], timeout_s 600, command "bash scripts/gpu-session.sh"
# GPU_SESSION_STEPS runs some steps only (e.g. "env gpt2"); STEP_LIMIT_<step> sets a step's seconds.
set -uo pipefail
export NO_COLOR=1
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
work=$(mktemp -d /tmp/gpu-session.XXXX)
mkdir -p "$out"
steps=${GPU_SESSION_STEPS:-env tests gpt2 engine tiny job}
deadline=${GPU_SESSION_SECONDS:-540}
summary="$work/summary.txt"
{
  date -u
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv 2>&1; else echo 'nvidia-smi: not found'; fi
} >"$summary"

# step NAME SECONDS COMMAND...: COMMAND through gpu-run.sh (adapter set-up), logged to NAME.log.
step() {
  local name=$1 limit=$2
  shift 2
  case " $steps " in *" $name "*) ;; *) return 0 ;; esac
  local var="STEP_LIMIT_$name"
  limit=${!var:-$limit}
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 20 ]; then
    echo "$name: skipped, ${left} s left before the ${deadline} s deadline" | tee -a "$summary"
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" bash scripts/gpu-run.sh "$@" >"$work/$name.log" 2>&1
  local rc=$?
  local how="exit $rc"
  { [ $rc -eq 124 ] || [ $rc -eq 137 ]; } && how="stopped at its ${limit} s limit"
  echo "$name: $how after $((SECONDS - t0)) s" | tee -a "$summary"
}

step env 60 node --import tsx examples/doctor.ts
[ -f node_modules/vitest/vitest.mjs ] || echo 'note: this bundle has no vitest (packed before gpu-pack.sh included it): delete .gpu/node_modules.tar.xz and run gpu-pack.sh again' | tee -a "$summary"
step tests 150 node node_modules/vitest/vitest.mjs run test/tensor test/autograd test/nn/gpt2-pytorch.test.ts test/nn/pieces.test.ts test/optim/pytorch.test.ts
step gpt2 180 node --import tsx bench/gpt2.ts gpt2 8 1024 --step-only --peer-device=cuda
step engine 90 node --import tsx bench/engine.ts --quick --peer-device=cuda
step tiny 90 node --import tsx bench/gpt2.ts tiny 8 64 --peer-device=cuda
step job 150 node --import tsx examples/gpt2-wikitext.ts --out "$work/job"

{
  echo
  grep -m1 -E '^adapter:' "$work/env.log" 2>/dev/null
  grep -E '^(kind|subgroup):' "$work/env.log" 2>/dev/null
  grep -E '^ *(Test Files|Tests) ' "$work/tests.log" 2>/dev/null
  grep -E 'FAIL ' "$work/tests.log" 2>/dev/null | sort -u | head -20
  for s in gpt2 tiny; do grep -E 'GPT-2|this engine|gradient|training step|PyTorch' "$work/$s.log" 2>/dev/null; done
  grep -E '^(peer:|1024³|gpt2 |add |chain5)' "$work/engine.log" 2>/dev/null
  sed -n '/^| Optimizer/,/^$/p' "$work/job/results.md" 2>/dev/null
} >>"$summary"
cp bench/out/*.json "$work/" 2>/dev/null
rm -rf "$work/job/"*/checkpoints "$work/job/"*/model
tar -czf "$out/gpu-session.tgz" -C "$work" .
cp "$summary" "$out/summary.txt"
cat "$summary"
