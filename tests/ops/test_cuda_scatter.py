"""CUDA kernels of geomdl::scatter_reduce and geomdl::segment_softmax (kernels/scatter/*_cuda.cu).

Every test starts with ``require_cuda_kernel``: skipped without a GPU, failed when a GPU is present but
the CUDA kernel is missing. The oracles are the pure-PyTorch references, run on the same data (on the
GPU, and in float64 on the CPU), and the CPU kernel for the exact picks of max/min (``arg``).
"""
import pytest
import torch

from geomdl import ops
from geomdl.ops import scatter, scatter_reference, segment_softmax, segment_softmax_reference
from geomdl.testing import assert_kernel_matches_reference
from geomdl.testing.cuda import require_cuda_kernel

REDUCTIONS = ["sum", "mean", "max", "min"]
DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return {"atol": 1e-4, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-10}


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _index(kind, n, segments, g):
    if kind == "random":
        return torch.randint(0, segments, (n,), generator=g)
    if kind == "sorted":
        return torch.randint(0, segments, (n,), generator=g).sort().values
    if kind == "one_segment":
        return torch.full((n,), segments - 1, dtype=torch.long)
    if kind == "empty_segments":  # only every third segment is used, unsorted
        return torch.randint(0, (segments + 2) // 3, (n,), generator=g) * 3
    raise ValueError(kind)


def _scatter_oracle(src, index, dim_size, reduce):
    """float64 CPU reference, and the per-entry error bound of a float sum in any order."""
    s64 = src.detach().double().cpu()
    i = index.cpu()
    ref = scatter_reference(s64, i, dim_size=dim_size, reduce=reduce)
    bound = scatter_reference(s64.abs(), i, dim_size=dim_size, reduce="sum" if reduce == "sum" else "mean")
    return ref, bound


def _assert_close_to_oracle(out, src, index, dim_size, reduce):
    ref, bound = _scatter_oracle(src, index, dim_size, reduce)
    eps = 3e-5 if out.dtype == torch.float32 else 1e-12  # relative to sum |x| (any summation order)
    err = (out.double().cpu() - ref).abs()
    if reduce in ("max", "min"):
        assert torch.equal(out.cpu(), ref.to(out.dtype)), f"{reduce}: picks differ from the reference"
    else:
        assert bool((err <= eps * bound + 1e-30).all()), f"{reduce}: max error {float(err.max()):.3g}"


# ---- scatter: forward against the float64 oracle, forward and backward against the reference ----


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment", "empty_segments"])
@pytest.mark.parametrize("channels", [1, 3, 6, 64, 257])
def test_scatter_matches_reference(reduce, dtype, kind, channels):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(channels)
    n, segments = 3000, 101
    src = torch.randn(n, channels, generator=g, dtype=dtype).to(device)
    index = _index(kind, n, segments, g).to(device)
    with ops.use_backend("compiled"):
        out = scatter(src, index, dim_size=segments, reduce=reduce)
    assert out.device.type == "cuda" and out.shape == (segments, channels) and out.dtype == dtype
    _assert_close_to_oracle(out, src, index, segments, reduce)
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=segments, reduce=reduce, **_tol(dtype))


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment"])
@pytest.mark.parametrize("channels", [1, 5, 16])
def test_scatter_large_crosses_chunk_boundaries(reduce, dtype, kind, channels):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(7)
    n, segments = 100_003, 997
    src = torch.randn(n, channels, generator=g, dtype=dtype).to(device)
    index = _index(kind, n, segments, g).to(device)
    with ops.use_backend("compiled"):
        out = scatter(src, index, dim_size=segments + 2, reduce=reduce)
    _assert_close_to_oracle(out, src, index, segments + 2, reduce)
    assert torch.equal(out[-2:].cpu(), torch.zeros(2, channels, dtype=dtype))  # empty segments give 0
    if dtype == torch.float64:
        assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=segments, reduce=reduce,
                                        atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("tuning", ["8,128", "4,32", "8,1024"])
@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment"])
@pytest.mark.parametrize("channels", [1, 5, 64])
def test_scatter_sum_launch_tunings(monkeypatch, tuning, reduce, kind, channels):
    """GEOMDL_SCATTER_TUNING (unroll, warps per SM; timed by benchmarks/ops_cuda.py) changes only the speed."""
    device = require_cuda_kernel("scatter_reduce")
    monkeypatch.setenv("GEOMDL_SCATTER_TUNING", tuning)
    g = _gen(11)
    n, segments = 100_003, 997
    src = torch.randn(n, channels, generator=g, dtype=torch.float32).to(device)
    index = _index(kind, n, segments, g).to(device)
    with ops.use_backend("compiled"):
        out = scatter(src, index, dim_size=segments + 2, reduce=reduce)
    _assert_close_to_oracle(out, src, index, segments + 2, reduce)


