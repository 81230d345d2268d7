"""The distances route of mds_embedding and geodesic_distances refuse n x n work over a byte cap
(MAX_DENSE_BYTES / max_dense_bytes / available memory) with an error naming the argument, before allocating;
batches are decomposed in chunks under the cap; inputs that fit give unchanged results."""
from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch

import geomdl.nn.tinv.mds as mds
from geomdl.nn.tinv import geodesic_distances, mds_embedding


def pairwise(x: torch.Tensor) -> torch.Tensor:
    return (x[:, None, :] - x[None, :, :]).pow(2).sum(-1).sqrt()


def cloud(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)


def ring(n: int) -> torch.Tensor:
    return torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])


def test_default_cap_refuses_a_100k_matrix_and_accepts_2k():
    limit, origin = mds.dense_limit(None, torch.device("cpu"))
    assert limit <= mds.MAX_DENSE_BYTES == 4 * 2**30 and origin
    assert mds.dense_work_bytes(100_000) > limit  # 373 GiB
    assert mds.dense_work_bytes(2_000) == 5 * 8 * 2_000**2 < 2**30


def test_large_distance_matrix_raises_before_any_n_by_n_work(monkeypatch):
    d = torch.zeros(1, dtype=torch.float64).expand(100_000, 100_000)  # a view: no memory behind it

    def no_dense_work(*args, **kwargs):
        raise AssertionError("n x n work started before the size check")

    monkeypatch.setattr(torch, "isfinite", no_dense_work)
    monkeypatch.setattr(torch.linalg, "eigh", no_dense_work)
    with pytest.raises(ValueError, match=r"distances is a 100000 x 100000 matrix: .* about 373 GiB .*pos="):
        mds_embedding(distances=d)


def test_monkeypatched_cap_names_the_argument_n_and_bytes(monkeypatch):
    d = pairwise(cloud(30))
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", mds.dense_work_bytes(30) - 1)
    with pytest.raises(ValueError, match=r"^distances is a 30 x 30 matrix: .*36000 bytes.*MAX_DENSE_BYTES=35999.*pos="):
        mds_embedding(distances=d)
    with pytest.raises(ValueError, match=r"^distances\[1\] is a 30 x 30 matrix"):
        mds_embedding(distances=[d[:20, :20], d])
    with pytest.raises(ValueError, match=r"^distances\[0\] is a 30 x 30 matrix"):
        mds_embedding(distances=torch.stack([d, d]))


def test_inputs_under_the_cap_are_unchanged(monkeypatch):
    mats = [pairwise(cloud(30, s)) for s in range(3)]
    ref = mds_embedding(distances=mats, max_dense_bytes=math.inf)
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", 3 * mds.dense_work_bytes(30))  # exactly one chunk of all three
    r = mds_embedding(distances=mats)
    for name, value in r.to_dict().items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value.nan_to_num(7.0), getattr(ref, name).nan_to_num(7.0)), name


def test_batches_are_decomposed_in_chunks_under_the_cap(monkeypatch):
    mats = torch.stack([pairwise(cloud(30, s)) for s in range(6)])
    whole = mds_embedding(distances=mats)
    sizes = []
    eigh = torch.linalg.eigh
    monkeypatch.setattr(torch.linalg, "eigh", lambda a: sizes.append(a.shape[0]) or eigh(a))
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", 2 * mds.dense_work_bytes(30) + 1)
    chunked = mds_embedding(distances=mats)
    assert sizes == [2, 2, 2]
    assert torch.allclose(chunked.embedding, whole.embedding, atol=1e-12, rtol=0)
    sizes.clear()
    mds_embedding(distances=mats, max_dense_bytes=mds.dense_work_bytes(30))  # one at a time
    assert sizes == [1] * 6


