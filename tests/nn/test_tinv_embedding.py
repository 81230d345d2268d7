"""mds_embedding: invariances, distance preservation, the two routes, scale/sign rules, errors."""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tinv_helpers import generic_cloud

from geomdl.nn.tinv import geodesic_distances, mds_embedding
from geomdl.testing import assert_equivariant, equivariance_error


def pairwise(x: torch.Tensor) -> torch.Tensor:
    """Exact pairwise distances (no matmul trick: cdist loses ~1e-8 in float64)."""
    return (x[:, None, :] - x[None, :, :]).pow(2).sum(-1).sqrt()


def three_clouds(dtype=torch.float64):
    pos = torch.cat([generic_cloud(40, 1), generic_cloud(25, 2), generic_cloud(33, 3)]).to(dtype)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([40, 25, 33]))
    return pos, batch


def test_embedding_is_invariant_to_o3_translation_scaling_permutation_float64():
    pos, batch = three_clouds()
    errors = assert_equivariant(lambda p, b: mds_embedding(p, batch=b).embedding, (pos, batch), ("position", "batch"),
                                "scalar", scaling=True, n_samples=6, tol=1e-10)
    assert set(errors) == {"rotation", "reflection", "translation", "permutation", "scaling", "combined"}


def test_embedding_is_invariant_float32():
    pos, batch = three_clouds(torch.float32)
    errors = equivariance_error(lambda p, b: mds_embedding(p, batch=b).embedding, (pos, batch), ("position", "batch"),
                                "scalar", scaling=True, n_samples=6, float64=False)
    assert max(errors.values()) < 1e-4, errors


def test_pairwise_distances_of_the_embedding_are_invariant():
    pos, batch = three_clouds()
    fn = lambda p, b: pairwise(mds_embedding(p, batch=b).embedding[b == 0])  # noqa: E731
    assert_equivariant(fn, (pos, batch), ("position", "batch"), "fixed", scaling=True, permutation=False, tol=1e-10)


@pytest.mark.parametrize("scale", ["rms", "max", None])
def test_distances_are_preserved_exactly_when_dim_equals_rank(scale):
    x = generic_cloud(50, 4)
    r = mds_embedding(x, dim=3, scale=scale)
    assert torch.allclose(pairwise(r.embedding), pairwise(x) / r.scale[0], atol=1e-12, rtol=0)
    z = r.embedding
    if scale == "rms":
        assert abs(float(z.pow(2).sum(1).mean()) - 1) < 1e-12
        assert abs(float(r.eigenvalues.sum()) - 1) < 1e-12
    elif scale == "max":
        assert abs(float(z.norm(dim=1).max()) - 1) < 1e-12
    else:
        assert float(r.scale[0]) == 1.0


def test_planar_cloud_in_3d_is_preserved_by_dim_2_and_not_by_dim_1():
    plane = generic_cloud(30, 5, dim=2)
    basis = torch.linalg.qr(torch.randn(3, 2, dtype=torch.float64))[0]
    x = plane @ basis.T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # rank 2 in 3-D
    r2 = mds_embedding(x, dim=2)
    assert torch.allclose(pairwise(r2.embedding), pairwise(x) / r2.scale[0], atol=1e-12, rtol=0)
    assert not bool(r2.degenerate[0])
    r3 = mds_embedding(x, dim=3)  # third component is null: exactly zero, not an ambiguity
    assert torch.equal(r3.embedding[:, 2], torch.zeros(30, dtype=torch.float64))
    assert torch.isnan(r3.sign_margins[0, 2]) and not bool(r3.degenerate[0])
    r1 = mds_embedding(x, dim=1)  # negative control: below the rank, distances shrink
    assert float((pairwise(r1.embedding) - pairwise(x) / r1.scale[0]).abs().max()) > 1e-2


