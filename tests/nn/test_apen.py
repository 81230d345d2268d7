import pytest
import torch

from geomdl.datasets.synthetic.parts import SyntheticParts
from geomdl.nn.apen import (
    APEN,
    FrameAveragedPointNet,
    GlobalFrameAveragedNet,
    assignment_uncertainty,
    cluster_votes,
    fps_partition,
    frame_degeneracy,
    pca_frames,
    piecewise_equivariance_error,
    random_piecewise_motion,
    refinement_violation,
    vote_loss,
)
from geomdl.ops import scatter
from geomdl.testing import assert_equivariant, equivariance_error


def _anisotropic_cloud(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.5, 0.5], dtype=torch.float64)


def _parts_batch(num=2, points=256, seed=0):
    from torch_geometric.data import Batch

    ds = SyntheticParts(num_samples=num, num_points=points, seed=seed)
    b = Batch.from_data_list([ds[i] for i in range(num)])
    return b.pos.double(), b.batch, b.part


def test_pca_frames_are_orthogonal_and_cover_both_determinants():
    pos = _anisotropic_cloud()
    part = torch.zeros(60, dtype=torch.long)
    rot, cen, evals = pca_frames(pos, part, 1)
    assert rot.shape == (1, 8, 3, 3)
    eye = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(rot[0] @ rot[0].transpose(1, 2), eye.expand(8, 3, 3))
    dets = torch.linalg.det(rot[0]).round()
    assert sorted(dets.tolist()) == [-1.0] * 4 + [1.0] * 4
    rot4, _, _ = pca_frames(pos, part, 1, reflections=False)
    assert rot4.shape == (1, 4, 3, 3) and bool((torch.linalg.det(rot4[0]) > 0).all())
    torch.testing.assert_close(cen[0], pos.mean(0))
    assert frame_degeneracy(evals)[0] > 0.1


def test_frame_degeneracy_flags_symmetric_parts():
    g = torch.Generator().manual_seed(1)
    sphere = torch.randn(2000, 3, generator=g, dtype=torch.float64)
    sphere = sphere / sphere.norm(dim=1, keepdim=True)
    _, _, evals = pca_frames(sphere, torch.zeros(2000, dtype=torch.long), 1)
    assert frame_degeneracy(evals)[0] < 0.15


@pytest.mark.parametrize("reflections", [True, False])
def test_backbone_is_equivariant_on_one_part(reflections):
    torch.manual_seed(0)
    net = FrameAveragedPointNet(2, 16, 5, reflections=reflections).double()
    pos = _anisotropic_cloud()
    x = torch.randn(60, 2, dtype=torch.float64)
    part = torch.zeros(60, dtype=torch.long)

    def fn(pos, x):
        return net(pos, x, part, 1)

    inputs, types = {"pos": pos, "x": x}, {"pos": "position", "x": "scalar"}
    if reflections:
        assert_equivariant(fn, inputs, types, ("scalar", "position"))
    else:
        assert_equivariant(fn, inputs, types, ("scalar", "position"), group="SO3")
        errors = equivariance_error(fn, inputs, types, ("scalar", "position"))
        assert errors["reflection"] > 1e-6  # 4 proper frames: not reflection-equivariant


@pytest.mark.parametrize("reflections", [True, False])
def test_backbone_is_exact_on_parts_too_small_or_flat_for_a_unique_pca_frame(reflections):
    """methods.md 4.10: PCA frames are undefined for parts with < 3 points or a zero eigenvalue. Averaging
    over all sign patterns makes the null axes drop out (no single sign is picked), so parts of 1 point,
    2 points, 3 points (flat) and collinear points are still exactly equivariant."""
    torch.manual_seed(0)
    net = FrameAveragedPointNet(0, 16, 5, reflections=reflections).double()
    g = torch.Generator().manual_seed(7)
    line = torch.linspace(0, 1, 5, dtype=torch.float64)[:, None] * torch.tensor([[1.0, 2.0, -0.5]], dtype=torch.float64)
    pieces = [torch.randn(1, 3, generator=g, dtype=torch.float64), torch.randn(2, 3, generator=g, dtype=torch.float64),
              torch.randn(3, 3, generator=g, dtype=torch.float64), line + 2.0, _anisotropic_cloud(40, 3)]
    pos = torch.cat(pieces)
    part = torch.repeat_interleave(torch.arange(len(pieces)), torch.tensor([len(p) for p in pieces]))
    assert_equivariant(lambda pos, part: net(pos, None, part, len(pieces)), (pos, part), ("position", "batch"),
                       ("scalar", "position"), group="O3" if reflections else "SO3")


