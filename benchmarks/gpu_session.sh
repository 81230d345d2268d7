#!/usr/bin/env bash
# Issue 11 on a GPU machine (the device tool's H100/H200: Python 3.12, torch 2.11+cu130, nvcc 13.0,
# compute-sanitizer; no network). Run from the repository root with .gpu/ (filled here by
# benchmarks/gpu_fetch.sh) carried along; one call runs the stages it names, in order:
#
#   bash benchmarks/gpu_session.sh setup test bench-tp bench-cg bench-ops   # call 1, ~9 min
#   SANITIZE_BUDGET=540 bash benchmarks/gpu_session.sh sanitize    # call 2, at once (the machine stays warm 30 s)
#
#   setup     peers installed (cuequivariance from .gpu/wheels; torch_cluster/torch_scatter prebuilt from .gpu/peers, else
#             torch_scatter/torch_cluster built from the sdists in the background: over 15 min), geomdl._C
#             with CUDA: the prebuilt .gpu/geomdl_cuda/_C.abi3.so when it was built for this torch from these
#             kernels (gpu_fetch.sh), else built here (strict);
#   test      CUDA tests (kernels vs references; RUN_SUITE=1: then the ops/o3/testing suites);
#   sanitize  compute-sanitizer memcheck/racecheck on the small CUDA tests, within $SANITIZE_BUDGET s;
#   bench-ops python -m benchmarks ops --device cuda (waits for the torch_scatter/torch_cluster build);
#   bench-tp  python -m benchmarks tensor_product --device cuda (e3nn, cuEquivariance);
#   bench-cg  python -m benchmarks cg_product --device cuda (the sparse_trilinear kernel vs the einsums and e3nn);
#   bench     bench-ops, bench-tp, then bench-cg.
#
# Every stage first checks that setup has run on this machine (the machine is given back 30 s after a
# call: a later call may find a fresh one) and redoes it when not. Logs and JSON results go to $OUT
# (default ./gpu_out; the device tool returns at most 8 files: gpu.txt, build.log, test_cuda.log, sanitize.log,
# ops_cuda.json, tp_cuda_full.json, tp_cuda_single.json, cg_cuda.json (the tables: the output's tail); test_ops_o3.log
# only with RUN_SUITE=1, in place of build.log when the prebuilt extension is used).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
SITE=/tmp/site
export PYTHONPATH="$SITE:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
PY="${PYTHON:-python3}"
[[ $# -gt 0 ]] || { echo "usage: gpu_session.sh STAGE... (setup test sanitize bench-ops bench-tp bench-cg bench)"; exit 2; }

cuda_kernels_loaded() {
  $PY - <<'EOF'
import sys
from geomdl import ops
ok = ops.extension_loaded() and all(ops.has_kernel(op, "cuda") for op in
                                    ("scatter_reduce", "segment_softmax", "radius", "knn", "fps", "gaunt_columns",
                                     "sparse_trilinear"))
sys.exit(0 if ok else 1)
EOF
}

build_geomdl() {
  local start rc
  start=$(date +%s)
  GEOMDL_STRICT_BUILD=1 MAX_JOBS=12 $PY setup.py build_ext --inplace > "$OUT/build.log" 2>&1
  rc=$?
  echo "geomdl build: exit $rc in $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
  grep -i -E "error|warning" "$OUT/build.log" | grep -v Py_LIMITED_API | head -40
  [[ $rc == 0 ]] || { tail -60 "$OUT/build.log"; return $rc; }
}

setup() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
  $PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
  nvcc --version | tail -1 | tee -a "$OUT/gpu.txt"
  mkdir -p "$SITE"
  if [[ -d .gpu/wheels ]]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" .gpu/wheels/*.whl
    tar -C "$SITE" -xJf .gpu/cueq_ops_site.tar.xz
    if [[ -d .gpu/peers ]]; then
      # Prebuilt by gpu_fetch.sh (torch_cluster, torch_scatter for this torch, sm_90): no build here.
      cp -r .gpu/peers/* "$SITE"/
      touch /tmp/peers.started /tmp/peers.done
      for m in $(ls .gpu/peers); do
        $PY -c "import $m; print('$m', $m.__version__, 'prebuilt')" 2>&1 | tail -1 | tee -a "$OUT/gpu.txt"
      done
    fi
    # torch_scatter / torch_cluster from the sdists: built in the background (it outlives this call while the
    # machine stays warm; over 15 min on the H100 machine); bench-ops waits for /tmp/peers.done.
    if [[ ! -f /tmp/peers.started ]]; then
      touch /tmp/peers.started
      setsid nohup bash -c "for s in .gpu/sdist/*.tar.gz; do FORCE_CUDA=1 MAX_JOBS=8 $PY -m pip install --no-index --no-deps \
        --no-build-isolation --no-compile --target $SITE \$s || echo FAILED \$s; done; touch /tmp/peers.done" \
        >/tmp/peers.log 2>&1 < /dev/null &
    fi
  else
    echo "no .gpu/ carried: peers (cuequivariance, torch_scatter, torch_cluster) will be reported missing"
  fi
  local pre=.gpu/geomdl_cuda want have
  if [[ -f $pre/_C.abi3.so && -f $pre/info.txt ]]; then
    want="torch $($PY -c 'import torch; print(torch.__version__)') kernels $($PY benchmarks/kernels_digest.py)"
    have=$(cat $pre/info.txt)
    if [[ "$have" == "$want" ]]; then
      cp $pre/_C.abi3.so geomdl/_C.abi3.so
      echo "geomdl._C: prebuilt ($have)" | tee -a "$OUT/gpu.txt"
    else
      echo "geomdl._C: prebuilt for '$have', this machine needs '$want': building here" | tee -a "$OUT/gpu.txt"
    fi
  fi
  if ! cuda_kernels_loaded; then build_geomdl || return 1; fi
  $PY - <<'EOF' | tee -a "$OUT/gpu.txt"
from geomdl import ops
assert ops.extension_loaded(), ops.extension_error()
for op in ("scatter_reduce", "segment_softmax", "radius", "knn", "fps", "gaunt_columns", "sparse_trilinear"):
    print(f"geomdl::{op}: cpu={ops.has_kernel(op, 'cpu')} cuda={ops.has_kernel(op, 'cuda')}")
EOF
  cuda_kernels_loaded && touch /tmp/geomdl.setup.done
}

ensure_setup() {
  if [[ -f /tmp/geomdl.setup.done ]] && cuda_kernels_loaded; then return 0; fi
  echo "== setup (not yet done on this machine)"
  setup
}

run_tests() {
  # Bounded (TEST_TIMEOUT s each) so that a hang still leaves time for the next stage of the call; failures are
  # listed with their reasons (-rf). The ops/o3/testing suites on this machine's torch only with RUN_SUITE=1.
  timeout "${TEST_TIMEOUT:-300}" $PY -m pytest -q --maxfail=25 -p no:cacheprovider -n "${TEST_WORKERS:-4}" -rf \
    --tb=short tests/ops/test_cuda_scatter.py tests/ops/test_cuda_neighbors.py tests/o3/test_cuda_gaunt.py \
    tests/ops/test_cuda_trilinear.py tests/nn/test_device_portability.py tests/pipelines/test_pipeline_device_portability.py 2>&1 \
    | tee "$OUT/test_cuda.log" | tail -40
  if [[ "${RUN_SUITE:-0}" == 1 ]]; then
    timeout "${TEST_TIMEOUT:-300}" $PY -m pytest -q -p no:cacheprovider -n 8 -rf --tb=line tests/ops tests/o3 \
      tests/testing 2>&1 | tee "$OUT/test_ops_o3.log" | tail -15
  fi
}

run_sanitize() {
  # Small cases only (-k filters keep each run short): memory errors, then shared-memory races (the
  # kernels with shared memory: trilinear, gaunt, fps, the neighbour bounding boxes), within SANITIZE_BUDGET seconds.
  local budget="${SANITIZE_BUDGET:-300}" start tool f left
  local k="${SANITIZE_K:-not large and not random_cloud and not property and not 1000 and not many_columns}"
  start=$(date +%s)
  for run in "memcheck tests/ops/test_cuda_scatter.py" "memcheck tests/ops/test_cuda_neighbors.py" \
             "memcheck tests/o3/test_cuda_gaunt.py" "memcheck tests/ops/test_cuda_trilinear.py" \
             "racecheck tests/ops/test_cuda_trilinear.py" "racecheck tests/o3/test_cuda_gaunt.py" \
             "racecheck tests/ops/test_cuda_neighbors.py"; do
    read -r tool f <<<"$run"
    left=$(( budget - ($(date +%s) - start) ))
    if (( left < 30 )); then echo "== skipped (budget of $budget s spent): $tool $f"; continue; fi
    echo "== compute-sanitizer --tool $tool $f (at most $left s)"
    timeout "$left" compute-sanitizer --tool "$tool" --error-exitcode 86 --print-limit 20 \
      $PY -m pytest -q -x -p no:cacheprovider -k "$k" "$f" 2>&1 | tail -25
    echo "exit ${PIPESTATUS[0]}"
  done 2>&1 | tee "$OUT/sanitize.log"
}

bench_ops() {
  for _ in $(seq 1 "${PEERS_WAIT:-60}"); do [[ -f /tmp/peers.done || ! -d .gpu ]] && break; sleep 5; done
  tail -5 /tmp/peers.log 2>/dev/null
  [[ -f /tmp/peers.log ]] && { echo "== peers build log"; tail -20 /tmp/peers.log; } >> "$OUT/gpu.txt"
  timeout "${BENCH_TIMEOUT:-300}" $PY -m benchmarks ops --device cuda --out "$OUT/ops_cuda.json" 2>&1 | tee /tmp/ops_cuda.txt | tail -40
}

bench_cg() {
  timeout "${BENCH_TIMEOUT:-300}" $PY -m benchmarks cg_product --device cuda --channels 32 --rows 100000 --repeats 11 \
    --out "$OUT/cg_cuda.json" 2>&1 | tee /tmp/cg_cuda.txt | tail -15
}

bench_tp() {
  timeout "${BENCH_TIMEOUT:-300}" $PY -m benchmarks tensor_product --device cuda --channels 128 --nodes 100000 --ls "${TP_LS:-2,4,6}" \
    --peers gaunt,e3nn --second full --out "$OUT/tp_cuda_full.json" 2>&1 | tee /tmp/tp_cuda_full.txt | tail -25
  timeout "${BENCH_TIMEOUT:-300}" $PY -m benchmarks tensor_product --device cuda --channels 128 --nodes 100000 --ls "${TP_LS:-2,4,6}" \
    --peers gaunt,e3nn,cueq --second single --out "$OUT/tp_cuda_single.json" 2>&1 | tee /tmp/tp_cuda_single.txt | tail -25
}

for stage in "$@"; do
  echo "== stage $stage ($(date +%T))"
  case "$stage" in
  setup) setup || exit 1 ;;
  test) ensure_setup || exit 1; run_tests ;;
  sanitize) ensure_setup || exit 1; run_sanitize ;;
  bench-ops) ensure_setup || exit 1; bench_ops ;;
  bench-tp) ensure_setup || exit 1; bench_tp ;;
  bench-cg) ensure_setup || exit 1; bench_cg ;;
  bench) ensure_setup || exit 1; bench_ops; bench_tp; bench_cg ;;
  *) echo "unknown stage $stage (setup test sanitize bench-ops bench-tp bench-cg bench)"; exit 2 ;;
  esac
done
