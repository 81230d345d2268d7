"""The CUDA kernels (kernels/**/*_cuda.cu, unmodified) run on the CPU by the emulator of this directory
(emu.h, convert.py, build.py; see README.md) and compared with the CPU kernels (torch.ops.geomdl.*) and the
pure-PyTorch references, so that CI without a GPU catches logic errors in the CUDA sources.

Expected values come from the CPU kernels and references (or, for the emulator's self-test, from the CUDA
definitions written out in Python), never from the emulator. Exact ops (max/min picks, neighbour lists, fps
samples) must agree bit for bit; floating-point sums within the bound of any summation order (the GPU
kernels add with atomics in any order, and nvcc contracts a*b+c into FMAs).

Skipped (with the reason) only with GEOMDL_NO_EXT=1 or without a C++ compiler; a failing build fails (the
converter's own tests need no compiler). Every CUDA thread is a fiber switched at barriers and warp
collectives: sizes stay moderate (the module takes about 1.5 minutes on 2 cores, build included).
"""
from __future__ import annotations

import importlib.util
import math
import os
import types
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


def _load_helper(name):
    spec = importlib.util.spec_from_file_location(f"geomdl_cuda_emulation_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


build = _load_helper("build")
convert = _load_helper("convert")

DTYPES = [torch.float32, torch.float64]
# The emulated device's defaults (H100: 132 SMs, 227 KiB opt-in shared memory), shuffled block order,
# two blocks at a time.
DEFAULT_SMS, DEFAULT_OPTIN, DEFAULT_ORDER, DEFAULT_CONCURRENT = 132, 232448, 2, 2


@pytest.fixture(scope="module")
def emu():
    if os.environ.get("GEOMDL_NO_EXT", "0") == "1":
        pytest.skip("GEOMDL_NO_EXT=1: compiled kernels are disabled")
    if build.compiler() is None:
        pytest.skip(f"no C++ compiler ({os.environ.get('CXX', 'c++')}) to build the CUDA emulation")
    from geomdl.ops import extension_error, extension_loaded

    if not extension_loaded():
        pytest.fail(f"the CPU kernels to compare with are not available: {extension_error()}")
    build.build()  # raises (the tests fail) when conversion, compilation or loading fails
    return torch.ops.geomdl_emu


@pytest.fixture(autouse=True)
def _reset_device(request):
    """Resets the emulated device before each test that uses it (the seed of the shuffled orders from the test name)."""
    if "emu" in request.fixturenames:
        emu = request.getfixturevalue("emu")
        seed = int.from_bytes(request.node.name.encode()[-6:].rjust(6, b"\0"), "little") % 1000003
        emu.emu_configure(DEFAULT_SMS, DEFAULT_OPTIN, DEFAULT_ORDER, DEFAULT_CONCURRENT, seed)
        emu.emu_take_launch_log()


def configure(emu, sms=-1, smem_optin=-1, block_order=-1, concurrent_blocks=-1):
    emu.emu_configure(sms, smem_optin, block_order, concurrent_blocks, -1)


def launches(emu):
    """[(name, grid (x, y, z), block (x, y, z), dynamic smem, static smem)] since the last call."""
    out = []
    for line in emu.emu_take_launch_log():
        name, *v = line.split()
        v = [int(x) for x in v]
        out.append((name, tuple(v[0:3]), tuple(v[3:6]), v[6], v[7]))
    return out


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _bits(t):
    return t.view({torch.float32: torch.int32, torch.float64: torch.int64}[t.dtype])


def route_op(monkeypatch, module, op, fn):
    """Inside ``module``, ``torch.ops.geomdl.<op>`` calls ``fn`` (``module.torch`` becomes a proxy of torch)."""
    real = torch

    class TorchWithEmulatedOp(types.ModuleType):
        def __getattr__(self, name):
            return getattr(real, name)

    proxy = TorchWithEmulatedOp("torch")
    proxy.ops = types.SimpleNamespace(geomdl=types.SimpleNamespace(**{op: fn}))
    monkeypatch.setattr(module, "torch", proxy)


def _first_line(exc):
    return str(exc).strip().splitlines()[0]


def _same_error(fn_a, fn_b, exc_type):
    """Both calls raise exc_type with the same first line of message."""
    with pytest.raises(exc_type) as ea:
        fn_a()
    with pytest.raises(exc_type) as eb:
        fn_b()
    assert _first_line(ea.value) == _first_line(eb.value)


# =====================================================================================================
# The converter (no compilation)
# =====================================================================================================


def test_convert_rewrites_launches_shared_memory_and_registrations():
    src = """#include "common/cuda_utils.cuh"
// a comment with k<<<1, 2>>>(x) and __shared__ int no;
template <typename T, int N>
__global__ void __launch_bounds__(N * 2)
k(const T* __restrict__ p) {
  extern __shared__ __align__(16) double dyn[];
  __shared__ T tile[N][N + 1];
  __shared__ int flag;
  const char* s = "<<<not a launch>>>";
}
void host(int n) {
  ns::k<float, (3 > 2 ? 4 : 8)>
      <<<dim3(n, 2),
         64, 0, stream>>>(
      nullptr);
  other<<<1, 32>>>();
  auto o = at::TensorOptions().pinned_memory(n > 0);
}
TORCH_LIBRARY_IMPL(geomdl, CUDA, m) {
  m.impl("a", &fa);
  m.impl("b", TORCH_FN(fb));
}
"""
    out = convert.convert(src, "/x/k_cuda.cu")
    body = out.split('#line 1 "/x/k_cuda.cu"\n', 1)[1]
    # line numbers preserved: the only added lines are the post-include and its #line directive
    assert body.count("\n") == src.count("\n") + 2
    assert '#include "emu_post_include.h"\n#line 2 "/x/k_cuda.cu"' in body
    assert '// a comment with k<<<1, 2>>>(x) and __shared__ int no;' in body
    assert '"<<<not a launch>>>"' in body
    assert "__launch_bounds__" not in body and "k(const T* __restrict__ p) { ::emu::check_launch_bounds(N * 2);" in body
    assert "double* dyn = reinterpret_cast<double*>(::emu::dynamic_shared_memory());" in body
    assert "typedef T emu_shared_t_tile[N][N + 1]; auto& tile = ::emu::shared_variable<emu_shared_t_tile>([] {});" in body
    assert "auto& flag = ::emu::shared_variable<emu_shared_t_flag>([] {});" in body
    assert ('::emu::launch("ns::k<float, (3 > 2 ? 4 : 8)>", ::emu::LaunchCfg(dim3(n, 2),\n         64, 0, stream), '
            'ns::k<float, (3 > 2 ? 4 : 8)>, \n      nullptr)\n;') in body
    assert '::emu::launch("other", ::emu::LaunchCfg(1, 32), other);' in body
    assert ".pinned_memory(::emu::host_pinned(n > 0))" in body
    assert 'TORCH_LIBRARY_FRAGMENT(geomdl_emu, m) { m.def("a", &fa); m.def("b", &fb); }' in body


@pytest.mark.parametrize("src,message", [
    ('__device__ void f(float* p) { asm volatile("red.global.add.f32 [%0], 1.0;" :: "l"(p)); }', "inline PTX"),
    ("#if defined(__CUDA_ARCH__)\n#else\n__device__ void f() { asm(\"nop;\"); }\n#endif\n", "inline PTX"),
    ("__global__ void k() { __shared__ int a, b; }", "one variable"),
    ("__global__ void k() { __shared__ int a = 0; }", "one variable"),
    ("__global__ void k() { __shared__ int a[]; }", "unknown bound needs extern"),
    ("void h() { k<<<1, 2>>>; }", "argument list"),
    ("TORCH_LIBRARY_IMPL(geomdl, CPU, m) { m.impl(\"a\", &a); }", "not supported"),
])
def test_convert_rejects_what_it_cannot_emulate(src, message):
    with pytest.raises(convert.ConvertError, match=message):
        convert.convert(src, "x.cu")


def test_convert_accepts_ptx_guarded_by_cuda_arch():
    src = ("#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900\n  asm volatile(\"red.global.add.v4.f32 [%0], {%1};\");\n"
           "#else\n  atomicAdd(p, v);\n#endif\n")
    assert "asm volatile" in convert.convert(src, "x.cu")


# =====================================================================================================
# The emulator itself (emu_runtime.cu): collectives against the CUDA definitions, detected errors
# =====================================================================================================


def _collectives_expected(width):
    rows = []
    for t in range(64):
        lane, warp = t % 32, t // 32
        v = lambda src: src * 10 + warp  # noqa: E731  (value of lane src in this warp)
        seg = lane - lane % width
        r = [
            v((lane * 7) % 32),
            v(seg + (lane + 3) % width),
            v(lane - 3 if lane >= 3 else lane),
            v(lane - 2 if lane % width >= 2 else lane),
            v(lane + 5 if lane + 5 < 32 else lane),
            v(lane + 1 if lane % width + 1 < width else lane),
            v(lane ^ 6),
            v(lane ^ 1),
            sum(1 << l for l in range(32) if l % 3 == 0),
            1 if warp == 1 else 0,
            0,
            2 * (lane + 16) + 1 if lane < 16 else 2 * lane + 1,
            v(15) if lane < 16 else v(16),
            32,
            sum(range(32)),
            31 - lane,
        ]
        rows.append(r)
    return torch.tensor(rows, dtype=torch.long)


def test_emulator_warp_collectives_follow_cuda_definitions(emu):
    a, b = emu.emu_selftest(torch.zeros(1), "collectives")
    assert torch.equal(a, _collectives_expected(8))  # T = int, width 8
    assert torch.equal(b, _collectives_expected(16))  # T = long long, width 16


@pytest.mark.parametrize("case,message", [
    ("deadlock", r"deadlock.*16 of 32 live lanes wait in a collective"),
    ("lane_not_in_mask", r"not in the member mask"),
    ("dynamic_smem_past_end", r"past the end of its 64 bytes of dynamic shared memory"),
    ("static_smem_past_end", r"past the end of a static __shared__"),
    ("launch_bounds_exceeded", r"__launch_bounds__\(64\)"),
    ("bad_config_threads", r"invalid configuration"),
    ("bad_config_grid", r"invalid configuration"),
    ("misaligned_ldg", r"misaligned"),
    ("big_smem_without_attribute", r"cudaFuncSetAttribute"),
])
def test_emulator_reports_device_errors(emu, case, message):
    with pytest.raises(RuntimeError, match=message):
        emu.emu_selftest(torch.zeros(1), case)


def test_emulator_exited_threads_release_barriers(emu):
    """As on the device (bar.sync, shfl.sync): barriers and collectives wait only for threads that have not exited;
    a value read from an exited lane is undefined (poisoned)."""
    out = emu.emu_selftest(torch.zeros(1), "exit_before_barrier")[0]
    assert out.tolist() == [0 if t == 5 else 1 for t in range(64)]
    out, from_exited = emu.emu_selftest(torch.zeros(1), "exit_before_shuffle")
    assert out.tolist() == [0 if t % 32 == 3 else 100 for t in range(64)]
    assert from_exited.tolist() == [0 if t % 32 == 3 else -1 for t in range(64)]
    assert emu.emu_selftest(torch.zeros(1), "unmatched_barriers")[0].tolist() == [1] * 64


def test_emulator_constant_and_device_variables(emu):
    out, calls = emu.emu_selftest(torch.zeros(1), "constant_memory")
    assert out.tolist() == [2.0, -4.0, 7.0, 0.5] * 2 and calls.item() == 24


def test_emulator_runs_valid_variants_and_fills_shared_memory(emu):
    assert emu.emu_selftest(torch.zeros(1), "dynamic_smem_in_bounds")[0].item() == 1.0
    assert emu.emu_selftest(torch.zeros(1), "static_smem_in_bounds")[0].item() == 7
    assert torch.equal(emu.emu_selftest(torch.zeros(1), "launch_bounds_ok")[0][:64], torch.full((64,), 64, dtype=torch.int))
    out = emu.emu_selftest(torch.zeros(1), "big_smem_with_attribute")[0]
    assert torch.equal(out, torch.arange(1023, -1, -1, dtype=torch.float32))
    uninit = emu.emu_selftest(torch.zeros(1), "uninitialised_smem")[0]
    assert bool(torch.isnan(uninit).all())  # unwritten shared memory reads as garbage (0xFF bytes: NaN)


@pytest.mark.parametrize("order", [0, 1, 2])
def test_emulator_atomics_and_block_order(emu, order):
    configure(emu, block_order=order, concurrent_blocks=1)
    blocks, threads = 16, 128
    rank, umax, lmin, umin, usum, fglobal, dglobal, fshared = emu.emu_selftest(torch.zeros(1), "atomics")
    n = blocks * threads
    assert sorted(rank.tolist()) == list(range(blocks))
    if order == 0:
        assert rank.tolist() == list(range(blocks))
    elif order == 1:
        assert rank.tolist() == list(range(blocks))[::-1]
    else:
        assert rank.tolist() not in (list(range(blocks)), list(range(blocks))[::-1])
    assert umax.item() == 3 * (n - 1) and lmin.item() == -(n - 1) and umin.item() == 1000000 - (n - 1)
    assert usum.item() == n * (n - 1) // 2 and dglobal.item() == 0.25 * n
    assert fglobal.item() == 0.0  # global float atomics flush subnormals to zero (PTX atom.add.f32)
    assert bool((fshared > 0).all())  # shared-memory float atomics keep them


# =====================================================================================================
# scatter_reduce and segment_softmax (kernels/scatter/scatter_reduce_cuda.cu, segment_softmax_cuda.cu, segment_run.cuh)
# =====================================================================================================


def _index(kind, n, segments, g):
    if kind in ("random", "ties"):
        return torch.randint(0, segments, (n,), generator=g)
    if kind == "sorted":
        return torch.randint(0, segments, (n,), generator=g).sort().values
    if kind == "one_segment":
        return torch.full((n,), segments - 1, dtype=torch.long)
    if kind == "empty_segments":  # every third segment, unsorted
        return torch.randint(0, (segments + 2) // 3, (n,), generator=g) * 3
    if kind == "runs":  # long runs of equal index in random order of segments
        return torch.randint(0, segments, (n // 37 + 1,), generator=g).repeat_interleave(37)[:n]
    raise ValueError(kind)


def _src(kind, n, c, dtype, g):
    if kind == "ties":
        return torch.randint(-2, 3, (n, c), generator=g).to(dtype)
    return torch.randn(n, c, generator=g, dtype=torch.float64).to(dtype)


def _assert_sums_close(got, want, src, index, dim_size, reduce):
    """got within the error bound of any summation order of the CPU kernel's result; same NaN/inf."""
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(torch.isnan(got), torch.isnan(want)), f"{reduce}: NaN positions differ"
    inf = torch.isinf(want)
    assert torch.equal(got[inf], want[inf]), f"{reduce}: infinities differ"
    fin = torch.isfinite(want)
    s64 = src.double().abs().nan_to_num(0.0, 0.0, 0.0)
    bound = torch.zeros(dim_size, src.shape[1], dtype=torch.float64).index_add_(0, index, s64)
    count = torch.bincount(index, minlength=dim_size).double()
    if reduce == "mean":
        bound = bound / count.clamp(min=1).unsqueeze(1)
    eps = torch.finfo(got.dtype).eps
    n_max = count.max().item() if count.numel() else 0.0
    tol = 2 * eps * (n_max + 1) * bound + 1e-300
    err = (got.double() - want.double()).abs()
    assert bool((err[fin] <= tol[fin]).all()), f"{reduce}: max error {float(err[fin].max()):.3g}"


def check_scatter(emu, src, index, dim_size, reduce):
    got = emu.scatter_reduce(src, index, dim_size, reduce)
    want = torch.ops.geomdl.scatter_reduce(src, index, dim_size, reduce)
    if reduce in ("max", "min"):
        assert torch.equal(got[1], want[1]), f"{reduce}: arg (first row attaining the extreme) differs"
        assert torch.equal(_bits(got[0]), _bits(want[0])), f"{reduce}: values differ"
    else:
        assert got[1].numel() == 0 and want[1].numel() == 0
        _assert_sums_close(got[0], want[0], src, index, dim_size, reduce)
    return got


# (index kind, channels, rows): C = 1, 3, 5, 37 (scalar loads; 32 / 8 / 4 / 1 row groups per warp, unused
# column lanes), 6 and 8 (2- and 4-wide vectors), 64 (vectors, 2 or 1 row groups); N large enough with one
# SM for chunks of several warp steps (carries between steps).
SCATTER_CASES = [("random", 1, 300), ("sorted", 1, 300), ("random", 5, 2500), ("sorted", 5, 2500), ("runs", 3, 700),
                 ("sorted", 8, 1000), ("one_segment", 6, 400), ("empty_segments", 64, 300), ("random", 37, 200),
                 ("ties", 6, 300), ("sorted", 257, 300)]


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,channels,rows", SCATTER_CASES)
def test_scatter_matches_cpu_kernel(emu, reduce, dtype, kind, channels, rows):
    configure(emu, sms=1)
    g = _gen(rows + channels)
    segments = 23
    src, index = _src(kind, rows, channels, dtype, g), _index(kind, rows, segments, g)
    check_scatter(emu, src, index, segments + 2, reduce)  # the last two segments are empty


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment"])
@pytest.mark.parametrize("channels", [1, 16])
def test_scatter_large_crosses_chunk_boundaries(emu, reduce, dtype, kind, channels):
    """The default device (132 SMs): thousands of chunks, runs of equal index split between chunks and warps."""
    g = _gen(7)
    n, segments = 30011, 997
    src = torch.randn(n, channels, generator=g, dtype=torch.float64).to(dtype)
    index = _index(kind, n, segments, g)
    out, _ = check_scatter(emu, src, index, segments + 2, reduce)
    assert torch.equal(out[-2:], torch.zeros(2, channels, dtype=dtype))  # empty segments give 0


@pytest.mark.parametrize("tuning", ["8,128", "4,16", "8,16"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("kind,channels,rows", [("sorted", 5, 2500), ("random", 1, 3000), ("runs", 64, 900),
                                                ("one_segment", 8, 1000)])
def test_scatter_sum_launch_tunings(emu, monkeypatch, tuning, reduce, kind, channels, rows):
    """GEOMDL_SCATTER_TUNING: 8 warp steps of loads in flight and other chunk sizes give the same sums."""
    configure(emu, sms=2)
    monkeypatch.setenv("GEOMDL_SCATTER_TUNING", tuning)
    g = _gen(rows + 3)
    src, index = _src(kind, rows, channels, torch.float32, g), _index(kind, rows, 23, g)
    check_scatter(emu, src, index, 25, reduce)


def test_scatter_sum_tuning_changes_the_launch(emu, monkeypatch):
    """W (warps of work per SM) sets the grid of the run kernel: fewer warps per SM, fewer blocks."""
    configure(emu, sms=4)
    g = _gen(5)
    src, index = torch.randn(20000, 4, generator=g), torch.randint(0, 50, (20000,), generator=g)

    def run_grid(tuning):
        if tuning is None:
            monkeypatch.delenv("GEOMDL_SCATTER_TUNING", raising=False)
        else:
            monkeypatch.setenv("GEOMDL_SCATTER_TUNING", tuning)
        launches(emu)  # clear the log
        emu.scatter_reduce(src, index, 50, "sum")
        grids = [grid for name, grid, *_ in launches(emu) if name.startswith("segment_run_kernel")]
        assert len(grids) == 1
        return grids[0][0]

    default, few = run_grid(None), run_grid("4,16")
    assert run_grid("4,128") == default
    assert few < default


@pytest.mark.parametrize("bad", ["5,128", "8", "8,4", "8,128x", "x"])
def test_scatter_sum_rejects_a_bad_tuning(emu, monkeypatch, bad):
    monkeypatch.setenv("GEOMDL_SCATTER_TUNING", bad)
    with pytest.raises(ValueError, match="GEOMDL_SCATTER_TUNING"):
        emu.scatter_reduce(torch.ones(4, 2), torch.zeros(4, dtype=torch.long), 1, "sum")


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("kind,channels,rows", [("sorted", 5, 2500), ("random", 1, 3000), ("runs", 8, 2000)])
def test_scatter_in_ascending_and_descending_order(emu, order, kind, channels, rows):
    """Blocks, and the threads resumed after each barrier, in ascending / descending order (default: shuffled)."""
    configure(emu, sms=1, block_order=order, concurrent_blocks=1)
    g = _gen(rows)
    src, index = _src(kind, rows, channels, torch.float32, g), _index(kind, rows, 23, g)
    for reduce in ("sum", "mean", "max", "min"):
        check_scatter(emu, src, index, 23, reduce)
    _assert_softmax_close(emu.segment_softmax(src, index, 23), torch.ops.geomdl.segment_softmax(src, index, 23))


@pytest.mark.parametrize("kind", ["sorted", "random"])
def test_scatter_long_chunks_of_single_rows(emu, kind):
    """C = 1 (32 row groups per warp step): chunks of several steps need N >> 128 rows per SM."""
    configure(emu, sms=1)
    g = _gen(11)
    n = 20000
    src = torch.randn(n, 1, generator=g)
    index = _index(kind, n, 300 if kind == "sorted" else 40, g)
    for reduce in ("sum", "max"):
        check_scatter(emu, src, index, 300, reduce)


def test_scatter_independent_of_block_order_and_concurrency(emu):
    g = _gen(12)
    src = torch.randint(-3, 4, (3000, 4), generator=g).float()
    index = torch.randint(0, 50, (3000,), generator=g)
    results = []
    for order, conc in ((0, 1), (1, 3), (2, 2)):
        configure(emu, block_order=order, concurrent_blocks=conc)
        out_max = check_scatter(emu, src, index, 50, "max")
        out_sum = check_scatter(emu, src, index, 50, "sum")
        results.append((out_max, out_sum[0]))
    for (m, s) in results[1:]:
        assert torch.equal(m[1], results[0][0][1]) and torch.equal(s, results[0][1])  # integers: exact in any order
    assert any(name.startswith("segment_run_kernel") for name, *_ in launches(emu))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_edge_cases(emu, reduce, dtype):
    g = _gen(5)
    nan, inf = float("nan"), float("inf")
    special = torch.tensor([[1.0, -0.0], [nan, 0.0], [-inf, -0.0], [2.0, 0.0], [inf, 3.0], [nan, -inf], [0.0, 0.0]],
                           dtype=dtype)
    cases = [
        (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long), 3),  # no rows
        (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long), 0),  # nothing at all
        (torch.randn(5, 0, dtype=dtype), torch.tensor([0, 1, 1, 0, 2]), 3),  # no channels
        (torch.randn(1, 4, generator=g, dtype=dtype), torch.tensor([2]), 3),  # one row
        (torch.randn(1, 1, generator=g, dtype=dtype), torch.tensor([0]), 1),  # one element
        (torch.ones(6, 2, dtype=dtype), torch.zeros(6, dtype=torch.long), 1),  # all ties in one segment
        (special, torch.tensor([0, 0, 1, 1, 2, 2, 0]), 4),  # NaN, +-inf, +-0 (first row wins, sign kept)
        (special, torch.tensor([0, 1, 0, 1, 0, 1, 0]), 2),
    ]
    for src, index, dim_size in cases:
        check_scatter(emu, src, index, dim_size, reduce)


def test_scatter_index_out_of_range_raises_like_cpu(emu):
    src = torch.randn(50, 3)
    for bad in (-1, 7):
        index = torch.randint(0, 7, (50,), generator=_gen(1))
        index[31] = bad
        for reduce in ("sum", "max"):
            _same_error(lambda: emu.scatter_reduce(src, index, 7, reduce),
                        lambda: torch.ops.geomdl.scatter_reduce(src, index, 7, reduce), ValueError)
        _same_error(lambda: emu.segment_softmax(src, index, 7), lambda: torch.ops.geomdl.segment_softmax(src, index, 7),
                    ValueError)
    index = torch.zeros(50, dtype=torch.long)  # dim_size 0 with rows
    _same_error(lambda: emu.scatter_reduce(src, index, 0, "sum"),
                lambda: torch.ops.geomdl.scatter_reduce(src, index, 0, "sum"), ValueError)


@pytest.mark.parametrize("offset,dtype,channels", [(1, torch.float32, 8), (2, torch.float32, 8), (1, torch.float64, 4)])
def test_scatter_misaligned_src(emu, offset, dtype, channels):
    """src not 16-byte aligned: narrower vector loads (a misaligned vector load would be a device fault)."""
    g = _gen(4)
    n = 500
    flat = torch.randn(n * channels + offset, generator=g, dtype=torch.float64).to(dtype)
    src = flat[offset:].view(n, channels)
    assert src.is_contiguous() and src.data_ptr() % 16 != 0
    index = torch.randint(0, 30, (n,), generator=g)
    for reduce in ("sum", "mean", "max", "min"):
        check_scatter(emu, src, index, 30, reduce)
    y = emu.segment_softmax(src, index, 30)
    torch.testing.assert_close(y, torch.ops.geomdl.segment_softmax(src, index, 30))


@pytest.fixture
def deterministic():
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(old)


def _row_order_sums(src, index, dim_size, mean):
    """out[s] = (((0 + src[i0]) + src[i1]) + ...) over the rows of s in row order, in src's dtype."""
    out = torch.zeros(dim_size, src.shape[1], dtype=src.dtype)
    for i, s in enumerate(index.tolist()):
        out[s] = out[s] + src[i]
    if mean:
        count = torch.bincount(index, minlength=dim_size)
        nz = count > 0
        out[nz] = out[nz] / count[nz].unsqueeze(1).to(src.dtype)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_deterministic_mode_is_the_row_order_sum(emu, deterministic, dtype):
    g = _gen(21)
    for channels in (1, 3, 8):  # scalar, scalar, vector columns
        n, segments = 260, 17
        src = torch.randn(n, channels, generator=g, dtype=torch.float64).to(dtype)
        index = torch.randint(0, segments - 2, (n,), generator=g)
        for reduce in ("sum", "mean"):
            out, arg = emu.scatter_reduce(src, index, segments, reduce)
            want = _row_order_sums(src, index, segments, reduce == "mean")
            assert torch.equal(_bits(out), _bits(want)), f"{reduce}: not the row-order sum"
            assert arg.numel() == 0
        for reduce in ("max", "min"):
            check_scatter(emu, src, index, segments, reduce)
        y = emu.segment_softmax(src, index, segments)
        _assert_softmax_close(y, torch.ops.geomdl.segment_softmax(src, index, segments))
    names = {name.split("<")[0] for name, *_ in launches(emu)}
    assert {"csr_ptr_kernel", "csr_sum_kernel", "csr_softmax_kernel"} <= names
    index[3] = segments  # out of range: raised from the sorted index's ends
    _same_error(lambda: emu.scatter_reduce(src, index, segments, "sum"),
                lambda: torch.ops.geomdl.scatter_reduce(src, index, segments, "sum"), ValueError)


def _assert_softmax_close(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(torch.isnan(got), torch.isnan(want)), "NaN positions differ"
    tol = {torch.float32: 2e-6, torch.float64: 1e-14}[got.dtype]
    fin = ~torch.isnan(want)
    assert bool(((got[fin] - want[fin]).abs() <= tol * (1 + want[fin].abs())).all())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,channels,rows", [("random", 1, 400), ("sorted", 6, 900), ("empty_segments", 8, 300),
                                                ("random", 5, 300)])
def test_segment_softmax_matches_cpu_kernel(emu, dtype, kind, channels, rows):
    configure(emu, sms=1)
    g = _gen(rows + channels)
    src = _src(kind, rows, channels, dtype, g) * 4
    index = _index(kind, rows, 19, g)
    y = emu.segment_softmax(src, index, 19)
    _assert_softmax_close(y, torch.ops.geomdl.segment_softmax(src, index, 19))
    from geomdl.ops import segment_softmax_reference

    _assert_softmax_close(y, segment_softmax_reference(src, index, 19).to(dtype))


def test_segment_softmax_special_values(emu):
    nan, inf = float("nan"), float("inf")
    for dtype in DTYPES:
        src = torch.tensor([[1.0, -inf], [nan, -inf], [3.0, 2.0], [-inf, 5.0], [0.5, -inf], [inf, 1.0]], dtype=dtype)
        index = torch.tensor([0, 1, 1, 3, 3, 0])
        for n_seg in (4, 6):
            _assert_softmax_close(emu.segment_softmax(src, index, n_seg),
                                  torch.ops.geomdl.segment_softmax(src, index, n_seg))
        empty = torch.zeros(0, 3, dtype=dtype)
        assert emu.segment_softmax(empty, torch.zeros(0, dtype=torch.long), 2).shape == (0, 3)


@pytest.mark.parametrize("deterministic_mode", [False, True])
def test_segment_softmax_float32_long_segment_within_ulps_of_float64(emu, deterministic_mode):
    """The denominators are summed in double (atomics, and the row-order sum of deterministic mode): a segment
    of ~50,000 nearly equal logits (every exp(x - max) about 1) is within 4 float32 ulps of float64 (measured:
    0.94), where the float sums were 8 (atomics) and 450 (deterministic) ulps off. Bound: 4 eps y64 (1 + |x - max|)
    (x - max is rounded in float32)."""
    g = _gen(31)
    n = 50_000
    src = torch.rand(n, 4, generator=g) * torch.tensor([0.01, 0.01, 1.0, 4.0])  # 4 columns: float4 loads
    index = (torch.rand(n, generator=g) < 0.02).long()  # segment 1: ~1000 rows, segment 0 the rest
    old = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic_mode)
    try:
        y = emu.segment_softmax(src, index, 2)
    finally:
        torch.use_deterministic_algorithms(old)
    x64 = src.double()
    y64 = torch.ops.geomdl.segment_softmax(x64, index, 2)
    mx = torch.full((2, 4), -math.inf, dtype=torch.float64).scatter_reduce(0, index.unsqueeze(1).expand(-1, 4), x64, "amax")
    bound = torch.finfo(torch.float32).eps * y64 * (1 + (x64 - mx[index]).abs())
    ulps = ((y.double() - y64).abs() / bound).max().item()
    assert ulps <= 4, f"float32 softmax {ulps:.1f} eps off the float64 result"


# =====================================================================================================
# radius and knn (kernels/neighbors/radius_cuda.cu, knn_cuda.cu, search_common.cuh, grid_build.cuh)
# =====================================================================================================


def _ptrs(batch_x, batch_y, nx, ny):
    from geomdl.ops._validation import batch_to_ptr

    bx = torch.zeros(nx, dtype=torch.long) if batch_x is None else batch_x
    by = torch.zeros(ny, dtype=torch.long) if batch_y is None else batch_y
    nb = 1 + max(int(bx.max()) if bx.numel() else 0, int(by.max()) if by.numel() else 0)
    return batch_to_ptr(bx, nb), batch_to_ptr(by, nb)


def check_radius(emu, x, y, r, batch_x=None, batch_y=None, limit=32, ignore=False, reference=True):
    from geomdl.ops import radius_reference

    px, py = _ptrs(batch_x, batch_y, x.shape[0], y.shape[0])
    got = emu.radius(x, y, float(r), px, py, limit, ignore)
    want = torch.ops.geomdl.radius(x, y, float(r), px, py, limit, ignore)
    assert torch.equal(got, want), f"radius differs from the CPU kernel ({got.shape[1]} vs {want.shape[1]} edges)"
    if reference:
        ref = radius_reference(x, y, r, batch_x, batch_y, max_num_neighbors=limit, ignore_same_index=ignore)
        assert torch.equal(got, ref), "radius differs from the reference"
    return got


def check_knn(emu, x, y, k, batch_x=None, batch_y=None, ignore=False, reference=True):
    from geomdl.ops import knn_reference

    px, py = _ptrs(batch_x, batch_y, x.shape[0], y.shape[0])
    got = emu.knn(x, y, k, px, py, ignore)
    want = torch.ops.geomdl.knn(x, y, k, px, py, ignore)
    assert torch.equal(got, want), f"knn differs from the CPU kernel ({got.shape[1]} vs {want.shape[1]} edges)"
    if reference:
        assert torch.equal(got, knn_reference(x, y, k, batch_x, batch_y, ignore_same_index=ignore)), "knn != reference"
    return got


def _sorted_batch(n, clouds, g, empty=()):
    allowed = torch.tensor([c for c in range(clouds) if c not in empty])
    return torch.sort(allowed[torch.randint(0, len(allowed), (n,), generator=g)]).values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_radius_batches(emu, dim, dtype):
    g = _gen(dim)
    pos = torch.rand(300, dim, generator=g, dtype=torch.float64).to(dtype)
    batch = _sorted_batch(300, 4, g, empty=(2,))
    r = {1: 0.01, 2: 0.1, 3: 0.25, 5: 0.55}[dim]
    for limit, ignore in ((4, True), (70, False), (10**6, True)):  # 70 > 64: heap in global memory
        check_radius(emu, pos, pos, r, batch, batch, limit, ignore)


def test_radius_queries_and_points_differ(emu):
    g = _gen(3)
    x = torch.rand(300, 3, generator=g)
    y = torch.rand(200, 3, generator=g) * 1.2 - 0.1
    bx, by = _sorted_batch(300, 5, g, empty=(1, 3)), _sorted_batch(200, 5, g, empty=(2, 3))
    for r, limit in ((0.1, 50), (0.3, 8), (5.0, 500)):
        check_radius(emu, x, y, r, bx, by, limit)
    check_radius(emu, x, y, 0.3, bx, by, 80, ignore=True)


def test_radius_truncation_local_and_heap(emu):
    g = _gen(11)
    pos = torch.rand(400, 3, generator=g)
    for limit in (1, 63, 64, 65, 129):
        check_radius(emu, pos, pos, 0.35, None, None, limit, True)


def test_radius_ties_duplicates_and_degenerate_clouds(emu):
    g = _gen(13)
    check_radius(emu, torch.zeros(40, 3), torch.zeros(40, 3), 0.1, None, None, 5, True)  # all duplicates
    check_radius(emu, torch.zeros(100, 2), torch.zeros(100, 2), 0.5, None, None, 80, False)
    side = 5
    lattice = torch.stack(torch.meshgrid(*[torch.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for scale in (1.0, 0.1):  # neighbours exactly at distance r
        p = lattice.double() * scale
        check_radius(emu, p, p, scale, None, None, 100, True)
        p32 = p.float()
        check_radius(emu, p32, p32, float(p32[1, -1]), None, None, 100, True)
    base = torch.rand(300, 3, generator=g, dtype=torch.float64)
    check_radius(emu, base + 1e6, base + 1e6, 0.1, None, None, 40, True)  # far from the origin
    flat = base.clone()
    flat[:, 1] = 0.5  # one dimension without extent
    check_radius(emu, flat, flat, 0.05, None, None, 40, True)
    check_radius(emu, base, base, 1e-9, None, None, 40, True)
    check_radius(emu, torch.zeros(0, 3), torch.zeros(0, 3), 1.0)
    check_radius(emu, torch.rand(5, 3, generator=g), torch.zeros(0, 3), 0.5)
    check_radius(emu, torch.zeros(0, 3), torch.rand(5, 3, generator=g), 0.5)
    x5 = torch.rand(5, 3, generator=g)  # points and queries in different clouds: no edges
    check_radius(emu, x5, x5, 10.0, torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long))


@pytest.mark.parametrize("dtype", DTYPES)
def test_radius_and_knn_large_cloud(emu, dtype):
    """10000 points in one cloud: several bounding-box tiles (8192 points each) merged with atomics."""
    g = _gen(19)
    pos = torch.rand(10000, 3, generator=g, dtype=torch.float64).to(dtype)
    check_radius(emu, pos, pos, 0.03, None, None, 32, True)
    check_knn(emu, pos, pos, 8, ignore=True)
    assert sum(name.startswith("bbox_kernel") and grid == (2, 1, 1) for name, grid, *_ in launches(emu)) == 2


def test_radius_and_knn_grid_cap(emu):
    """Clouds whose natural cells would be far too many: the grid is capped (cells grow); CPU kernel only."""
    g = _gen(17)
    p = (torch.rand(1000, 3, generator=g, dtype=torch.float64) - 0.5) * 1e6
    p[500:] = p[:500] + torch.rand(500, 3, generator=g, dtype=torch.float64) * 1e-3
    check_radius(emu, p, p, 1e-3, None, None, 16, True, reference=False)
    check_knn(emu, p, p, 4, ignore=True, reference=False)
    mixed = torch.cat([torch.rand(700, 3, generator=g) * 1e-2, torch.rand(30, 3, generator=g) * 1e7])
    check_radius(emu, mixed, mixed, 1e-3, None, None, 32, True, reference=False)
    check_knn(emu, mixed, mixed, 8, ignore=True, reference=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, 2, 3, 6])
def test_knn_batches(emu, dim, dtype):
    g = _gen(20 + dim)
    pos = torch.randn(300, dim, generator=g, dtype=torch.float64).to(dtype)
    batch = _sorted_batch(300, 4, g, empty=(0,))
    for k, ignore in ((1, True), (16, False), (70, True), (200, False)):  # 70, 200 > 64: heap; 200 > cloud size
        check_knn(emu, pos, pos, k, batch, batch, ignore)


def test_knn_queries_duplicates_and_empty(emu):
    g = _gen(3)
    x = torch.rand(300, 3, generator=g, dtype=torch.float64)
    y = torch.cat([x[:100], x[:30] + 100.0])  # queries far outside the points' box
    for k in (9, 80):
        check_knn(emu, x, y, k)
        check_knn(emu, x, y, k, ignore=True)
    x = torch.rand(300, 3, generator=g)
    y = torch.rand(200, 3, generator=g) * 1.2 - 0.1
    bx, by = _sorted_batch(300, 5, g, empty=(1, 3)), _sorted_batch(200, 5, g, empty=(2, 3))
    for k in (1, 8, 1000):
        check_knn(emu, x, y, k, bx, by)
    dup = torch.rand(50, 2, generator=g)
    dup = torch.cat([dup, dup])
    for k in (4, 90):
        check_knn(emu, dup, dup, k, ignore=True)
    check_knn(emu, torch.zeros(40, 3), torch.zeros(40, 3), 3)
    check_knn(emu, torch.zeros(0, 3), torch.zeros(0, 3), 3)
    check_knn(emu, torch.zeros(1, 3), torch.zeros(1, 3), 3, ignore=True)
    x5 = torch.rand(5, 3, generator=g)
    check_knn(emu, x5, x5, 3, torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.long))


# =====================================================================================================
# fps (kernels/fps/fps_cuda.cu)
# =====================================================================================================


def check_fps(emu, pos, batch=None, num=None, ratio=None, start=None):
    from geomdl.ops import fps_reference
    from geomdl.ops.fps import _plan

    ptr, take, st = _plan(pos, batch, ratio, num, False, None, start)
    got = emu.fps(pos, ptr, take, st)
    assert torch.equal(got, torch.ops.geomdl.fps(pos, ptr, take, st)), "fps differs from the CPU kernel"
    assert torch.equal(got, fps_reference(pos, batch, ratio=ratio, num=num, start=start)), "fps differs from the reference"
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [1, 2, 3, 7])  # 7: the generic (runtime dimension) kernel
def test_fps_batches_in_shared_memory(emu, dim, dtype):
    g = _gen(10 + dim)
    pos = torch.randn(500, dim, generator=g, dtype=torch.float64).to(dtype)
    batch = torch.sort(torch.tensor([0, 1, 3, 4])[torch.randint(0, 4, (500,), generator=g)]).values  # cloud 2 empty
    check_fps(emu, pos, batch, num=25, start=torch.tensor([5, 0, 0, 17, 2]))
    check_fps(emu, pos, batch, ratio=0.05)
    (name, grid, block, smem, _), = launches(emu)[-1:]
    assert grid == (4, 1, 1) and block == (256, 1, 1) and smem == 8 * int(torch.bincount(batch).max())


def test_fps_global_memory_path(emu):
    """Clouds too large for the (here reduced) shared memory: running minima in a global array."""
    configure(emu, smem_optin=4096)
    g = _gen(5)
    pos = torch.rand(900, 3, generator=g)
    batch = torch.cat([torch.zeros(600, dtype=torch.long), torch.ones(300, dtype=torch.long)])
    check_fps(emu, pos, batch, num=30, start=torch.tensor([100, 299]))
    (_, _, block, smem, _), = launches(emu)
    assert smem == 0 and block == (256, 1, 1)


def test_fps_large_cloud_opt_in_shared_memory(emu):
    """More than 2048 points: 1024-thread blocks; more than 48 KiB of minima: cudaFuncSetAttribute needed."""
    g = _gen(6)
    n = 6500
    pos = torch.rand(n, 3, generator=g)
    batch = torch.cat([torch.zeros(n - 300, dtype=torch.long), torch.ones(300, dtype=torch.long)])
    check_fps(emu, pos, batch, num=5, start=torch.tensor([n // 3, 299]))
    (_, grid, block, smem, _), = launches(emu)
    assert grid == (2, 1, 1) and block == (1024, 1, 1) and smem == 8 * (n - 300) > 48 * 1024


def test_fps_ties_and_edge_cases(emu):
    g = _gen(7)
    check_fps(emu, torch.zeros(5, 3), num=5)  # all points equal: lowest index on ties
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    assert check_fps(emu, square, num=4).tolist() == [0, 3, 1, 2]
    check_fps(emu, torch.rand(30, 2, generator=g).repeat(3, 1), num=90)  # duplicates, every point
    lattice = torch.stack(torch.meshgrid(*[torch.arange(8.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    check_fps(emu, lattice, num=20, start=torch.tensor([511]))
    check_fps(emu, torch.zeros(0, 3), num=4)
    check_fps(emu, torch.zeros(1, 3), ratio=0.5)
    pos = torch.rand(7, 3, generator=g)
    check_fps(emu, pos, torch.tensor([0, 1, 1, 1, 2, 3, 3]), num=3)
    ptr, num, start = torch.tensor([0, 7]), torch.tensor([8]), torch.tensor([0])  # more samples than points
    _same_error(lambda: emu.fps(pos, ptr, num, start), lambda: torch.ops.geomdl.fps(pos, ptr, num, start), RuntimeError)


# =====================================================================================================
# gaunt_columns (kernels/gaunt/gaunt_cuda.cu), through the Python wrappers of geomdl.o3.gaunt_kernel
# =====================================================================================================


@pytest.fixture
def gaunt_emulated(emu, monkeypatch):
    """Routes geomdl.o3.gaunt_kernel's calls of torch.ops.geomdl.gaunt_columns to the emulated CUDA kernel; every
    call also runs the CPU kernel on the same arguments and compares. Yields the list of compared calls."""
    from geomdl.o3 import gaunt_kernel as gk

    calls = []

    def both(*args):
        got = emu.gaunt_columns(*args)
        want = torch.ops.geomdl.gaunt_columns(*args)
        assert len(got) == len(want)
        for g_, w_ in zip(got, want):
            _assert_gaunt_close(g_, w_, "emulated CUDA vs CPU kernel")
        calls.append(args)
        return got

    route_op(monkeypatch, gk, "gaunt_columns", both)
    yield calls


def _assert_gaunt_close(got, want, what):
    got, want = got.detach(), want.detach()
    assert got.shape == want.shape and got.dtype == want.dtype, what
    if want.numel() == 0:
        return
    assert bool(torch.isfinite(got).all()), f"{what}: non-finite values"
    scale = float(want.double().abs().max()) or 1.0
    err = float((got.double() - want.double()).abs().max()) / scale
    assert err < (1e-12 if got.dtype == torch.float64 else 2e-5), f"{what}: relative error {err:.3g}"


GAUNT_DEGREES = [(0, 0, 0), (1, 1, 2), (2, 3, 4), (3, 1, 5), (4, 4, 6), (5, 2, 3)]
# The degrees of tests/o3/test_cuda_gaunt.py: L = 0, Lo below / above L1 + L2, unequal, odd/even torus halves, up
# to 8 (float64 L = 8: tiles of 16 columns at the default opt-in shared memory).
GAUNT_MORE_DEGREES = [(0, 3, 5), (4, 0, 4), (3, 5, 2), (2, 2, 7), (6, 6, 6), (5, 2, 9), (8, 8, 8), (8, 3, 6), (2, 8, 8),
                      (7, 7, 0), (0, 8, 1), (4, 6, 5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1,l2,lo", GAUNT_DEGREES)
def test_gaunt_columns_forward_and_fused_backward(emu, gaunt_emulated, l1, l2, lo, dtype):
    from geomdl.o3.gaunt_kernel import gaunt_columns_backward_compiled, gaunt_columns_compiled
    from geomdl.o3.gaunt_product import _gaunt_columns_backward_reference, _gaunt_columns_reference

    for cols in (0, 1, 33):  # no column, one, a tile of 32 and one more
        g = _gen(100 * l1 + 10 * l2 + lo + cols)
        make = lambda l: torch.randn((l + 1) ** 2, cols, generator=g, dtype=torch.float64)  # noqa: E731
        x1, x2, grad = make(l1), make(l2), make(lo)
        z = gaunt_columns_compiled(x1.to(dtype), x2.to(dtype), lo)
        _assert_gaunt_close(z, _gaunt_columns_reference(x1, x2, lo).to(dtype), "forward vs reference")
        d1, d2 = gaunt_columns_backward_compiled(grad.to(dtype), x1.to(dtype), x2.to(dtype))
        w1, w2 = _gaunt_columns_backward_reference(grad, x1, x2)
        _assert_gaunt_close(d1, w1.to(dtype), "dx1 vs reference")
        _assert_gaunt_close(d2, w2.to(dtype), "dx2 vs reference")
        o1, _ = gaunt_columns_backward_compiled(grad.to(dtype), x1.to(dtype), x2.to(dtype), need1=True, need2=False)
        _, o2 = gaunt_columns_backward_compiled(grad.to(dtype), x1.to(dtype), x2.to(dtype), need1=False, need2=True)
        _assert_gaunt_close(o1, d1, "dx1 alone vs fused")
        _assert_gaunt_close(o2, d2, "dx2 alone vs fused")
    assert len(gaunt_emulated) == 12  # every call went through the emulated kernel (and the CPU kernel)
    blocks = {block for _, _, block, _, _ in launches(emu)}
    assert blocks == {(32, 8, 1)}  # tiles of 32 columns x 8 thread rows


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaunt_columns_more_degrees(emu, gaunt_emulated, dtype):
    from geomdl.o3.gaunt_kernel import gaunt_columns_backward_compiled, gaunt_columns_compiled
    from geomdl.o3.gaunt_product import _gaunt_columns_backward_reference, _gaunt_columns_reference

    for l1, l2, lo in GAUNT_MORE_DEGREES:
        g = _gen(100 * l1 + 10 * l2 + lo)
        cols = 33
        make = lambda l: torch.randn((l + 1) ** 2, cols, generator=g, dtype=torch.float64)  # noqa: E731
        x1, x2, grad = make(l1), make(l2), make(lo)
        z = gaunt_columns_compiled(x1.to(dtype), x2.to(dtype), lo)
        _assert_gaunt_close(z, _gaunt_columns_reference(x1, x2, lo).to(dtype), f"forward {l1, l2, lo} vs reference")
        d1, d2 = gaunt_columns_backward_compiled(grad.to(dtype), x1.to(dtype), x2.to(dtype))
        w1, w2 = _gaunt_columns_backward_reference(grad, x1, x2)
        _assert_gaunt_close(d1, w1.to(dtype), f"dx1 {l1, l2, lo} vs reference")
        _assert_gaunt_close(d2, w2.to(dtype), f"dx2 {l1, l2, lo} vs reference")
    assert len(gaunt_emulated) == 2 * len(GAUNT_MORE_DEGREES)
    tiles = {block[0] for _, _, block, _, _ in launches(emu)}
    assert tiles == ({32, 16} if dtype == torch.float64 else {32})


def test_gaunt_smaller_tiles_and_blocks_looping_over_tiles(emu, gaunt_emulated):
    """Tiles of 16 and 8 columns when 32 do not fit the (reduced) opt-in shared memory; one SM, so that fewer blocks
    than tiles loop over the tiles (shared memory reused from tile to tile); the error when not even 8 fit."""
    from geomdl.o3.gaunt_kernel import gaunt_columns_backward_compiled, gaunt_columns_compiled
    from geomdl.o3.gaunt_product import _gaunt_columns_backward_reference, _gaunt_columns_reference

    configure(emu, sms=1)
    g = _gen(8)
    l1, l2, lo, cols = 4, 3, 6, 100
    x1 = torch.randn((l1 + 1) ** 2, cols, generator=g, dtype=torch.float64)
    x2 = torch.randn((l2 + 1) ** 2, cols, generator=g, dtype=torch.float64)
    grad = torch.randn((lo + 1) ** 2, cols, generator=g, dtype=torch.float64)
    d1, d2 = gaunt_columns_backward_compiled(grad, x1, x2)
    w1, w2 = _gaunt_columns_backward_reference(grad, x1, x2)
    _assert_gaunt_close(d1, w1, "dx1 vs reference")
    _assert_gaunt_close(d2, w2, "dx2 vs reference")
    (_, grid, block, _, _), = launches(emu)
    assert grid[0] < math.ceil(cols / block[0])
    want = _gaunt_columns_reference(x1, x2, lo)
    tiles = []
    for _ in range(3):
        _assert_gaunt_close(gaunt_columns_compiled(x1, x2, lo), want, "forward vs reference")
        (_, grid, block, smem, _), = launches(emu)
        tiles.append(block[0])
        assert block[0] * block[1] == 256 and grid[0] < math.ceil(cols / block[0])
        configure(emu, smem_optin=smem - 1)  # the next tile size down
    assert tiles == [32, 16, 8]
    with pytest.raises(RuntimeError, match=r"shared memory per block of 8 columns"):
        gaunt_columns_compiled(x1, x2, lo)


def test_gaunt_e3nn_features_layout(emu, gaunt_emulated):
    """e3nn features [N, C x l] read and written in place (channel stride 2l+1, node stride dim), absent degrees."""
    from geomdl.nn.tensor_products._layout import from_columns, to_columns
    from geomdl.o3 import gaunt_product_columns
    from geomdl.o3.gaunt_kernel import gaunt_features
    from geomdl import ops
    from e3nn import o3 as e3o3

    def irreps(spec):
        return e3o3.Irreps([(m, (l, (-1) ** l)) for m, l in spec])

    cases = [([(3, 0), (3, 1), (3, 2)], [(3, 0), (3, 2)], [(3, 0), (3, 1), (3, 2), (3, 3)]),
             ([(2, 1), (2, 3)], [(2, 0), (2, 1)], [(2, 0), (2, 2), (2, 4)])]  # absent degrees in and out
    for dtype in DTYPES:
        for ix, iy, iz in cases:
            g = _gen(len(ix) + len(iz))
            rx, ry, rz = irreps(ix), irreps(iy), irreps(iz)
            n = 7
            x = torch.randn(n, rx.dim, generator=g, dtype=torch.float64)
            y = torch.randn(n, ry.dim, generator=g, dtype=torch.float64)
            w = torch.randn(n, rz.dim, generator=g, dtype=torch.float64)
            xs, ys = x.to(dtype).requires_grad_(), y.to(dtype).requires_grad_()
            z = gaunt_features(xs, ys, ix, iy, iz)
            gx, gy = torch.autograd.grad((z * w.to(dtype)).sum(), (xs, ys))  # the fused backward, emulated
            lx, ly, lz = (max(l for _, l in s) for s in (ix, iy, iz))
            xr, yr = x.clone().requires_grad_(), y.clone().requires_grad_()
            with ops.use_backend("reference"):  # (the backward too: it picks its backend when it runs)
                want = from_columns(gaunt_product_columns(to_columns(xr, rx, lx), to_columns(yr, ry, ly), lz), rz, n)
                wx, wy = torch.autograd.grad((want * w).sum(), (xr, yr))
            want = want.detach()
            _assert_gaunt_close(z, want.to(dtype), "features vs reference")
            _assert_gaunt_close(gx, wx.to(dtype), "d/dx vs reference")
            _assert_gaunt_close(gy, wy.to(dtype), "d/dy vs reference")
    assert len(gaunt_emulated) == 8  # forward and fused backward of each case, emulated (and on the CPU kernel)


# =====================================================================================================
# sparse_trilinear (kernels/trilinear/trilinear_cuda.cu)
# =====================================================================================================


def _trilinear_plan(g, widths, n):
    from geomdl.ops.trilinear import TrilinearPlan

    entries = torch.stack([torch.randint(0, w, (n,), generator=g) for w in widths], 1)
    if n > 3:
        entries[1] = entries[0]  # a duplicate entry adds up
    return TrilinearPlan(entries, torch.randn(n, generator=g, dtype=torch.float64), widths)


def check_trilinear(emu, plan, rows_each, dtype, g, role=0):
    """One role of the plan on random operands: emulated CUDA kernel == CPU kernel (same tables, same
    per-row order of the sums, so float64 agrees to rounding of contraction-free code) == reference."""
    from geomdl.ops.trilinear import _kernel_order, _reference_role

    r = plan.roles[role]
    ops_ = [torch.randn(rows, plan.widths[s], generator=g, dtype=torch.float64).to(dtype)
            for rows, s in zip(rows_each, r.slots)]
    x1, x2, x3 = _kernel_order(r, ops_)
    tables = r.tables(dtype, torch.device("cpu"))
    got = emu.sparse_trilinear(x1, x2, x3, *tables, r.width)
    want = torch.ops.geomdl.sparse_trilinear(x1, x2, x3, *tables, r.width)
    ref = _reference_role(r, x1.double(), x2.double(), x3.double())
    assert got.shape == want.shape == ref.shape and got.dtype == dtype
    if ref.numel():
        bound = (1e-12 if dtype == torch.float64 else 1e-5) * max(float(ref.abs().max()), 1.0)
        assert float((got.double() - want.double()).abs().max()) <= bound, "differs from the CPU kernel"
        assert float((got.double() - ref).abs().max()) <= bound, "differs from the reference"
    return got


@pytest.mark.parametrize("dtype", DTYPES)
def test_trilinear_tiles_and_every_role(emu, dtype):
    g = _gen(30)
    plan = _trilinear_plan(g, (37, 29, 11, 13), 400)
    for rows in (1, 31, 32, 33, 65, 200):  # around the tiles of 32 rows
        for role in range(4):
            check_trilinear(emu, plan, (rows,) * 3, dtype, g, role)
    (name, grid, block, smem, _), = launches(emu)[-1:]
    assert name == "kernel" and block == (256, 1, 1)
    assert grid == (7, 1, 1)  # 200 rows: 7 tiles of 32


@pytest.mark.parametrize("rows_each", [(40, 1, 40), (1, 40, 1), (40, 40, 1), (1, 1, 1)])
def test_trilinear_broadcast_rows(emu, rows_each):
    g = _gen(31)
    plan = _trilinear_plan(g, (7, 5, 4, 3), 40)
    for role in range(4):
        check_trilinear(emu, plan, rows_each, torch.float64, g, role)


def test_trilinear_smaller_tiles_and_global_memory_path(emu):
    """Less shared memory: tiles of fewer rows (warps then span several targets); none: the unstaged path."""
    g = _gen(32)
    plan = _trilinear_plan(g, (50, 40, 30, 20), 600)
    row_bytes = 8 * sum(w | 1 for w in plan.widths)
    for tr in (16, 4, 1):
        configure(emu, smem_optin=row_bytes * tr + 8)
        check_trilinear(emu, plan, (70, 70, 70), torch.float64, g)
        (_, grid, _, smem, _), = launches(emu)
        assert smem == row_bytes * tr and grid == (-(-70 // tr), 1, 1)
    configure(emu, smem_optin=row_bytes // 2)  # not even one row
    for rows_each in [(70, 70, 70), (70, 1, 70), (1, 70, 70), (70, 70, 1), (1, 1, 1)]:
        for role in range(4):
            check_trilinear(emu, plan, rows_each, torch.float64, g, role)
            (_, grid, _, smem, _), = launches(emu)
            assert smem == 0 and grid == ((3 if max(rows_each) == 70 else 1), 1, 1)


def test_trilinear_one_sm_loops_over_tiles(emu):
    configure(emu, sms=1, concurrent_blocks=1)
    g = _gen(33)
    plan = _trilinear_plan(g, (9, 8, 7, 6), 120)
    check_trilinear(emu, plan, (500, 500, 500), torch.float32, g)
    (_, grid, _, _, _), = launches(emu)
    assert grid[0] < 16  # fewer CTAs than the 16 tiles: each loops


def test_trilinear_edge_cases(emu):
    from geomdl.ops.trilinear import TrilinearPlan

    g = _gen(34)
    widths = (7, 5, 4, 3)
    plan = _trilinear_plan(g, widths, 40)
    check_trilinear(emu, plan, (0, 0, 0), torch.float64, g)
    check_trilinear(emu, plan, (0, 1, 1), torch.float64, g)
    empty = TrilinearPlan(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0), widths)
    assert not check_trilinear(emu, empty, (3, 3, 3), torch.float64, g).any()
    one = TrilinearPlan(torch.tensor([[2, 1, 0, 2]]), torch.tensor([1.5]), widths)
    check_trilinear(emu, one, (3, 3, 3), torch.float32, g)
    no_columns = TrilinearPlan(torch.zeros(0, 4, dtype=torch.long), torch.zeros(0), (0, 5, 4, 3))
    assert check_trilinear(emu, no_columns, (4, 4, 4), torch.float64, g).shape == (4, 0)


def test_trilinear_checks_its_tables_like_the_cpu_kernel(emu):
    x = torch.randn(2, 3)
    ptr = torch.tensor([0, 1])
    for args in [(ptr, ptr, torch.tensor([0]), torch.tensor([[0, 3]]), torch.ones(1), 1),  # column outside
                 (torch.tensor([0, 2]), ptr, torch.tensor([0]), torch.tensor([[0, 0]]), torch.ones(1), 1),  # ptr end
                 (ptr, ptr, torch.tensor([5]), torch.tensor([[0, 0]]), torch.ones(1), 1),  # group column
                 (ptr, ptr, torch.tensor([0]), torch.tensor([[0, 0]]), torch.ones(2), 1),  # sizes
                 (ptr, ptr, torch.tensor([0]), torch.tensor([[0, 0]]), torch.ones(1, dtype=torch.float64), 1)]:
        _same_error(lambda: emu.sparse_trilinear(x, x, x, *args), lambda: torch.ops.geomdl.sparse_trilinear(x, x, x, *args),
                    RuntimeError)
    y = torch.randn(3, 3)  # 3 rows against x's 2
    _same_error(lambda: emu.sparse_trilinear(x, y, x, *args), lambda: torch.ops.geomdl.sparse_trilinear(x, y, x, *args),
                RuntimeError)
    bad = torch.tensor([[0, 3]])
    good = torch.tensor([[0, 0]])
    ok = emu.sparse_trilinear(x, x, x, ptr, ptr, torch.tensor([0]), good, torch.ones(1), 1)  # checked, then cached
    assert torch.equal(ok, x[:, :1] ** 3)
    good.copy_(bad)  # an in-place change bumps the version counter: checked again
    with pytest.raises(RuntimeError, match="outside"):
        emu.sparse_trilinear(x, x, x, ptr, ptr, torch.tensor([0]), good, torch.ones(1), 1)


def test_trilinear_checks_new_tables_at_the_address_of_checked_ones(emu):
    """New tables at the address of checked ones (what a caching allocator gives a table of the same size
    after the old one is freed: same pointer, size and version 0) are other storages: checked again."""
    x = torch.randn(2, 3)
    ptr = torch.tensor([0, 1])
    buf = bytearray(torch.tensor([[0, 0]]).numpy().tobytes())
    good = torch.frombuffer(buf, dtype=torch.long).view(1, 2)
    col, coef = torch.tensor([0]), torch.ones(1)
    ok = emu.sparse_trilinear(x, x, x, ptr, ptr, col, good, coef, 1)  # checked, then cached
    assert torch.equal(ok, x[:, :1] ** 3)
    del good
    buf[8:16] = torch.tensor([3]).numpy().tobytes()  # column 3 of 3: outside x
    bad = torch.frombuffer(buf, dtype=torch.long).view(1, 2)
    assert bad[0, 1] == 3 and bad._version == 0
    with pytest.raises(RuntimeError, match="outside"):
        emu.sparse_trilinear(x, x, x, ptr, ptr, col, bad, coef, 1)


def test_trilinear_through_the_wrapper_with_gradients(emu, monkeypatch):
    """geomdl.ops.sparse_trilinear's autograd (every role, double backward) on the emulated kernel."""
    from geomdl import ops
    from geomdl.ops import trilinear

    calls = []

    def both(*args):
        got = emu.sparse_trilinear(*args)
        want = torch.ops.geomdl.sparse_trilinear(*args)
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
        calls.append(args[-1])
        return got

    route_op(monkeypatch, trilinear, "sparse_trilinear", both)
    g = _gen(35)
    plan = _trilinear_plan(g, (6, 5, 4, 3), 30)
    a, b, w = (torch.randn(r, f, generator=g, dtype=torch.float64).requires_grad_()
               for r, f in zip((5, 5, 1), plan.widths[1:]))
    with ops.use_backend("compiled"):
        assert torch.autograd.gradgradcheck(lambda a, b, w: trilinear.sparse_trilinear(plan, a, b, w) ** 2, (a, b, w))
    assert set(calls) == set(plan.widths)  # forward and the gradient of each operand ran emulated


def test_every_cuda_kernel_source_is_emulated(emu):
    """The emulation covers every kernels/**/*_cuda.cu (a new CUDA source needs tests here)."""
    covered = {"scatter_reduce_cuda.cu", "segment_softmax_cuda.cu", "radius_cuda.cu", "knn_cuda.cu", "fps_cuda.cu",
               "gaunt_cuda.cu", "trilinear_cuda.cu"}
    found = {p.name for p in build.cuda_sources() if p.parent != HERE}
    assert found == covered, f"CUDA sources without emulation tests: {sorted(found - covered)}"
    for op in ("scatter_reduce", "segment_softmax", "radius", "knn", "fps", "gaunt_columns", "sparse_trilinear"):
        assert hasattr(torch.ops.geomdl_emu, op)
