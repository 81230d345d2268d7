"""APEN edge cases: gradients on degenerate parts, per-cloud part ids, the global baseline in the measures,
hyper-parameter and dtype validation."""
from __future__ import annotations

import math

import pytest
import torch

from geomdl.datasets.synthetic.parts import SyntheticParts
from geomdl.nn.apen import (
    APEN,
    FrameAveragedPointNet,
    GlobalFrameAveragedNet,
    cluster_votes,
    piecewise_equivariance_error,
    random_piecewise_motion,
)
from geomdl.testing import assert_equivariant


def _parts_batch(num=2, points=256, seed=0):
    from torch_geometric.data import Batch

    ds = SyntheticParts(num_samples=num, num_points=points, seed=seed)
    b = Batch.from_data_list([ds[i] for i in range(num)])
    return b.pos.double(), b.batch, b.part


def _generic(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.5, 0.5], dtype=torch.float64)


def test_position_gradients_are_finite_on_parts_of_one_or_coincident_points():
    """methods.md 4.10 / 3.7: the eigenvector gradient of torch.linalg.eigh is 0/0 = NaN where eigenvalues
    repeat (a part of 1 point, or of coincident points: all eigenvalues 0), which poisoned the gradient of
    every point of the batch. FPS cells of single outliers are common, so APEN hit it whenever pos had
    requires_grad."""
    torch.manual_seed(0)
    net = FrameAveragedPointNet(0, 8, 4).double()
    pieces = [_generic(1, 1), torch.ones(4, 3, dtype=torch.float64), _generic(2, 2), _generic(20, 3) + 5.0]
    pos = torch.cat(pieces).requires_grad_(True)
    part = torch.repeat_interleave(torch.arange(4), torch.tensor([len(p) for p in pieces]))
    f, y = net(pos, None, part, 4)
    (f.pow(2).sum() + y.pow(2).sum()).backward()
    assert bool(torch.isfinite(pos.grad).all())
    # on a generic part the gradient is the exact one (finite differences)
    generic = _generic(10, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: net(p, None, torch.zeros(10, dtype=torch.long), 1), (generic,))
    # the whole model, with many FPS cells (singleton cells included)
    cloud, batch, _ = _parts_batch(1)
    model = APEN(3, hidden=8, num_layers=2, initial_parts=64, sigmas=(0.1,)).double()
    cloud = cloud.clone().requires_grad_(True)
    model(cloud, batch)["logits"].pow(2).sum().backward()
    assert bool(torch.isfinite(cloud.grad).all())


def test_part_ids_restarting_in_every_cloud_are_not_merged_across_clouds():
    """Part ids 0..K_b-1 in every cloud used to make one 'part' of the points of two clouds (one PCA frame,
    one max-pool over both clouds): each cloud's output then depended on the other cloud."""
    torch.manual_seed(0)
    pos, batch, part = _parts_batch()
    first = torch.stack([part[batch == b].min() for b in range(2)])
    local = part - first[batch]
    assert int(local[batch == 0].max()) > 0 and int(local[batch == 1].min()) == 0
    model = APEN(3, hidden=8, num_layers=2, initial_parts=8, sigmas=(0.1,)).double()
    for key in ("partition", "initial_partition"):
        ref = model(pos, batch, **{key: part})["logits"]
        torch.testing.assert_close(model(pos, batch, **{key: local})["logits"], ref, atol=1e-12, rtol=0)
        alone = model(pos[batch == 1], None, **{key: local[batch == 1]})["logits"]
        torch.testing.assert_close(alone, ref[batch == 1], atol=1e-12, rtol=0)
    # rigid motions of the whole batch (the per-cloud ids are point labels: permuted with the points)
    assert_equivariant(lambda p, q, b: model(p, b, partition=q)["logits"], (pos, local, batch),
                       ("position", "scalar", "batch"), "scalar", n_samples=2, tol=1e-10)
    with pytest.raises(ValueError, match="every part must lie inside one cloud"):
        cluster_votes(pos, local, batch, sigma=0.1)


def test_global_baseline_runs_through_the_equivariance_measure():
    """piecewise_equivariance_error carries Z_1 by calling model(..., initial_partition=...): the global
    baseline used to raise TypeError there, so it could not be compared with APEN by the default measure."""
    torch.manual_seed(0)
    pos, batch, part = _parts_batch()
    glob = GlobalFrameAveragedNet(3, hidden=8, num_layers=3).double()
    res = piecewise_equivariance_error(glob, pos, batch, part, n_samples=2, generator=torch.Generator().manual_seed(1))
    assert res["equivariance_error"] > 1e-3  # one part per cloud: not piecewise equivariant
    for key in ("lambda_points_per_layer", "delta_points_per_layer", "delta_clouds_per_layer", "parts_per_layer"):
        assert len(res[key]) == 3, key
    assert res["parts_per_layer"] == [2, 2, 2] and res["delta_points_per_layer"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(em_iterations=0), "em_iterations must be an int >= 1"),
    (dict(em_iterations=2.5), "em_iterations must be an int >= 1"),
    (dict(merge_threshold=-1.0), "merge_threshold must be a finite number >= 0"),
    (dict(merge_threshold=float("nan")), "merge_threshold must be a finite number >= 0"),
    (dict(sigmas=(0.1, float("nan"), 0.3)), "sigmas needs 3 positive widths"),
])
def test_bad_hyper_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        APEN(3, **kwargs)
    if "merge_threshold" in kwargs:
        with pytest.raises(ValueError, match="merge_threshold must be a finite number >= 0"):
            cluster_votes(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), 0.1,
                          merge_threshold=kwargs["merge_threshold"])