def test_distance_route_equals_position_route():
    pos, batch = three_clouds()
    by_pos = mds_embedding(pos, batch=batch)
    mats = [pairwise(pos[batch == b]) for b in range(3)]
    by_dist = mds_embedding(distances=mats)
    assert torch.allclose(by_dist.embedding, by_pos.embedding, atol=1e-10, rtol=0)
    for name in ("eigenvalues", "gaps", "sign_margins", "scale"):
        assert torch.allclose(getattr(by_dist, name), getattr(by_pos, name), atol=1e-10, rtol=0), name
    assert float(by_dist.negative_mass.max()) < 1e-10
    squared = mds_embedding(distances=torch.stack([mats[0], mats[0]]).pow(2), squared=True)
    assert torch.allclose(squared.embedding[:40], by_pos.embedding[:40], atol=1e-10, rtol=0)


def test_high_dimensional_distances_are_preserved_with_dim_5():
    x = generic_cloud(30, 6, dim=5)
    r = mds_embedding(distances=pairwise(x), dim=5)
    assert torch.allclose(pairwise(r.embedding), pairwise(x) / r.scale[0], atol=1e-10, rtol=0)


def test_sign_rule_makes_every_column_skew_positive_and_cancels_reflections():
    x = generic_cloud(60, 7)
    r = mds_embedding(x)
    assert bool((r.embedding.pow(3).mean(0) > 0).all())
    for axis in range(3):
        flip = torch.ones(3, dtype=torch.float64)
        flip[axis] = -1
        assert torch.allclose(mds_embedding(x * flip).embedding, r.embedding, atol=1e-12, rtol=0)


def test_rotation_field_maps_positions_to_the_embedding():
    pos, batch = three_clouds()
    r = mds_embedding(pos, batch=batch)
    z = torch.einsum("nd,ndk->nk", pos - r.center[batch], r.rotation[batch])
    assert torch.allclose(z, r.embedding, atol=1e-12, rtol=0)


def test_batched_equals_one_cloud_at_a_time_and_chunking_changes_nothing():
    pos, batch = three_clouds()
    whole = mds_embedding(pos, batch=batch)
    single = torch.cat([mds_embedding(pos[batch == b]).embedding for b in range(3)])
    assert torch.allclose(whole.embedding, single, atol=1e-12, rtol=0)
    chunked = mds_embedding(pos, batch=batch, chunk_size=7)
    assert torch.allclose(whole.embedding, chunked.embedding, atol=1e-12, rtol=0)
    mats = [pairwise(pos[batch == b]) for b in range(3)]
    assert torch.allclose(mds_embedding(distances=mats, chunk_size=1).embedding, whole.embedding, atol=1e-10, rtol=0)


def test_float32_input_returns_float32():
    r = mds_embedding(generic_cloud(20, 8, dtype=torch.float32))
    assert r.embedding.dtype == torch.float32 and r.eigenvalues.dtype == torch.float32


def test_geodesic_distances_of_a_path_recover_the_line():
    edges = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    lengths = torch.tensor([1.0, 2.0, 0.5, 1.5, 3.0], dtype=torch.float64)
    d = geodesic_distances(edges, 6, lengths)
    coords = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.float64), lengths]), 0)
    assert torch.allclose(d, (coords[:, None] - coords[None, :]).abs(), atol=1e-12, rtol=0)
    r = mds_embedding(distances=d, dim=1)
    assert torch.allclose(pairwise(r.embedding), d / r.scale[0], atol=1e-10, rtol=0)
    assert float(r.negative_mass[0]) < 1e-10


