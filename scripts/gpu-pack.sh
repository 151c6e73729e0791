#!/usr/bin/env bash
# Packs what a GPU machine without Node needs into .gpu/ (git-ignored): the node binary, the
# node_modules (Linux x64 only, without the type checker), the Vulkan loader debs, and WikiText-2
# from ../shared/data or $WIKITEXT_DIR. Together ≈ 55 MB, which with the checkout stays under the
# device tool's 64 MiB carry limit. Then, on that machine, scripts/gpu-run.sh unpacks it and runs
# a command, e.g. (device tool, carry [".gpu"]):
#   bash scripts/gpu-run.sh node --import tsx bench/gpt2.ts gpt2 8 1024
# or scripts/gpu-session.sh runs the prepared checks and measurements in one call.
# (the bundle has node but no npm: call scripts through `node --import tsx`).
# Idempotent: existing pieces are kept (delete .gpu/ to rebuild).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.gpu
mkdir -p "$out"
xzc() { xz -T0 -6; }

if [ ! -f "$out/node.tar.xz" ]; then
  bin=$(readlink -f "$(command -v node)")
  echo "[gpu-pack] node $(node --version) from $bin"
  tar -C "$(dirname "$bin")" -cf - "$(basename "$bin")" | xzc >"$out/node.tar.xz"
fi

if [ ! -f "$out/node_modules.tar.xz" ]; then
  [ -d node_modules ] || { echo "[gpu-pack] run npm ci first" >&2; exit 1; }
  echo "[gpu-pack] node_modules (runtime, tsx, vitest)"
  # Dawn's other platforms and the type checker are not needed; vitest and fast-check are, so the
  # GPU machine can run the tests against its adapter (scripts/gpu-session.sh).
  tar -cf - \
    --exclude='node_modules/webgpu/dist/darwin-*' --exclude='node_modules/webgpu/dist/win32-*' \
    --exclude='node_modules/webgpu/dist/linux-arm64' --exclude='node_modules/typescript' \
    --exclude='node_modules/@types' \
    node_modules | xzc >"$out/node_modules.tar.xz"
fi

if ! ls "$out"/libvulkan1_*.deb >/dev/null 2>&1; then
  echo "[gpu-pack] Vulkan loader (libvulkan1, amd64)"
  lists=/tmp/gpu-pack-apt-lists
  mkdir -p "$lists/partial"
  o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists)
  apt-get "${o[@]}" update -qq
  (cd "$out" && apt-get "${o[@]}" download libvulkan1)
fi

if [ ! -f "$out/data.tar.xz" ]; then
  data=${WIKITEXT_DIR:-../shared/data}
  if [ -d "$data/wikitext-2" ]; then
    echo "[gpu-pack] WikiText-2 from $data"
    tar -C "$data" -cf - wikitext-2 | xzc >"$out/data.tar.xz"
  else
    echo "[gpu-pack] no WikiText-2 at $data: the GPU run will download it or use the embedded corpus"
  fi
fi
du -ch "$out"/* | tail -1
