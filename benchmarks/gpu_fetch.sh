#!/usr/bin/env bash
# Run HERE (a machine with PyPI access) before a GPU session: fills .gpu/ (git-ignored) with what the
# GPU machine lacks and cannot download (it has no network), to be carried to it with the device tool
# (carry: [".gpu"]); benchmarks/gpu_session.sh installs it there.
#   - cuequivariance + cuequivariance-torch (pure Python wheels) and cuequivariance-ops(-torch)-cu13, the
#     CUDA kernels, unpacked and repacked as one tar.xz (74 MB of wheels -> ~27 MB: a device call carries
#     64 MiB at most);
#   - platformdirs (needed by cuequivariance-ops);
#   - the sdists of torch_scatter and torch_cluster (no CUDA wheels on PyPI: built on the GPU machine).
# Versions: the GPU image has Python 3.12 and torch 2.11.0+cu130.
set -euo pipefail
cd "$(dirname "$0")/.."
CUEQ="${CUEQ_VERSION:-0.13.0}"
dest=.gpu
rm -rf "$dest.partial" && mkdir -p "$dest.partial/wheels" "$dest.partial/sdist"
plat=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: "${plat[@]}" -d "$dest.partial/wheels" \
  "cuequivariance==$CUEQ" "cuequivariance-torch==$CUEQ" platformdirs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: "${plat[@]}" -d "$tmp" \
  "cuequivariance-ops-cu13==$CUEQ" "cuequivariance-ops-torch-cu13==$CUEQ"
mkdir "$tmp/site"
for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" "$tmp/site"; done
tar -C "$tmp/site" -cf - . | xz -9 -T2 > "$dest.partial/cueq_ops_site.tar.xz"
python3 -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$dest.partial/sdist" \
  torch-scatter==2.1.2 torch-cluster==1.6.3
rm -rf "$dest" && mv "$dest.partial" "$dest"
du -sh "$dest" && ls -R "$dest"
