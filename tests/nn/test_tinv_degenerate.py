"""Symmetric shapes: the diagnostics flag them, and frame averaging keeps TinvNet exactly invariant."""
from __future__ import annotations

import pytest
import torch
from tinv_helpers import (
    as_batch,
    cube_surface,
    cube_vertices,
    cylinder,
    generic_cloud,
    mirror_symmetric,
    tiny_tinvnet,
)

from geomdl.nn.tinv import mds_embedding
from geomdl.testing import assert_equivariant, equivariance_error

SHAPES = {"cube_vertices": cube_vertices, "cube_surface": cube_surface, "cylinder": cylinder,
          "mirror_symmetric": mirror_symmetric}


def test_generic_cloud_is_not_flagged():
    r = mds_embedding(generic_cloud(80, 0), degenerate="average")
    assert not bool(r.degenerate[0])
    assert int(r.num_frames[0]) == 1 and torch.equal(r.frames[0, 0], torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize("name", ["cube_vertices", "cube_surface"])
def test_cube_has_a_triple_eigenvalue_and_zero_sign_margins(name):
    r = mds_embedding(SHAPES[name]())
    assert bool(r.degenerate[0])
    assert float(r.gaps[0, :2].abs().max()) < 1e-12  # lambda_1 = lambda_2 = lambda_3
    assert torch.allclose(r.eigenvalues[0], torch.full((3,), 1 / 3, dtype=torch.float64), atol=1e-12)
    assert float(r.sign_margins[0].max()) < 1e-10


def test_cylinder_has_a_double_eigenvalue():
    r = mds_embedding(cylinder())
    gaps = r.gaps[0, :2]
    assert bool(r.degenerate[0])
    assert float(gaps.min()) < 1e-12 and float(gaps.max()) > 0.05  # exactly one repeated pair


def test_mirror_symmetric_shape_has_a_zero_sign_margin_only():
    r = mds_embedding(mirror_symmetric())
    assert bool(r.degenerate[0])
    assert float(r.gaps[0, :2].min()) > 1e-2  # the axes are well defined ...
    margins = r.sign_margins[0]
    assert int((margins < 1e-10).sum()) == 1  # ... but one sign is not
    assert float(margins.max()) > 1e-2


@pytest.mark.parametrize("name", list(SHAPES))
def test_frames_are_orthogonal_and_weights_sum_to_one(name):
    r = mds_embedding(SHAPES[name](), degenerate="average")
    count = int(r.num_frames[0])
    assert count > 1
    frames = r.frames[0, :count]
    eye = torch.eye(3, dtype=torch.float64).expand(count, 3, 3)
    assert torch.allclose(frames @ frames.transpose(1, 2), eye, atol=1e-12)
    assert abs(float(r.frame_weights[0].sum()) - 1) < 1e-12
    assert not bool(r.frames_truncated[0])


@pytest.mark.parametrize("name", list(SHAPES))
def test_frame_averaged_tinvnet_is_invariant_on_symmetric_shapes(name):
    pos = SHAPES[name]()
    batch = torch.zeros(pos.shape[0], dtype=torch.long)
    model = tiny_tinvnet("average")
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True,
                       n_samples=3, tol=1e-10)


@pytest.mark.parametrize("name", ["cube_vertices", "mirror_symmetric"])
def test_picking_one_frame_is_not_invariant_on_symmetric_shapes(name):
    """Negative control: without averaging the output depends on the eigensolver's arbitrary choice.

    (For the mirror shape the output of a permutation-invariant backbone happens not to change, because
    flipping the mirror axis maps the cloud onto itself; the per-point embedding, however, does.)
    """
    pos = SHAPES[name]()
    batch = torch.zeros(pos.shape[0], dtype=torch.long)
    if name == "cube_vertices":
        errors = equivariance_error(as_batch(tiny_tinvnet("pick")), (pos, batch), ("position", "batch"),
                                    "global_scalar", n_samples=4)
    else:
        errors = equivariance_error(lambda p, b: mds_embedding(p, batch=b).embedding, (pos, batch),
                                    ("position", "batch"), "scalar", n_samples=4)
    assert max(errors["rotation"], errors["reflection"]) > 1e-3, errors


def test_average_mode_in_a_batch_mixes_degenerate_and_generic_clouds():
    clouds = [generic_cloud(30, 1), cube_vertices(), mirror_symmetric(), generic_cloud(20, 2)]
    pos = torch.cat(clouds)
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor([c.shape[0] for c in clouds]))
    model = tiny_tinvnet("average")
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "global_scalar", scaling=True,
                       n_samples=3, tol=1e-10)
    model = as_batch(model.double())
    together = model(pos, batch)
    assert model.model.last_embedding.degenerate.tolist() == [False, True, True, False]
    # a generic cloud in a batch gives exactly what it gives alone
    alone = model(clouds[0], torch.zeros(30, dtype=torch.long))
    assert torch.allclose(alone[0], together[0], atol=1e-12)


def test_node_level_output_is_averaged_per_point():
    class PerPoint(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 4)

        def forward(self, data):
            from geomdl.ops import scatter

            pooled = scatter(data.pos.pow(2), data.batch, reduce="max")[data.batch]
            return self.lin(data.pos.abs() + pooled).tanh() + self.lin(data.pos)

    from geomdl.nn.tinv import TinvNet

    torch.manual_seed(0)
    model = TinvNet(PerPoint(), degenerate="average", output="node")
    pos = mirror_symmetric()
    batch = torch.zeros(pos.shape[0], dtype=torch.long)
    assert_equivariant(as_batch(model), (pos, batch), ("position", "batch"), "scalar", scaling=True,
                       n_samples=3, tol=1e-10)


def test_too_many_frames_are_cut_and_flagged():
    r = mds_embedding(cube_vertices(), degenerate="average", max_frames=10)
    assert bool(r.frames_truncated[0]) and int(r.num_frames[0]) == 10


def test_truncating_inside_an_eigenspace_is_flagged():
    # the cylinder's long axis comes first, then two equal in-plane axes: dim=2 cuts that pair
    assert not bool(mds_embedding(cylinder(), dim=1).truncation_ambiguous[0])
    assert bool(mds_embedding(cylinder(), dim=2).truncation_ambiguous[0])
    assert bool(mds_embedding(cube_vertices(), dim=2).truncation_ambiguous[0])
    assert not bool(mds_embedding(generic_cloud(40, 3), dim=2).truncation_ambiguous[0])


def test_jitter_moves_generic_embeddings_little_and_flagged_ones_a_lot():
    """Stability: the embedding is Lipschitz away from degeneracies; near them, tiny noise can turn the
    frame (which is exactly what the diagnostics warn about)."""
    gen = torch.Generator().manual_seed(0)
    sigma = 1e-4
    x = generic_cloud(200, 9)
    noisy = x + sigma * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    z, zn = mds_embedding(x).embedding, mds_embedding(noisy).embedding
    assert float((z - zn).abs().max()) < 100 * sigma
    ring = cylinder(rings=5, per_ring=24)
    ring_noisy = ring + sigma * torch.randn(ring.shape, generator=gen, dtype=torch.float64)
    r, rn = mds_embedding(ring), mds_embedding(ring_noisy)
    assert bool(r.degenerate[0]) and bool(rn.degenerate[0])
    assert float((r.embedding - rn.embedding).abs().max()) > 1e-2  # O(1) change: the in-plane axes turned