def test_backbone_parts_are_independent():
    torch.manual_seed(0)
    net = FrameAveragedPointNet(0, 16, 4).double()
    a, b = _anisotropic_cloud(40, 1), _anisotropic_cloud(50, 2) + 10
    pos = torch.cat([a, b])
    part = torch.tensor([0] * 40 + [1] * 50)
    f, y = net(pos, None, part, 2)
    fa, ya = net(a, None, torch.zeros(40, dtype=torch.long), 1)
    torch.testing.assert_close(f[:40], fa)
    torch.testing.assert_close(y[:40], ya)


def test_float32_far_from_the_origin_is_as_accurate_as_near_it():
    """Clouds at ~1e4 from the origin in float32: the float32 centroid is only known to ulp(1e4) ~ 1e-3, and
    ``pos - centroid`` used to carry that into every local coordinate (features ~1e-4 off float64 on the very
    same float32 inputs). The two-pass centring keeps them at float32 rounding (~1e-7)."""
    torch.manual_seed(0)
    net = FrameAveragedPointNet(0, 16, 4).double()
    net32 = FrameAveragedPointNet(0, 16, 4)
    net32.load_state_dict(net.state_dict())
    part = torch.tensor([0] * 40 + [1] * 50)
    for offset in (0.0, 1e4):
        pos32 = (torch.cat([_anisotropic_cloud(40, 1), _anisotropic_cloud(50, 2) + 3])
                 + torch.tensor([offset, -0.7 * offset, 0.5 * offset], dtype=torch.float64)).float()
        f32, y32 = net32(pos32, None, part, 2)
        f64, y64 = net(pos32.double(), None, part, 2)
        assert (f32.double() - f64).norm() / f64.norm() < 1e-5, offset
        torch.testing.assert_close(y32.double(), y64, rtol=0, atol=1e-2)  # world-space votes: float32 at 1e4
        evals32 = pca_frames(pos32, part, 2)[2]
        evals64 = pca_frames(pos32.double(), part, 2)[2]
        torch.testing.assert_close(evals32.double(), evals64, rtol=1e-5, atol=0)


def test_gt_partition_gives_exact_piecewise_equivariance_and_refinements_too():
    torch.manual_seed(0)
    pos, batch, part = _parts_batch()
    model = APEN(num_classes=5, hidden=16, num_layers=2, sigmas=(0.1,)).double()
    err = piecewise_equivariance_error(model, pos, batch, part, partition="gt", n_samples=3)
    assert err["equivariance_error_max"] < 1e-10
    # a refinement of the true partition (split every part in two by point order) stays exact
    fine = part * 2 + (torch.arange(part.numel()) % 2)
    moved, _, _ = random_piecewise_motion(pos, part, torch.Generator().manual_seed(3))
    a = model(pos, batch, partition=fine)["logits"]
    b = model(moved, batch, partition=fine)["logits"]
    assert float(((a - b).norm() / a.norm()).detach()) < 1e-10
    # negative control: a partition merging true parts is not piecewise equivariant
    merged = part // 2
    a = model(pos, batch, partition=merged)["logits"]
    b = model(moved, batch, partition=merged)["logits"]
    assert float(((a - b).norm() / a.norm()).detach()) > 1e-3


def test_votes_move_with_their_part_under_gt_partition():
    torch.manual_seed(0)
    pos, batch, part = _parts_batch(1)
    model = APEN(num_classes=3, hidden=16, num_layers=2, sigmas=(0.1,)).double()
    moved, rot, trans = random_piecewise_motion(pos, part, torch.Generator().manual_seed(5))
    y0 = model(pos, batch, partition=part)["votes"][0]
    y1 = model(moved, batch, partition=part)["votes"][0]
    cen = scatter(pos, part, reduce="mean")
    expected = torch.einsum("nij,nj->ni", rot[part], y0 - cen[part]) + cen[part] + trans[part]
    torch.testing.assert_close(y1, expected)


def test_initial_partition_violation_shrinks_with_more_cells():
    pos, batch, part = _parts_batch(3, 512)
    lam = [refinement_violation(fps_partition(pos, batch, k)[0], part, batch)["lambda_points"] for k in (4, 32, 256)]
    assert lam[0] > lam[1] > lam[2]
    assert refinement_violation(torch.arange(pos.shape[0]), part, batch)["lambda_points"] == 0.0  # k = n


