#!/usr/bin/env bash
# Run HERE (a machine with PyPI access) before a GPU session: fills .gpu/ (git-ignored) with what the
# GPU machine lacks and cannot download (it has no network), to be carried to it with the device tool
# (carry: [".gpu"]); benchmarks/gpu_session.sh installs it there.
#   - cuequivariance + cuequivariance-torch (pure Python wheels) and cuequivariance-ops(-torch)-cu13, the
#     CUDA kernels, unpacked and repacked as one tar.xz (74 MB of wheels -> ~27 MB: a device call carries
#     64 MiB at most);
#   - platformdirs (needed by cuequivariance-ops);
#   - the sdists of torch_scatter and torch_cluster (no CUDA wheels on PyPI); with GEOMDL_CUDA_PYTHON (below)
#     both are also built here for the GPU image (.gpu/peers/; GEOMDL_PEERS=0 skips them and keeps those of
#     the previous kit, ~45 min on 2 cores);
#   - with GEOMDL_CUDA_PYTHON set (a Python whose torch is the GPU image's CUDA build, e.g. a venv with
#     torch==2.11.0 from PyPI) and nvcc here: geomdl's extension built with CUDA for sm_90
#     (.gpu/geomdl_cuda/_C.abi3.so, debug info stripped, ~5 MB; abi3, so a build under Python 3.11 loads
#     under 3.12), with info.txt naming its torch and benchmarks/kernels_digest.py of the sources;
#     gpu_session.sh uses it only when both match there (sparing the device a few minutes of nvcc).
#     GEOMDL_CUDA_PYTHON=auto makes that venv first (/tmp/cuvenv: torch==2.11.0 with its nvidia-* wheels, a
#     few GB from PyPI, once per machine).
# Versions: the GPU image has Python 3.12 and torch 2.11.0+cu130. Needs a python3 that has torch (the
# project's venv: pip reads the sdists' metadata by running their setup.py, which imports torch).
# A whole kit with the peers takes about an hour on 2 cores: start it in the background at the start of a
# session that has a GPU (nothing under .gpu/ outlives the session's machine).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${GEOMDL_CUDA_PYTHON:-}" == auto ]]; then
  if [[ ! -x /tmp/cuvenv/bin/python ]] || ! /tmp/cuvenv/bin/python -c "import torch, nvidia" 2>/dev/null; then
    python3 -m venv /tmp/cuvenv
    /tmp/cuvenv/bin/pip install -q torch==2.11.0 setuptools wheel ninja
  fi
  export GEOMDL_CUDA_PYTHON=/tmp/cuvenv/bin/python
fi
CUEQ="${CUEQ_VERSION:-0.13.0}"
dest=.gpu
rm -rf "$dest.partial" && mkdir -p "$dest.partial/wheels" "$dest.partial/sdist"
plat=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
      --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: "${plat[@]}" -d "$dest.partial/wheels" \
  "cuequivariance==$CUEQ" "cuequivariance-torch==$CUEQ" platformdirs
tmp=$(mktemp -d)
build=""
trap 'rm -rf "$tmp" ${build:+"$build"}' EXIT
python3 -m pip download -q --no-deps --only-binary=:all: "${plat[@]}" -d "$tmp" \
  "cuequivariance-ops-cu13==$CUEQ" "cuequivariance-ops-torch-cu13==$CUEQ"
