"""fps: compiled kernel == reference (index for index), reference == a plain-Python greedy search,
ties, batches with empty clouds, large clouds (threaded path), argument errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import fps, fps_reference
from geomdl.testing import assert_kernel_matches_reference
from neighbor_checks import assert_fps_kernel_rejects_bad_plans

compiled = pytest.mark.skipif(not ops.has_kernel("fps"), reason="geomdl._C not built (reference mode)")


@pytest.fixture(params=["default", "generic"])
def isa(request, monkeypatch):
    """The kernel's AVX2 copy of the distance update (where the CPU has it) and its baseline copy
    (GEOMDL_FPS_ISA=generic, kernels/fps/fps_update.h): both must equal the reference."""
    if request.param == "generic":
        monkeypatch.setenv("GEOMDL_FPS_ISA", "generic")
    else:
        monkeypatch.delenv("GEOMDL_FPS_ISA", raising=False)
    return request.param


def greedy_python(points, count, first):
    """Textbook farthest point sampling on a list of coordinate tuples (float64, left-to-right sums)."""
    def d2(a, b):
        acc = 0.0
        for u, v in zip(a, b):
            acc += (u - v) * (u - v)
        return acc

    chosen = [first]
    dist = [d2(p, points[first]) for p in points]
    while len(chosen) < count:
        best = max(range(len(points)), key=lambda i: (dist[i], -i))  # largest, then lowest index
        chosen.append(best)
        dist = [min(dist[i], d2(points[i], points[best])) for i in range(len(points))]
    return chosen


def compiled_equals_reference(*args, **kwargs):
    with ops.use_backend("compiled"):
        got = fps(*args, **kwargs)
    want = fps_reference(*args, **kwargs)
    assert got.dtype == torch.long
    assert torch.equal(got, want), (got[:10], want[:10])
    return got


@pytest.mark.parametrize("dim", [1, 3, 5])
def test_reference_matches_plain_python_greedy(dim):
    gen = torch.Generator().manual_seed(dim)
    pos = torch.randint(0, 5, (60, dim), generator=gen).double() * 0.1  # many ties
    batch = torch.tensor([0] * 25 + [2] * 35)
    got = fps_reference(pos, batch, num=12, start=torch.tensor([3, 0, 7]))
    pts = [tuple(p) for p in pos.tolist()]
    expected = greedy_python(pts[:25], 12, 3) + [25 + i for i in greedy_python(pts[25:], 12, 7)]
    assert got.tolist() == expected


@compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 2, 3, 7])
def test_compiled_matches_reference_on_batches(dim, dtype, isa):
    gen = torch.Generator().manual_seed(10 + dim)
    pos = torch.randn(700, dim, generator=gen).to(dtype)
    batch = torch.sort(torch.tensor([0, 1, 3, 4])[torch.randint(0, 4, (700,), generator=gen)]).values  # cloud 2 empty
    compiled_equals_reference(pos, batch, ratio=0.1)
    compiled_equals_reference(pos, batch, num=40)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with ops.use_backend("compiled"):
        a = fps(pos, batch, num=25, random_start=True, generator=g1)
    assert torch.equal(a, fps_reference(pos, batch, num=25, random_start=True, generator=g2))
    assert_kernel_matches_reference(fps, fps_reference, pos, batch, backward=False, exact=True, ratio=0.5)


@compiled
def test_large_cloud_threaded_path_matches_reference(isa):
    gen = torch.Generator().manual_seed(1)
    n = (1 << 18) + 1000  # >= 2**18 points: split between threads
    pos = torch.rand(n, 3, generator=gen)
    out = compiled_equals_reference(pos, num=25)
    assert out.unique().numel() == 25
    pos2 = torch.cat([pos, torch.rand(300, 3, generator=gen)])
    compiled_equals_reference(pos2, torch.tensor([0] * n + [1] * 300), num=12, start=torch.tensor([n - 1, 5]))


@compiled
def test_ties_and_duplicates(isa):
    same = torch.zeros(5, 3)
    assert compiled_equals_reference(same, num=5).tolist() == [0, 0, 0, 0, 0]  # all distances 0: lowest index
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.5, 0.5]])
    assert compiled_equals_reference(square, num=4).tolist() == [0, 3, 1, 2]
    dup = torch.rand(40, 2).repeat(3, 1)
    compiled_equals_reference(dup, num=100)
    lattice = torch.stack(torch.meshgrid(torch.arange(9.0), torch.arange(9.0), indexing="ij"), -1).reshape(-1, 2)
    compiled_equals_reference(lattice, num=30)


@compiled
def test_edge_cases_empty_single_and_more_than_the_cloud(isa):
    assert compiled_equals_reference(torch.zeros(0, 3), num=4).shape == (0,)
    assert compiled_equals_reference(torch.zeros(1, 3), ratio=0.5).tolist() == [0]
    pos = torch.rand(7, 3)
    assert sorted(compiled_equals_reference(pos, num=100).tolist()) == list(range(7))
    assert compiled_equals_reference(pos, ratio=1.0).shape == (7,)
    far = torch.rand(50, 3, dtype=torch.float64) + 1e7
    compiled_equals_reference(far, num=20)


@compiled
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 150), dim=st.integers(1, 5), clouds=st.integers(1, 4),
       num=st.integers(1, 40), lattice=st.booleans(), double=st.booleans(), generic=st.booleans())
def test_property_random_clouds(seed, n, dim, clouds, num, lattice, double, generic):
    gen = torch.Generator().manual_seed(seed)
    dtype = torch.float64 if double else torch.float32
    pos = torch.randint(0, 3, (n, dim), generator=gen).to(dtype) if lattice else torch.randn(n, dim, generator=gen).to(dtype)
    batch = torch.sort(torch.randint(0, clouds, (n,), generator=gen)).values
    with pytest.MonkeyPatch.context() as mp:
        if generic:  # the baseline copy of the distance update
            mp.setenv("GEOMDL_FPS_ISA", "generic")
        else:
            mp.delenv("GEOMDL_FPS_ISA", raising=False)
        compiled_equals_reference(pos, batch, num=num)


def test_reference_backend_from_the_environment(monkeypatch):
    pos = torch.rand(300, 3)
    monkeypatch.setenv("GEOMDL_KERNELS", "reference")
    assert not ops._extension.use_compiled("fps", pos)
    assert torch.equal(fps(pos, num=10), fps_reference(pos, num=10))


def test_bad_arguments_raise_clear_errors():
    pos = torch.rand(10, 3)
    with pytest.raises(ValueError, match="exactly one of ratio"):
        fps(pos)
    with pytest.raises(ValueError, match="exactly one of ratio"):
        fps(pos, ratio=0.5, num=3)
    with pytest.raises(ValueError, match="ratio must lie in"):
        fps(pos, ratio=0.0)
    with pytest.raises(ValueError, match="ratio must lie in"):
        fps(pos, ratio=1.5)
    with pytest.raises(ValueError, match="num must be an int >= 1"):
        fps(pos, num=0)
    with pytest.raises(ValueError, match="batch must be sorted"):
        fps(pos, torch.tensor([1, 0] * 5), num=2)
    bad = pos.clone()
    bad[2, 0] = float("nan")
    with pytest.raises(ValueError, match="pos contains NaN"):
        fps(bad, num=3)
    with pytest.raises(TypeError, match="pos must have a floating dtype"):
        fps(torch.ones(4, 3, dtype=torch.long), num=2)
    with pytest.raises(ValueError, match="start"):
        fps(pos, num=2, start=torch.tensor([10]))
    for call in (fps, fps_reference):  # the kernel raised a RuntimeError, the reference an IndexError
        with pytest.raises(ValueError, match=r"pos must have shape \[N, D\] with D >= 1, got \(6, 0\)"):
            call(torch.rand(6, 0), num=2)
        with pytest.raises(ValueError, match="random_start must be a bool"):
            call(pos, num=2, random_start="yes")


@compiled
def test_kernel_boundary_checks():
    pos = torch.rand(6, 3)
    assert_fps_kernel_rejects_bad_plans(pos)


@pytest.mark.parametrize("backend", ["reference"] + (["compiled"] if ops.has_kernel("fps") else []))
def test_more_samples_than_distinct_points_repeat_the_lowest_index_as_documented(backend):
    with ops.use_backend(backend):
        assert fps(torch.zeros(4, 3), num=4).tolist() == [0, 0, 0, 0]
        assert fps(torch.tensor([[0.0], [0.0], [1.0]]), num=3).tolist() == [0, 2, 0]