@pytest.mark.parametrize("bad", ["5,128", "8", "8,4", "8,128x", "x"])
def test_scatter_sum_rejects_a_bad_tuning(monkeypatch, bad):
    device = require_cuda_kernel("scatter_reduce")
    monkeypatch.setenv("GEOMDL_SCATTER_TUNING", bad)
    with ops.use_backend("compiled"), pytest.raises(ValueError, match="GEOMDL_SCATTER_TUNING"):
        scatter(torch.ones(4, 2, device=device), torch.zeros(4, dtype=torch.long, device=device), dim_size=1)


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_scatter_other_dims_and_gradcheck(reduce):
    device = require_cuda_kernel("scatter_reduce")
    src = torch.randn(4, 9, 2, dtype=torch.float64, generator=_gen(3)).to(device)
    index = torch.tensor([0, 1, 1, 3, 3, 3, 0, 5, 1], device=device)
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim=1, dim_size=7, reduce=reduce, gradcheck=True)
    assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim=-2, reduce=reduce)


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_scatter_misaligned_src_uses_scalar_loads(reduce):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(4)
    n, c = 2000, 8
    flat = torch.randn(n * c + 1, generator=g).to(device)
    src = flat[1:].view(n, c)  # 4-byte offset: no 16-byte vector loads
    assert src.is_contiguous() and src.data_ptr() % 16 != 0
    index = torch.randint(0, 50, (n,), generator=g).to(device)
    with ops.use_backend("compiled"):
        out = scatter(src, index, dim_size=50, reduce=reduce)
    _assert_close_to_oracle(out, src, index, 50, reduce)


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_edge_cases(reduce, dtype):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(5)
    cases = [
        (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long), 3),  # empty input, non-empty output
        (torch.zeros(0, 4, dtype=dtype), torch.zeros(0, dtype=torch.long), None),  # empty everything
        (torch.randn(1, 4, generator=g, dtype=dtype), torch.tensor([2]), None),  # one row
        (torch.randn(1, 1, generator=g, dtype=dtype), torch.tensor([0]), 1),  # one element
        (torch.ones(6, 2, dtype=dtype), torch.zeros(6, dtype=torch.long), 1),  # duplicates, all ties
        (torch.randn(5, 0, dtype=dtype), torch.tensor([0, 1, 1, 0, 2]), 3),  # zero channels
        (torch.randint(-2, 3, (300, 7), generator=g).to(dtype), torch.randint(0, 9, (300,), generator=g), 12),  # ties
    ]
    for src, index, dim_size in cases:
        src, index = src.to(device), index.to(device)
        assert_kernel_matches_reference(scatter, scatter_reference, src, index, dim_size=dim_size, reduce=reduce,
                                        **_tol(dtype))
        with ops.use_backend("compiled"):
            out = scatter(src, index, dim_size=dim_size, reduce=reduce)
        ref = scatter_reference(src.cpu(), index.cpu(), dim_size=dim_size, reduce=reduce)
        assert out.shape == ref.shape
        torch.testing.assert_close(out.cpu(), ref, **_tol(dtype))


# ---- max/min: the first row wins, exactly as on the CPU ----