def test_override_per_call_and_globally(monkeypatch):
    d = pairwise(cloud(30))
    ref = mds_embedding(distances=d)
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", 1)
    for cap in (math.inf, mds.dense_work_bytes(30)):
        assert torch.equal(mds_embedding(distances=d, max_dense_bytes=cap).embedding, ref.embedding)
    with pytest.raises(ValueError, match=r"over the limit of 1000 bytes \(max_dense_bytes=1000\)"):
        mds_embedding(distances=d, max_dense_bytes=1000)
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", math.inf)
    assert torch.equal(mds_embedding(distances=d).embedding, ref.embedding)


def test_available_memory_caps_the_default_but_not_an_explicit_cap(monkeypatch):
    d = pairwise(cloud(30))
    monkeypatch.setattr(mds, "_available_bytes", lambda device: 10_000)
    with pytest.raises(ValueError, match=r"30 x 30 .*over the limit of 10000 bytes \(the memory available on cpu\)"):
        mds_embedding(distances=d)
    mds_embedding(distances=d, max_dense_bytes=math.inf)
    monkeypatch.setattr(mds, "_available_bytes", lambda device: None)  # unreadable: the constant alone
    mds_embedding(distances=d)


@pytest.mark.parametrize("cap, error", [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError),
                                        ("4GB", TypeError), (True, TypeError)])
def test_bad_max_dense_bytes_is_a_clear_error(cap, error):
    with pytest.raises(error, match="max_dense_bytes must be a"):
        mds_embedding(distances=pairwise(cloud(5)), max_dense_bytes=cap)
    with pytest.raises(error, match="max_dense_bytes must be a"):
        mds_embedding(cloud(5), max_dense_bytes=cap)
    with pytest.raises(error, match="max_dense_bytes must be a"):
        geodesic_distances(ring(5), 5, max_dense_bytes=cap)


def test_geodesic_distances_refuses_a_dense_result_over_the_cap(monkeypatch):
    ref = geodesic_distances(ring(50), 50)
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", 2 * 8 * 50**2 - 1)
    with pytest.raises(ValueError, match=r"^num_nodes=50: the dense \[n, n\] geodesic distance matrix needs about "
                                         r"40000 bytes, over the limit of 39999 bytes"):
        geodesic_distances(ring(50), 50)
    assert torch.equal(geodesic_distances(ring(50), 50, max_dense_bytes=math.inf), ref)
    monkeypatch.setattr(mds, "MAX_DENSE_BYTES", 2 * 8 * 50**2)
    assert torch.equal(geodesic_distances(ring(50), 50), ref)


def test_geodesic_distances_of_a_huge_graph_fail_fast(monkeypatch):
    import scipy.sparse.csgraph

    def no_dense_work(*args, **kwargs):
        raise AssertionError("Dijkstra started before the size check")

    monkeypatch.setattr(scipy.sparse.csgraph, "shortest_path", no_dense_work)
    with pytest.raises(ValueError, match=r"num_nodes=100000: .* about 149 GiB"):
        geodesic_distances(ring(100_000), 100_000)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="peak RSS from /proc/self/status")
def test_measured_peak_memory_is_within_the_estimate():
    """Peak RSS of one n x n MDS (float64 input, n = 2500: 50 MB per matrix, past malloc's mmap threshold)."""
    code = textwrap.dedent("""
        import torch
        torch.set_num_threads(1)
        import geomdl.nn.tinv.mds as mds
        from geomdl.nn.tinv import mds_embedding
        def rss(key):
            for line in open("/proc/self/status"):
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        n = 2500
        x = torch.randn(n, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        d = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1).sqrt()
        mds_embedding(distances=d[:50, :50].clone())
        open("/proc/self/clear_refs", "w").write("5")
        base = rss("VmRSS:")
        mds_embedding(distances=d)
        print((rss("VmHWM:") - base) / mds.dense_work_bytes(n))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0 and "clear_refs" in out.stderr:
        pytest.skip("cannot reset the peak RSS here")
    assert out.returncode == 0, out.stderr
    ratio = float(out.stdout.split()[-1])
    assert 0.5 < ratio <= 1.0  # measured 0.83 (4.1 of the 5 estimated n x n float64 matrices)