def test_fps_partition_is_rigid_motion_and_permutation_equivariant():
    pos, batch, _ = _parts_batch(2)
    p0, n0 = fps_partition(pos, batch, 16)
    g = torch.Generator().manual_seed(0)
    from geomdl.testing import random_rotation

    r = random_rotation(g, reflection=True)
    p1, n1 = fps_partition(pos @ r.T + 3.0, batch, 16)
    assert n0 == n1
    same = (p0.unsqueeze(0) == p0.unsqueeze(1)) == (p1.unsqueeze(0) == p1.unsqueeze(1))
    assert bool(same.all())


def test_cluster_votes_merges_and_is_equivariant_and_permutation_consistent():
    # votes around 3 true centres, starting from 12 fine parts
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0, 0], [2.0, 0, 0], [0, 2.0, 0]], dtype=torch.float64)
    true = torch.arange(120) // 40
    votes = centres[true] + 0.01 * torch.randn(120, 3, generator=g, dtype=torch.float64)
    fine = torch.arange(120) // 10
    batch = torch.zeros(120, dtype=torch.long)
    part, k, q, _ = cluster_votes(votes, fine, batch, sigma=0.1)
    assert k == 3
    assert bool(((part.unsqueeze(0) == part.unsqueeze(1)) == (true.unsqueeze(0) == true.unsqueeze(1))).all())
    # rigid motion of the votes: same partition
    from geomdl.testing import random_rotation

    r = random_rotation(g, reflection=True)
    part2, _, _, _ = cluster_votes(votes @ r.T + 5, fine, batch, sigma=0.1)
    assert torch.equal(part, part2)
    # permuting the points permutes the partition (up to relabelling)
    perm = torch.randperm(120, generator=g)
    part3, _, _, _ = cluster_votes(votes[perm], fine[perm], batch, sigma=0.1)
    same = (part3.unsqueeze(0) == part3.unsqueeze(1)) == (part[perm].unsqueeze(0) == part[perm].unsqueeze(1))
    assert bool(same.all())
    # delta -> 0 as sigma -> 0; it grows while sigma approaches the spacing of the centres (2) without
    # merging them; a still wider sigma merges everything into one part (delta 0 again, but lambda 1)
    sharp = assignment_uncertainty(cluster_votes(votes, fine, batch, sigma=0.05)[2], batch)["delta_points"]
    assert sharp < 1e-6
    part_w, k_w, q_w, _ = cluster_votes(votes, fine, batch, sigma=0.8)
    assert k_w == 3 and assignment_uncertainty(q_w, batch)["delta_points"] > 1e-2
    assert cluster_votes(votes, fine, batch, sigma=2.5)[1] == 1