def _cpu_op(src, index, dim_size, reduce):
    return torch.ops.geomdl.scatter_reduce(src.cpu(), index.cpu(), dim_size, reduce)


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment"])
def test_max_min_arg_equals_cpu_kernel(reduce, dtype, kind):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(11)
    n, c, segments = 5000, 6, 40
    src = torch.randint(-3, 4, (n, c), generator=g).to(dtype)  # many exact ties
    index = _index(kind, n, segments, g)
    out, arg = torch.ops.geomdl.scatter_reduce(src.to(device), index.to(device), segments + 1, reduce)
    out_cpu, arg_cpu = _cpu_op(src, index, segments + 1, reduce)
    assert torch.equal(arg.cpu(), arg_cpu)
    assert torch.equal(out.cpu(), out_cpu)
    assert bool((arg_cpu[-1] == n).all())  # the empty last segment points past the rows


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_tie_rule_gradient_goes_to_first_row(reduce):
    device = require_cuda_kernel("scatter_reduce")
    base = torch.tensor([[2.0], [2.0], [1.0], [2.0]], device=device)
    src = (base if reduce == "max" else -base).requires_grad_(True)
    index = torch.tensor([0, 0, 1, 0], device=device)
    with ops.use_backend("compiled"):
        (grad,) = torch.autograd.grad(scatter(src, index, reduce=reduce).sum(), src)
    assert torch.equal(grad.cpu(), torch.tensor([[1.0], [0.0], [1.0], [0.0]]))
    # and a larger tied input: the CUDA gradient equals the CPU kernel's (same arg)
    g = _gen(12)
    src = torch.randint(-2, 3, (4000, 9), generator=g).double()
    index = torch.randint(0, 30, (4000,), generator=g)
    w = torch.randn(30, 9, generator=g, dtype=torch.float64)
    grads = []
    for dev in ("cpu", device):
        x = src.to(dev).requires_grad_(True)
        with ops.use_backend("compiled"):
            (gx,) = torch.autograd.grad((scatter(x, index.to(dev), dim_size=30, reduce=reduce) * w.to(dev)).sum(), x)
        grads.append(gx.cpu())
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("reduce", ["max", "min"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_min_nan_and_signed_zero_like_cpu(reduce, dtype):
    device = require_cuda_kernel("scatter_reduce")
    nan, inf = float("nan"), float("inf")
    src = torch.tensor([[1.0, -0.0, inf], [nan, 0.0, -inf], [3.0, -0.0, nan], [nan, 5.0, 1.0],
                        [-0.0, 0.0, -inf], [0.0, -0.0, -inf]], dtype=dtype)
    index = torch.tensor([0, 0, 0, 1, 2, 2])
    out, arg = torch.ops.geomdl.scatter_reduce(src.to(device), index.to(device), 4, reduce)
    out_cpu, arg_cpu = _cpu_op(src, index, 4, reduce)
    assert torch.equal(arg.cpu(), arg_cpu)
    torch.testing.assert_close(out.cpu(), out_cpu, rtol=0, atol=0, equal_nan=True)
    assert torch.equal(torch.signbit(out.cpu()), torch.signbit(out_cpu))  # the first row's zero, bit for bit
    assert bool(torch.isnan(out[0, 0]))  # NaN propagates
    ref = scatter_reference(src, index, dim_size=4, reduce=reduce)
    torch.testing.assert_close(out.cpu(), ref, rtol=0, atol=0, equal_nan=True)


# ---- index range ----


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("where", [0, 1234, 99_999])
def test_out_of_range_index_raises_value_error(reduce, where):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(13)
    n, segments = 100_000, 300
    src = torch.randn(n, 4, generator=g).to(device)
    index = torch.randint(0, segments, (n,), generator=g).sort().values.to(device)
    with ops.use_backend("compiled"):
        for bad, match in ((segments + 7, rf"index has an entry {segments + 7} out of range"),
                           (-3, r"index has a negative entry \(-3\)")):
            wrong = index.clone()
            wrong[where] = bad
            with pytest.raises(ValueError, match=match):
                scatter(src, wrong, dim_size=segments, reduce=reduce)
            with pytest.raises(ValueError, match=match):
                torch.ops.geomdl.scatter_reduce(src, wrong, segments, reduce)
        with pytest.raises(ValueError, match="index has an entry 0 out of range"):
            scatter(src, index * 0, dim_size=0, reduce=reduce)
        with pytest.raises(ValueError, match=r"index has an entry 5 out of range: entries must lie in \[0, 3\)"):
            torch.ops.geomdl.scatter_reduce(src[:3, :0].contiguous(), torch.tensor([0, 5, 1], device=device), 3, reduce)
    # the device is still usable (no out-of-bounds access happened)
    torch.cuda.synchronize()
    assert float(torch.ones(3, device=device).sum()) == 3.0


def test_segment_softmax_out_of_range_index_raises_value_error():
    device = require_cuda_kernel("segment_softmax")
    src = torch.randn(1000, 3, device=device)
    index = torch.randint(0, 10, (1000,), device=device)
    for bad, match in ((12, "index has an entry 12 out of range"), (-1, r"index has a negative entry \(-1\)")):
        wrong = index.clone()
        wrong[500] = bad
        with pytest.raises(ValueError, match=match):
            torch.ops.geomdl.segment_softmax(src, wrong, 10)
    with pytest.raises(ValueError, match="out of range"):
        torch.ops.geomdl.segment_softmax(src, index, 0)


# ---- deterministic mode ----


def _deterministic(fn):
    old = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(True)
        return fn()
    finally:
        torch.use_deterministic_algorithms(old)


@pytest.mark.parametrize("reduce", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 7, 64])
def test_deterministic_mode_is_bitwise_reproducible(reduce, dtype, channels):
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(17)
    n, segments = 50_000, 2000
    src = torch.randn(n, channels, generator=g, dtype=dtype).to(device)
    index = torch.randint(0, segments, (n,), generator=g).to(device)
    index[:7] = 0  # a few repeated rows

    def run():
        with ops.use_backend("compiled"):
            return [scatter(src, index, dim_size=segments + 1, reduce=reduce) for _ in range(2)]

    a, b = _deterministic(run)
    assert torch.equal(a, b)
    _assert_close_to_oracle(a, src, index, segments + 1, reduce)
    assert torch.equal(a[-1].cpu(), torch.zeros(channels, dtype=dtype))
    with pytest.raises(ValueError, match="out of range"):
        wrong = index.clone()
        wrong[-1] = segments + 1
        _deterministic(lambda: torch.ops.geomdl.scatter_reduce(src, wrong, segments + 1, reduce))


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_deterministic_mode_backward(reduce):
    """Gradients under torch.use_deterministic_algorithms(True): no op of the backward raises (max/min
    use torch's scatter_add, which has a deterministic CUDA path), two runs agree bit for bit, and they
    match the reference's gradient; the same for segment_softmax."""
    device = require_cuda_kernel("scatter_reduce")
    g = _gen(19)
    n, c, segments = 20_000, 6, 500
    src = torch.randn(n, c, generator=g, dtype=torch.float64).to(device)
    index = torch.randint(0, segments, (n,), generator=g).to(device)
    weight = torch.randn(segments, c, generator=g, dtype=torch.float64).to(device)
    row_weight = torch.randn(n, c, generator=g, dtype=torch.float64).to(device)

    def grads(fn, w):
        x = src.clone().requires_grad_()
        (fn(x) * w).sum().backward()
        return x.grad

    def run():
        with ops.use_backend("compiled"):
            return [grads(lambda x: scatter(x, index, dim_size=segments, reduce=reduce), weight) for _ in range(2)]

    a, b = _deterministic(run)
    assert torch.equal(a, b)
    torch.testing.assert_close(a, grads(lambda x: scatter_reference(x, index, dim_size=segments, reduce=reduce), weight))
    if reduce == "sum":  # segment_softmax's backward (sums over segments) in deterministic mode too
        def run_softmax():
            with ops.use_backend("compiled"):
                return [grads(lambda x: segment_softmax(x, index, num_segments=segments), row_weight) for _ in range(2)]

        sa, sb = _deterministic(run_softmax)
        assert torch.equal(sa, sb)
        want = grads(lambda x: segment_softmax_reference(x, index, num_segments=segments), row_weight)
        torch.testing.assert_close(sa, want)


@pytest.mark.parametrize("dtype", DTYPES)
def test_deterministic_segment_softmax(dtype):
    device = require_cuda_kernel("segment_softmax")
    g = _gen(18)
    n, c, segments = 30_000, 5, 700
    src = (torch.randn(n, c, generator=g, dtype=dtype) * 5).to(device)
    index = torch.randint(0, segments, (n,), generator=g).to(device)

    def run():
        with ops.use_backend("compiled"):
            return [segment_softmax(src, index, num_segments=segments + 3) for _ in range(2)]

    a, b = _deterministic(run)
    assert torch.equal(a, b)
    ref = segment_softmax_reference(src.cpu().double(), index.cpu(), num_segments=segments + 3)
    torch.testing.assert_close(a.cpu().double(), ref, **({"atol": 1e-6, "rtol": 1e-4} if dtype == torch.float32 else {}))


# ---- segment softmax ----


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment", "empty_segments"])
@pytest.mark.parametrize("channels", [1, 3, 8, 257])
def test_segment_softmax_matches_reference(dtype, kind, channels):
    device = require_cuda_kernel("segment_softmax")
    g = _gen(channels + 100)
    n, segments = 2000, 53
    src = (torch.randn(n, channels, generator=g, dtype=dtype) * 4).to(device)
    index = _index(kind, n, segments, g).to(device)
    tol = {"atol": 1e-6, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-9}
    if dtype == torch.float64:
        assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, num_segments=segments, **tol)
    weight = torch.randn(n, channels, generator=g, dtype=torch.float64)
    with ops.use_backend("compiled"):
        out, grad = _softmax_and_grad(segment_softmax, src, index, segments, weight.to(device, dtype))
    ref, ref_grad = _softmax_and_grad(segment_softmax_reference, src.cpu().double(), index.cpu(), segments, weight)
    torch.testing.assert_close(out.cpu().double(), ref, **tol)
    if dtype == torch.float64:
        torch.testing.assert_close(grad.cpu(), ref_grad, **tol)
    else:
        # float32 gradients against the float64 truth: y (w - sum_seg y w) cancels, so over a segment of 2000
        # rows the float32 reference itself is off by a few 1e-6; the kernel must do no worse than twice that.
        _, ref32_grad = _softmax_and_grad(segment_softmax_reference, src, index, segments, weight.to(device, dtype))
        kernel_err = float((grad.cpu().double() - ref_grad).abs().max())
        reference_err = float((ref32_grad.cpu().double() - ref_grad).abs().max())
        assert kernel_err <= 2 * reference_err + 1e-6, (kernel_err, reference_err)
        torch.testing.assert_close(grad.cpu().double(), ref_grad, atol=2e-5, rtol=1e-4)


