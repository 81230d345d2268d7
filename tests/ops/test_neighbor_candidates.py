"""The references' candidate pairs come in chunks of bounded size: every chunk is a contiguous range of
queries with all their candidates, chunks hold about ``budget`` pairs, and chunked searches give the same
graphs as one chunk (and as the compiled kernels)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl import ops
from geomdl.ops import neighbor_candidates as nc
from geomdl.ops.neighbors import knn_reference, radius_reference


def _cloud(seed, n, m, dim, clouds):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, dim, generator=g, dtype=torch.float64)
    y = torch.rand(m, dim, generator=g, dtype=torch.float64)
    bx = torch.sort(torch.randint(0, clouds, (n,), generator=g)).values
    by = torch.sort(torch.randint(0, clouds, (m,), generator=g)).values
    return x, y, bx, by


def _pairs(chunks):
    return {(int(q), int(j)) for _, _, qi, xj in chunks for q, j in zip(qi, xj)}


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 60), m=st.integers(1, 60), dim=st.integers(1, 4),
       clouds=st.integers(1, 3), r=st.floats(0.05, 2.0), budget=st.integers(1, 50), same=st.booleans())
def test_chunks_cover_the_queries_in_order_and_hold_the_same_pairs(seed, n, m, dim, clouds, r, budget, same):
    x, y, bx, by = _cloud(seed, n, m, dim, clouds)
    if same:
        y, by = x, bx
    whole = list(nc.candidate_chunks(x, y, bx, by, same, r, budget=10**9))
    chunks = list(nc.candidate_chunks(x, y, bx, by, same, r, budget=budget))
    assert len(whole) == 1 and (whole[0][0], whole[0][1]) == (0, y.shape[0])
    assert chunks[0][0] == 0 and chunks[-1][1] == y.shape[0]
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))  # contiguous query ranges
    per_query = torch.bincount(whole[0][2], minlength=y.shape[0])
    for q0, q1, qi, _ in chunks:
        assert q0 < q1 and ((qi >= q0) & (qi < q1)).all()
        if q1 - q0 > 1:  # more than one query only while the budget allows
            assert int(per_query[q0:q1 - 1].sum()) < budget
    assert _pairs(chunks) == _pairs(whole)
    # a superset of the pairs within r, in the same cloud
    d = torch.cdist(y, x)
    within = {(int(q), int(j)) for q, j in zip(*torch.nonzero((d <= r) & (by[:, None] == bx[None, :]), as_tuple=True))
              if not (same and q == j)}
    assert within <= _pairs(whole)


def test_dense_path_is_chunked_too():
    x, y, bx, by = _cloud(0, 50, 40, 5, 2)  # D = 5: no grid
    chunks = list(nc.candidate_chunks(x, y, bx, by, False, 0.7, budget=100))
    assert len(chunks) == 20 and _pairs(chunks) == _pairs(nc.candidate_chunks(x, y, bx, by, False, 0.7, budget=10**9))


@pytest.mark.parametrize("dim", [2, 3])
def test_whole_cloud_radius_stays_within_the_budget_and_matches_the_kernel(monkeypatch, dim):
    """r covering the whole cloud: every query has all N points as candidates; with a budget of 5 queries'
    worth of pairs the reference runs in many chunks and still returns the kernel's graph."""
    x, _, bx, _ = _cloud(1, 400, 1, dim, 1)
    sizes = []
    real = nc.CellGrid.chunks

    def spy(self, *args, **kwargs):
        for chunk in real(self, *args, **kwargs):
            sizes.append(chunk[2].numel())
            yield chunk

    monkeypatch.setattr(nc, "BLOCK_ELEMENTS", 5 * 400)
    monkeypatch.setattr(nc.CellGrid, "chunks", spy)
    got = radius_reference(x, x, 10.0, bx, bx, max_num_neighbors=7, ignore_same_index=True)
    assert len(sizes) >= 60 and max(sizes) <= 5 * 400 + 400
    if ops.has_kernel("radius"):
        torch.testing.assert_close(got, ops.radius(x, x, 10.0, bx, bx, max_num_neighbors=7, ignore_same_index=True),
                                   rtol=0, atol=0)
    assert got.shape == (2, 400 * 7)


def test_knn_reference_in_chunks_equals_one_chunk(monkeypatch):
    """The knn reference's growing-radius search (clouds above 4096 points) run in small chunks."""
    x, y, bx, by = _cloud(2, 4500, 300, 3, 1)
    whole = knn_reference(x, y, 9, bx, by)
    monkeypatch.setattr(nc, "BLOCK_ELEMENTS", 256)
    torch.testing.assert_close(knn_reference(x, y, 9, bx, by), whole, rtol=0, atol=0)
    if ops.has_kernel("knn"):
        torch.testing.assert_close(ops.knn(x, y, 9, bx, by), whole, rtol=0, atol=0)
