#!/usr/bin/env bash
# Make a WebGPU adapter available on a fresh Debian bookworm machine without a GPU.
#
# Where an adapter already exists (a real GPU, or lavapipe installed earlier) this does nothing.
# Otherwise it installs the Vulkan loader and Mesa's CPU driver (lavapipe) from bookworm-backports:
# bookworm's own mesa 22.3 fails inside Dawn ("shaderUniform*ArrayDynamicIndexing required"),
# mesa 25.x works. Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

if [ ! -d node_modules/webgpu ]; then
  echo "[setup] installing npm dependencies"
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

probe() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# The training report renders PNG charts with resvg, which needs one TrueType font.
if [ -r /etc/debian_version ] && ! ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1; then
  echo "[setup] installing fonts-dejavu-core (text in the report's PNG charts)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-dejavu-core || echo "[setup] could not install fonts-dejavu-core; PNG charts will have no text" >&2
fi

if probe; then
  echo "[setup] a WebGPU adapter is already available:"
  node scripts/probe-adapter.mjs
  exit 0
fi

if [ ! -r /etc/debian_version ]; then
  echo "[setup] no WebGPU adapter found and this is not Debian: install a Vulkan driver (e.g. Mesa lavapipe >= 24) yourself." >&2
  exit 1
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
list=/etc/apt/sources.list.d/backports.sources
if [ "$codename" = bookworm ] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "[setup] adding the Debian suite bookworm-backports ($list)"
  $SUDO tee "$list" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

echo "[setup] installing libvulkan1 and mesa-vulkan-drivers (lavapipe)"
$SUDO apt-get update -qq
if [ "$codename" = bookworm ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1
fi

if probe; then
  echo "[setup] done:"
  node scripts/probe-adapter.mjs
else
  echo "[setup] lavapipe is installed but Dawn still finds no adapter; run 'node scripts/probe-adapter.mjs' to see why." >&2
  exit 1
fi