def test_geodesic_distances_of_a_cycle_are_non_euclidean():
    n = 12
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    d = geodesic_distances(ring, n)
    r = mds_embedding(distances=d, dim=2)
    assert float(r.negative_mass[0]) > 1e-3  # shortest paths on a cycle are not Euclidean
    assert bool(r.degenerate[0])  # the 12-fold symmetry gives a repeated eigenvalue
    with pytest.raises(ValueError, match="disconnected"):
        geodesic_distances(torch.tensor([[0], [1]]), 3)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pos=torch.zeros(5, 3, dtype=torch.long)), TypeError, "pos must have a floating dtype"),
    (dict(pos=torch.randn(5)), ValueError, r"pos must have shape \[N, d\]"),
    (dict(pos=torch.tensor([[float("nan"), 0, 0], [1, 1, 1]])), ValueError, "non-finite"),
    (dict(pos=torch.randn(4, 3), batch=torch.tensor([1, 0, 0, 1])), ValueError, "sorted"),
    (dict(pos=torch.randn(4, 3), batch=torch.tensor([0, 0])), ValueError, r"batch must have 4 entries"),
    (dict(pos=torch.randn(4, 3), batch=torch.tensor([0, 0, 2, 2])), ValueError, "cloud 1 has no points"),
    (dict(pos=torch.ones(4, 3)), ValueError, "cloud 0 has zero extent"),
    (dict(pos=torch.randn(4, 3), dim=0), ValueError, "dim must be a positive int"),
    (dict(pos=torch.randn(4, 3), scale="mean"), ValueError, "scale must be one of"),
    (dict(pos=torch.randn(4, 3), degenerate="vote"), ValueError, "degenerate must be one of"),
    (dict(pos=torch.randn(4, 3), gap_tol=2.0), ValueError, "gap_tol"),
    (dict(), ValueError, "exactly one of pos"),
    (dict(distances=torch.tensor([[0.0, 1.0], [2.0, 0.0]])), ValueError, "symmetric"),
    (dict(distances=torch.tensor([[1.0, 1.0], [1.0, 1.0]])), ValueError, "zero diagonal"),
    (dict(distances=torch.tensor([[0.0, -1.0], [-1.0, 0.0]])), ValueError, ">= 0"),
    (dict(distances=torch.zeros(2, 3)), ValueError, "square"),
    (dict(distances=[torch.zeros(2, 2), torch.zeros(2, 2)]), ValueError, r"cloud 0 has zero extent"),
    (dict(distances="d"), TypeError, "distances must be"),
])
def test_bad_input_raises_a_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        mds_embedding(**kwargs)


@st.composite
def clouds(draw):
    n = draw(st.integers(6, 40))
    d = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(2.5, 1.0, d, dtype=torch.float64)
    return x + 0.3 * x.pow(2), gen


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clouds())
def test_property_distances_preserved_and_invariant_under_random_similarity(sample):
    x, gen = sample
    n, d = x.shape
    r = mds_embedding(x, dim=d)
    # distance preservation holds for every cloud, degenerate or not
    assert torch.allclose(pairwise(r.embedding), pairwise(x) / r.scale[0], atol=1e-9, rtol=0)
    q = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0]
    c = float(torch.empty(1, dtype=torch.float64).uniform_(0.1, 10.0, generator=gen))
    t = 5 * torch.randn(d, generator=gen, dtype=torch.float64)
    perm = torch.randperm(n, generator=gen)
    moved = mds_embedding((c * x @ q.T + t)[perm], dim=d)
    assert torch.allclose(moved.eigenvalues, r.eigenvalues, atol=1e-10, rtol=0)
    assert torch.allclose(moved.gaps, r.gaps, atol=1e-10, rtol=0)
    # the frame is unique when the eigen-gaps and sign margins are clear of numerical noise
    assume(float(r.gaps[0, :-1].min()) > 1e-6 and float(r.sign_margins[0].min()) > 1e-6)
    assert torch.allclose(moved.embedding, r.embedding[perm], atol=1e-7, rtol=0)


def test_cdist_output_is_accepted_despite_its_rounding():
    x = 10 * generic_cloud(64, 9)
    d = torch.cdist(x, x)  # matmul-based: diagonal and asymmetry ~1e-7, not exactly 0
    r = mds_embedding(distances=d)
    assert torch.allclose(r.embedding, mds_embedding(x).embedding, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch, match", [(torch.tensor([1, 1, 0, 0, 0, 0, 1, 1]), "sorted"),
                                          (torch.tensor([-1, -1, -1, -1, 0, 0, 0, 0]), "negative entry")])
def test_compiled_embedding_checks_the_batch_values_as_eager(batch, match):
    """Inside torch.compile the shared batch check skips the values; TinvNN reads them anyway (its sizes are
    data), so a compiled call refuses what an eager one refuses (it accepted an unsorted batch, and a negative
    one ended in torch's bincount error)."""
    torch._dynamo.reset()
    pos = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(mds_embedding, backend="eager")
    for fn in (mds_embedding, compiled):
        with pytest.raises(ValueError, match=match):
            fn(pos=pos, batch=batch, dim=2)