def _softmax_and_grad(fn, src, index, segments, weight):
    x = src.detach().clone().requires_grad_(True)
    out = fn(x, index, num_segments=segments)
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["random", "sorted", "one_segment"])
def test_segment_softmax_large(dtype, kind):
    device = require_cuda_kernel("segment_softmax")
    g = _gen(19)
    n, c, segments = 100_003, 4, 1001
    src = torch.randn(n, c, generator=g, dtype=dtype).to(device)
    index = _index(kind, n, segments, g).to(device)
    with ops.use_backend("compiled"):
        out = segment_softmax(src, index, num_segments=segments)
    ref = segment_softmax_reference(src.cpu().double(), index.cpu(), num_segments=segments)
    torch.testing.assert_close(out.cpu().double(), ref, **({"atol": 1e-9, "rtol": 1e-4} if dtype == torch.float32 else {}))


def test_segment_softmax_edge_cases_and_gradcheck():
    device = require_cuda_kernel("segment_softmax")
    src = torch.randn(20, 2, dtype=torch.float64, generator=_gen(20)).to(device)
    index = torch.randint(0, 5, (20,), generator=_gen(21)).to(device)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, src, index, gradcheck=True)
    empty = torch.zeros(0, 2, device=device)
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, empty, torch.zeros(0, dtype=torch.long, device=device), 3)
    one = torch.randn(1, 3, device=device)
    with ops.use_backend("compiled"):
        assert torch.equal(segment_softmax(one, torch.tensor([0], device=device)).cpu(), torch.ones(1, 3))
    big = torch.tensor([[1000.0], [1000.0], [-1000.0]], device=device)  # overflow-safe
    assert_kernel_matches_reference(segment_softmax, segment_softmax_reference, big, torch.tensor([0, 0, 1], device=device))
    inf = float("inf")
    special = torch.tensor([[-inf, 1.0], [0.0, -inf], [-inf, -inf], [-inf, 2.0], [inf, float("nan")], [1.0, 3.0]], device=device)
    sidx = torch.tensor([0, 0, 1, 1, 2, 2], device=device)
    with ops.use_backend("compiled"):
        out = segment_softmax(special, sidx, num_segments=3)
    ref = segment_softmax_reference(special, sidx, num_segments=3)
    torch.testing.assert_close(out, ref, equal_nan=True)
    cpu = torch.ops.geomdl.segment_softmax(special.cpu(), sidx.cpu(), 3)
    torch.testing.assert_close(out.cpu(), cpu, equal_nan=True)


def test_opcheck_schema_fake_and_autograd_registration_on_cuda():
    device = require_cuda_kernel("scatter_reduce")
    src = torch.randn(10, 3, device=device, requires_grad=True)
    index = torch.randint(0, 4, (10,), device=device)
    for reduce in REDUCTIONS:
        torch.library.opcheck(torch.ops.geomdl.scatter_reduce.default, (src, index, 4, reduce))
    torch.library.opcheck(torch.ops.geomdl.segment_softmax.default, (src, index, 4))
