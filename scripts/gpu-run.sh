#!/usr/bin/env bash
# Runs a command on a GPU machine that has no Node, from the bundle scripts/gpu-pack.sh made
# (.gpu/, carried by the device tool): installs the Vulkan loader if missing, unpacks node, node_modules and
# WikiText-2, points Vulkan at the NVIDIA driver when no ICD is registered, prints the adapter,
# then runs the command from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
b=.gpu
# The loader only where none is installed (unpacking over a newer one would break it).
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  for f in "$b"/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
mkdir -p /tmp/node/bin
[ -x /tmp/node/bin/node ] || tar -C /tmp/node/bin -xJf "$b/node.tar.xz"
export PATH=/tmp/node/bin:$PATH
[ -d node_modules ] || tar -xJf "$b/node_modules.tar.xz"
if [ -f "$b/data.tar.xz" ] && [ -z "${WIKITEXT_DIR:-}" ]; then
  mkdir -p /tmp/wikitext && tar -C /tmp/wikitext -xJf "$b/data.tar.xz"
  export WIKITEXT_DIR=/tmp/wikitext
fi
nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1 && [ -f "$nv" ]; then
  export VK_DRIVER_FILES=$nv
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
node --import tsx examples/doctor.ts >/tmp/doctor.txt 2>&1 || { cat /tmp/doctor.txt; exit 1; }
head -3 /tmp/doctor.txt
exec "$@"