mkdir "$tmp/site"
for w in "$tmp"/*.whl; do python3 -m zipfile -e "$w" "$tmp/site"; done
tar -C "$tmp/site" -cf - . | xz -9 -T2 > "$dest.partial/cueq_ops_site.tar.xz"
python3 -m pip download -q --no-deps --no-binary=:all: --no-build-isolation -d "$dest.partial/sdist" \
  torch-scatter==2.1.2 torch-cluster==1.6.3
if [[ -n "${GEOMDL_CUDA_PYTHON:-}" ]]; then
  # CUDA_HOME: the toolkit of nvcc (resolving wrapper scripts such as /usr/local/bin/nvcc -> exec ...).
  nvcc_bin=$(readlink -f "$(command -v nvcc)")
  real=""
  if [[ "$(head -c 2 "$nvcc_bin")" == "#!" ]]; then real=$(grep -o '/[^ "]*/bin/nvcc' "$nvcc_bin" | head -1 || true); fi
  export CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$(readlink -f "${real:-$nvcc_bin}")")")}"
  build=$(mktemp -d)
  git ls-files -co --exclude-standard | tar -cf - -T - | tar -x -C "$build"
  (cd "$build" && GEOMDL_STRICT_BUILD=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=2 "$GEOMDL_CUDA_PYTHON" setup.py build_ext --inplace > build.log 2>&1) || { tail -30 "$build/build.log"; exit 1; }
  mkdir -p "$dest.partial/geomdl_cuda"
  strip --strip-debug -o "$dest.partial/geomdl_cuda/_C.abi3.so" "$build/geomdl/_C.abi3.so"
  echo "torch $("$GEOMDL_CUDA_PYTHON" -c 'import torch; print(torch.__version__)') kernels $(python3 benchmarks/kernels_digest.py "$build")" \
    > "$dest.partial/geomdl_cuda/info.txt"
  (cd "$build" && "$GEOMDL_CUDA_PYTHON" -c "
from geomdl import ops
assert all(ops.has_kernel(op, 'cuda') for op in ('scatter_reduce', 'segment_softmax', 'radius', 'knn', 'fps', 'gaunt_columns',
                                                 'sparse_trilinear'))
print('prebuilt CUDA extension: every op has a CUDA kernel')")
  # torch_cluster and torch_scatter for the GPU image (built there from the sdists they take over 15 min): CUDA
  # for the ops the benchmarks time, CPU for the others (each package's __init__ loads all its libraries).
  # Their extensions only register torch ops (no Python C API beyond an empty PyInit), so a build under
  # Python 3.11 loads under 3.12 once named plain '<lib>.so', a suffix every CPython accepts.
  build_peer() {  # build_peer NAME VERSION "LIBS WITH CUDA": .gpu/peers/NAME
    local name=$1 version=$2 cuda_libs=$3 tmp_peer incl so lib
    tmp_peer=$(mktemp -d)
    tar -C "$tmp_peer" -xzf "$dest.partial/sdist/$name-$version.tar.gz"
    python3 - "$tmp_peer/$name-$version/setup.py" "$cuda_libs" <<'PYEOF'
import pathlib, sys
p = pathlib.Path(sys.argv[1]); s = p.read_text()
old = "    for main, suffix in product(main_files, suffices):\n"
assert old in s, f"{p}: the build loop changed"
p.write_text(s.replace(old, old + f"        if (suffix == 'cuda') != (osp.basename(main)[:-4] in {sys.argv[2].split()!r}):\n"
                                   "            continue\n"))
PYEOF
    # cusparse.h & co. (included by ATen/cuda) come with the nvidia-* wheels of that torch, not with a bare nvcc.
    incl=$("$GEOMDL_CUDA_PYTHON" -c "import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], 'cu13', 'include'))")
    (cd "$tmp_peer/$name-$version" && PATH="$(dirname "$GEOMDL_CUDA_PYTHON"):$PATH" CPATH="$incl" NVCC_FLAGS="-I$incl" \
      FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=2 "$GEOMDL_CUDA_PYTHON" setup.py build_ext --inplace > build.log 2>&1) \
      || { tail -30 "$tmp_peer/$name-$version/build.log"; exit 1; }
    mkdir -p "$dest.partial/peers"
    cp -r "$tmp_peer/$name-$version/$name" "$dest.partial/peers/$name"  # with subpackages (torch_scatter.composite)
    rm -f "$dest.partial/peers/$name"/*.so
    for so in "$tmp_peer/$name-$version/$name"/*.so; do
      lib=$(basename "$so"); strip --strip-debug -o "$dest.partial/peers/$name/${lib%%.*}.so" "$so"
    done
    PYTHONPATH="$(pwd)/$dest.partial/peers" "$GEOMDL_CUDA_PYTHON" -c "import $name; print('$name', $name.__version__, 'prebuilt')"
    rm -rf "$tmp_peer"
  }
  if [[ "${GEOMDL_PEERS:-1}" == 1 ]]; then
    build_peer torch_cluster 1.6.3 "fps knn radius version"
    build_peer torch_scatter 2.1.2 "scatter segment_coo version"
  elif [[ -d "$dest/peers" ]]; then  # GEOMDL_PEERS=0: keep the peers of the previous kit (they do not
    cp -r "$dest/peers" "$dest.partial/peers"  # depend on geomdl's sources)
    echo "kept the prebuilt peers of the previous kit: $(ls "$dest/peers" | tr '\n' ' ')"
  fi
fi
rm -rf "$dest" && mv "$dest.partial" "$dest"
du -sh "$dest" && ls -R "$dest"
