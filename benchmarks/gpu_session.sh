#!/usr/bin/env bash
# Issue 11 on a GPU machine (the device tool's H100/H200: Python 3.12, torch 2.11+cu130, nvcc 13.0,
# compute-sanitizer; no network). Run from the repository root, one stage per device call, with
# .gpu/ (filled here by benchmarks/gpu_fetch.sh) carried along:
#
#   bash benchmarks/gpu_session.sh setup    # peers installed, torch_scatter/torch_cluster building in the
#                                           # background, geomdl._C built with CUDA (strict), kernels listed
#   bash benchmarks/gpu_session.sh test     # CUDA tests (kernels vs references), then ops/o3 suites
#   bash benchmarks/gpu_session.sh sanitize # compute-sanitizer memcheck + racecheck on the small CUDA tests
#   bash benchmarks/gpu_session.sh bench    # python -m benchmarks ops / tensor_product --device cuda
#
# Logs and JSON results go to $OUT (default ./gpu_out). The machine keeps /tmp/site and the build
# between calls only while it stays warm (it is given back after 30 s idle): run the stages back to back.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
SITE=/tmp/site
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
PY=python3
stage="${1:?usage: gpu_session.sh setup|test|sanitize|bench}"

case "$stage" in
setup)
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
  nvcc --version | tail -1 | tee -a "$OUT/gpu.txt"
  mkdir -p "$SITE"
  if [[ -d .gpu ]]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .gpu/wheels/*.whl
    tar -C "$SITE" -xJf .gpu/cueq_ops_site.tar.xz
    # torch_scatter / torch_cluster: built in the background (new session: survives this call) while the
    # next stages run; bench waits for /tmp/peers.done.
    rm -f /tmp/peers.done
    setsid nohup bash -c "for s in .gpu/sdist/*.tar.gz; do FORCE_CUDA=1 MAX_JOBS=6 $PY -m pip install --no-index --no-deps \
      --no-build-isolation --no-compile --target $SITE \$s || echo FAILED \$s; done; touch /tmp/peers.done" \
      >/tmp/peers.log 2>&1 < /dev/null &
  else
    echo "no .gpu/ carried: peers (cuequivariance, torch_scatter, torch_cluster) will be reported missing"
  fi
  start=$(date +%s)
  GEOMDL_STRICT_BUILD=1 MAX_JOBS=10 $PY setup.py build_ext --inplace > "$OUT/build.log" 2>&1
  rc=$?
  echo "geomdl build: exit $rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
  grep -i -E "error|warning" "$OUT/build.log" | head -40
  [[ $rc == 0 ]] || { tail -60 "$OUT/build.log"; exit $rc; }
  $PY - <<'EOF' | tee -a "$OUT/gpu.txt"
from geomdl import ops
assert ops.extension_loaded(), ops.extension_error()
for op in ("scatter_reduce", "segment_softmax", "radius", "knn", "fps", "gaunt_columns"):
    print(f"geomdl::{op}: cpu={ops.has_kernel(op, 'cpu')} cuda={ops.has_kernel(op, 'cuda')}")
EOF
  ;;
test)
  $PY -m pytest -q -x -p no:cacheprovider tests/ops/test_cuda_scatter.py tests/ops/test_cuda_neighbors.py \
    tests/o3/test_cuda_gaunt.py 2>&1 | tee "$OUT/test_cuda.log" | tail -40
  $PY -m pytest -q -p no:cacheprovider -n 8 tests/ops tests/o3 tests/testing 2>&1 | tee "$OUT/test_ops_o3.log" | tail -15
  ;;
sanitize)
  # Small cases only (-k filters keep each run short): memory errors and shared-memory races.
  for tool in memcheck racecheck; do
    for f in tests/ops/test_cuda_scatter.py tests/ops/test_cuda_neighbors.py tests/o3/test_cuda_gaunt.py; do
      echo "== compute-sanitizer --tool $tool $f"
      timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 86 --print-limit 20 \
        $PY -m pytest -q -x -p no:cacheprovider -k "${SANITIZE_K:-not large and not random_cloud and not property and not 1000 and not many_columns}" "$f" 2>&1 \
        | tail -25
      echo "exit ${PIPESTATUS[0]}"
    done
  done 2>&1 | tee "$OUT/sanitize.log"
  ;;
bench)
  for _ in $(seq 1 "${PEERS_WAIT:-60}"); do [[ -f /tmp/peers.done || ! -d .gpu ]] && break; sleep 5; done
  tail -5 /tmp/peers.log 2>/dev/null
  $PY -m benchmarks ops --device cuda --out "$OUT/ops_cuda.json" 2>&1 | tee "$OUT/ops_cuda.txt" | tail -40
  $PY -m benchmarks tensor_product --device cuda --channels 128 --nodes 100000 --ls "${TP_LS:-2,4,6}" \
    --peers gaunt,e3nn --second full --out "$OUT/tp_cuda_full.json" 2>&1 | tee "$OUT/tp_cuda_full.txt" | tail -25
  $PY -m benchmarks tensor_product --device cuda --channels 128 --nodes 100000 --ls "${TP_LS:-2,4,6}" \
    --peers gaunt,e3nn,cueq --second single --out "$OUT/tp_cuda_single.json" 2>&1 | tee "$OUT/tp_cuda_single.txt" | tail -25
  ;;
*)
  echo "unknown stage $stage (setup|test|sanitize|bench)"; exit 2 ;;
esac