@pytest.mark.parametrize("offset", [1e4, 1e7])
def test_cluster_votes_far_from_the_origin(offset):
    """Translating the votes far away changes neither the partition nor (beyond rounding) the soft assignment:
    each cloud is clustered relative to its mean vote (|y|^2 - 2 y.mu + |mu|^2 at |y| = 1e7 would cancel to
    about 1e-2, the scale of sigma^2)."""
    g = torch.Generator().manual_seed(3)
    centres = torch.tensor([[0.0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [3.0, 3.0, 3.0]], dtype=torch.float64)
    true = torch.arange(160) // 40
    votes = centres[true] + 0.02 * torch.randn(160, 3, generator=g, dtype=torch.float64)
    fine = torch.arange(160) // 10
    batch = (torch.arange(160) >= 80).long()  # two clouds, two components each
    near = cluster_votes(votes, fine, batch, sigma=0.1)
    far = cluster_votes(votes + torch.tensor([offset, -offset, 0.5 * offset], dtype=torch.float64), fine, batch, sigma=0.1)
    assert near[1] == far[1] == 4
    assert torch.equal(near[0], far[0])
    torch.testing.assert_close(far[2], near[2], rtol=0, atol=1e-6)


def test_vote_loss_is_zero_for_perfect_votes():
    pos, batch, part = _parts_batch(1)
    from geomdl.nn.apen import part_centroid_targets

    target = part_centroid_targets(pos, part)
    assert float(vote_loss([target, target], pos, part)) == 0.0
    assert float(vote_loss([target + 1.0], pos, part)) == pytest.approx(3.0)


def test_model_trains_and_round_trips(tmp_path):
    torch.manual_seed(0)
    pos, batch, part = _parts_batch(2, 256)
    pos = pos.float()
    y = part % 3
    model = APEN(num_classes=3, hidden=16, num_layers=3, initial_parts=16, sigmas=(0.1, 0.2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        out = model(pos, batch)
        loss = torch.nn.functional.cross_entropy(out["logits"], y) + vote_loss(out["votes"], pos, part)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    torch.save(model.state_dict(), tmp_path / "apen.pt")
    clone = APEN(num_classes=3, hidden=16, num_layers=3, initial_parts=16, sigmas=(0.1, 0.2))
    clone.load_state_dict(torch.load(tmp_path / "apen.pt"))
    torch.testing.assert_close(clone(pos, batch)["logits"], model(pos, batch)["logits"])


def test_classification_head_and_global_baseline_shapes():
    pos, batch, part = _parts_batch(2, 256)
    cls = APEN(num_classes=4, hidden=8, num_layers=2, sigmas=(0.1,), task="classification")
    assert cls(pos.float(), batch)["logits"].shape == (2, 4)
    glob = GlobalFrameAveragedNet(num_classes=4, hidden=8, num_layers=2).double()
    out = glob(pos, batch)
    assert out["logits"].shape == (pos.shape[0], 4)
    assert all(int(p.max()) + 1 == 2 for p in out["partitions"])  # one part per cloud
    # the global baseline is E(3)-equivariant as a whole
    assert_equivariant(lambda pos, batch: glob(pos, batch)["logits"], {"pos": pos, "batch": batch},
                       {"pos": "position", "batch": "batch"}, "scalar")


def test_bad_arguments():
    with pytest.raises(ValueError, match="task"):
        APEN(3, task="detection")
    with pytest.raises(ValueError, match="sigmas"):
        APEN(3, num_layers=4, sigmas=(0.1,))
    net = FrameAveragedPointNet(2, 8, 4)
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.randn(5, 3), torch.randn(5, 3), torch.zeros(5, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="sigma must be > 0"):
        cluster_votes(torch.randn(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), 0.0)
    with pytest.raises(ValueError, match="partition must be"):
        piecewise_equivariance_error(None, None, None, None, partition="oracle")


def test_bad_forward_inputs_name_the_argument():
    # used to be IndexError (unsorted batch), silent float partitions and an opaque matmul dtype error
    pos = _anisotropic_cloud(40).float()
    batch = torch.repeat_interleave(torch.arange(2), 20)
    model = APEN(3, hidden=8, num_layers=2, initial_parts=4, sigmas=(0.3,))
    with pytest.raises(ValueError, match="batch must be sorted"):
        model(pos, batch.flip(0))
    with pytest.raises(ValueError, match="batch must be sorted"):
        GlobalFrameAveragedNet(3, hidden=8, num_layers=2)(pos, batch.flip(0))
    with pytest.raises(TypeError, match="partition must be an integer tensor"):
        model(pos, batch, partition=torch.zeros(40))
    with pytest.raises(ValueError, match=r"initial_partition must have shape \[40\]"):
        model(pos, batch, initial_partition=torch.zeros(10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"pos must have shape \[N, 3\]"):
        model(pos[:, :2], batch)
    with pytest.raises(TypeError, match=r"pos has dtype torch\.float32 but the layer's parameters are torch\.float64"):
        model.double()(pos, batch)
    for name, kwargs in (("num_classes", {"num_classes": 0}), ("num_layers", {"num_classes": 3, "num_layers": 2.5}),
                         ("hidden", {"num_classes": 3, "hidden": 0})):
        with pytest.raises(ValueError, match=f"{name} must be an int"):
            APEN(**kwargs)


@pytest.mark.parametrize("task", ["segmentation", "classification"])
def test_empty_and_single_point_inputs(task):
    # zero points used to crash in an ambiguous reshape (backbone) and in the EM's argmax (cluster_votes)
    model = APEN(3, hidden=8, num_layers=2, initial_parts=4, sigmas=(0.3,), task=task).double()
    out = model(torch.zeros(0, 3, dtype=torch.float64))
    assert out["logits"].shape == (0, 3) and out["partitions"][-1].shape == (0,)
    assert model(_anisotropic_cloud(1))["logits"].shape == (1, 3)
    new_part, count, soft, comp = cluster_votes(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                                                torch.zeros(0, dtype=torch.long), 0.3)
    assert new_part.shape == (0,) and count == 0 and soft.shape[0] == 0 and comp.shape[0] == 0