def test_features_of_another_dtype_name_x():
    model = APEN(3, in_features=2, hidden=8, num_layers=2, initial_parts=4, sigmas=(0.3,))
    pos = _generic(20, 5).float()
    with pytest.raises(TypeError, match=r"x has dtype torch\.float64 but pos has dtype torch\.float32"):
        model(pos, None, x=torch.zeros(20, 2, dtype=torch.float64))


def test_non_finite_positions_name_pos():
    """Used to surface as an opaque torch.linalg.eigh convergence error inside the PCA frames."""
    model = APEN(3, hidden=8, num_layers=2, initial_parts=4, sigmas=(0.3,)).double()
    pos = _generic(30, 6)
    pos[3, 1] = float("nan")
    with pytest.raises(ValueError, match="pos has non-finite entries"):
        model(pos)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_random_piecewise_motion_on_cuda():
    pos, batch, part = _parts_batch(1)
    moved, rot, trans = random_piecewise_motion(pos.cuda(), part.cuda(), torch.Generator().manual_seed(0))
    assert moved.device.type == "cuda" and rot.device.type == "cuda" and trans.device.type == "cuda"


def test_vote_loss_refuses_votes_that_would_broadcast_against_the_targets():
    """[N, 1] or [1, 3] votes used to broadcast against the [N, 3] targets: a finite, wrong loss, silently."""
    from geomdl.nn.apen import vote_loss

    pos, part = _generic(12, 6), torch.arange(12) // 4
    for bad in (pos[:, :1], pos[:1], pos[:, None, :]):
        with pytest.raises(ValueError, match=r"votes\[1\] must have shape \[12, 3\] like pos"):
            vote_loss([pos, bad], pos, part)
    with pytest.raises(ValueError, match=r"gt_part must have shape \[12\]"):
        vote_loss([pos], pos, part[:, None])
    with pytest.raises(ValueError, match="votes must be a non-empty list"):
        vote_loss(torch.stack([pos, pos]), pos, part)


def test_backbone_names_misshapen_or_mistyped_positions():
    """Used to fail deep inside (``shape '[-1, 9]' is invalid``, ``mat1 and mat2 must have the same dtype``)."""
    net = FrameAveragedPointNet(2, 8, 4).double()
    part = torch.zeros(10, dtype=torch.long)
    pos, x = _generic(10, 7), torch.zeros(10, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"pos must have shape \[N, 3\], got \(10, 2\)"):
        net(pos[:, :2], x, part, 1)
    with pytest.raises(TypeError, match=r"pos has dtype torch.float32 but the layer's parameters are torch.float64"):
        net(pos.float(), x.float(), part, 1)
    with pytest.raises(TypeError, match=r"x has dtype torch.float32 but pos has dtype torch.float64"):
        net(pos, x.float(), part, 1)


def test_cluster_votes_names_float_part_ids_and_refuses_zero_iterations():
    """Float part ids failed inside scatter; iterations=0 (or < 0) silently ran one EM iteration."""
    votes, batch = _generic(8, 8), torch.zeros(8, dtype=torch.long)
    with pytest.raises(TypeError, match="part must be an integer tensor"):
        cluster_votes(votes, torch.zeros(8), batch, 0.1)
    for bad in (0, -2, 2.5):
        with pytest.raises(ValueError, match="iterations must be an int >= 1"):
            cluster_votes(votes, torch.arange(8), batch, 0.1, iterations=bad)


def test_the_equivariance_measure_takes_point_features():
    """A model built with in_features > 0 could not be measured: piecewise_equivariance_error never passed x."""
    torch.manual_seed(0)
    pos, batch, part = _parts_batch()
    x = torch.randn(pos.shape[0], 2, dtype=torch.float64)
    model = APEN(3, in_features=2, hidden=8, num_layers=2).double().eval()
    res = piecewise_equivariance_error(model, pos, batch, part, partition="gt", n_samples=2, x=x,
                                       generator=torch.Generator().manual_seed(1))
    assert res["equivariance_error"] < 1e-9  # the true parts: exact
    with pytest.raises(ValueError, match="x"):
        piecewise_equivariance_error(model, pos, batch, part, partition="gt", n_samples=1)


def test_the_equivariance_measure_calls_a_model_without_x_as_before():
    """A model (or wrapper) without an ``x`` argument was called as ``model(pos, batch, partition=...)``; passing
    ``x=None`` to it always broke that documented call."""
    torch.manual_seed(0)
    pos, batch, part = _parts_batch()
    model = APEN(3, hidden=8, num_layers=2).double().eval()

    def wrapper(p, b, partition=None, initial_partition=None):
        return model(p, b, partition=partition, initial_partition=initial_partition)

    for partition in ("gt", "predicted"):
        res = piecewise_equivariance_error(wrapper, pos, batch, part, partition=partition, n_samples=1,
                                           generator=torch.Generator().manual_seed(1))
        assert math.isfinite(res["equivariance_error"])


def test_random_piecewise_motion_and_fps_partition_name_bad_arguments():
    """pos of another shape reached a raw einsum error; num_parts=True was read as 1."""
    from geomdl.nn.apen import fps_partition

    pos, part = _generic(6, 3), torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"pos must be a float tensor of shape \[N, 3\]"):
        random_piecewise_motion(pos[:, :2], part)
    with pytest.raises(ValueError, match=r"gt_part must be an integer tensor of shape \[6\]"):
        random_piecewise_motion(pos, part.double())
    with pytest.raises(ValueError, match="num_parts must be an int >= 1"):
        fps_partition(pos, torch.zeros(6, dtype=torch.long), True)
