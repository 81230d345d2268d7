"""Transforms copy their input and are seeded; rotations are Haar/z/O(3); geometric maths is equivariant."""
import copy

import pytest
import torch
from torch_geometric.data import Data

from geomdl.datasets import functional as F
from geomdl.datasets import transforms as T
from geomdl.ops import knn_graph, radius_graph
from geomdl.testing import assert_equivariant


def _cloud(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=g)
    normal = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    return Data(pos=pos, normal=normal, label=torch.arange(n), y=torch.tensor([3]))


ALL = [T.SamplePoints(100, seed=0), T.SamplePoints(50, method="fps", seed=0), T.SamplePoints(100, method="first"),
       T.Normalize(), T.RandomRotation("SO3", seed=0), T.RandomRotation("z", seed=0), T.RandomRotation("O3", seed=0),
       T.Jitter(0.01, seed=0), T.RandomCrop(0.5, seed=0), T.RandomCrop(0.5, mode="sphere", seed=0), T.VoxelDownsample(0.5),
       T.RadiusGraph(0.5), T.KNNGraph(6)]


@pytest.mark.parametrize("transform", ALL, ids=repr)
def test_transform_copies_input_and_is_seeded(transform):
    data = _cloud()
    before = copy.deepcopy(data)
    out = transform(data)
    for key in before.keys():
        assert torch.equal(data[key], before[key]), key  # input untouched
    assert out is not data and "pos" in out and out.pos.shape[1] == 3
    assert torch.equal(out.y, data.y)  # graph-level attributes kept
    twin = copy.deepcopy(transform)
    fresh = type(transform).__new__(type(transform))
    fresh.__dict__.update(copy.deepcopy(transform.__dict__))
    if getattr(transform, "seed", None) is not None:  # same seed -> same result
        fresh.generator = torch.Generator().manual_seed(transform.seed)
        first = type(transform).__new__(type(transform))
        first.__dict__.update(copy.deepcopy(transform.__dict__))
        first.generator = torch.Generator().manual_seed(transform.seed)
        assert torch.equal(first(_cloud()).pos, fresh(_cloud()).pos)
    assert twin is not transform


def test_point_selection_keeps_attributes_aligned():
    data = _cloud()
    for transform in (T.SamplePoints(80, seed=1), T.RandomCrop(0.3, seed=1), T.SamplePoints(40, method="fps", seed=1)):
        out = transform(data)
        assert torch.equal(out.pos, data.pos[out.label]) and torch.equal(out.normal, data.normal[out.label])
    crop = T.RandomCrop(0.25, seed=3)(data)
    assert crop.pos.shape[0] == 75
    assert "edge_index" not in T.RandomCrop(0.5, seed=0)(T.KNNGraph(4)(data))


def test_mesh_sampling_area_weighted():
    # two unit-area-ratio triangles: the big one (area 2) gets ~2/3 of the samples
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [12, 0, 0], [10, 2, 0]])
    mesh = Data(pos=pos, face=torch.tensor([[0, 3], [1, 4], [2, 5]]))
    out = T.SamplePoints(6000, seed=0)(mesh)
    frac = float((out.pos[:, 0] >= 10).double().mean())
    assert abs(frac - 4 / 5) < 0.03  # areas 0.5 and 2
    assert "face" not in out and torch.allclose(out.normal.abs(), torch.tensor([0.0, 0, 1]).expand(6000, 3))
    assert float(out.pos[:, 2].abs().max()) == 0.0


def test_mesh_of_three_faces_in_pyg_layout():
    # face [3, F] with F = 3 was read as [F, 3]: the samples fell on triangles of the wrong vertices
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [10, 0, 0], [11, 0, 0], [10, 1, 0], [20, 0, 0], [21, 0, 0],
                        [20, 1, 0]])
    tri = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]  # each triangle near x = 0, 10 or 20
    out = T.SamplePoints(300, seed=0)(Data(pos=pos, face=torch.tensor(tri).T))  # PyG's [3, F]
    near = (out.pos[:, :1] - torch.tensor([0.0, 10.0, 20.0])).abs().min(dim=1).values
    assert float(near.max()) <= 1.0
    with pytest.raises(ValueError, match=r"face must have shape \[3, F\] or \[F, 3\], got \(4, 2\)"):
        T.SamplePoints(10, seed=0)(Data(pos=pos, face=torch.zeros(4, 2, dtype=torch.long)))


def test_rotation_groups():
    g = torch.Generator().manual_seed(0)
    mats = {grp: torch.stack([F.random_rotation_matrix(grp, g, torch.float64) for _ in range(2000)]) for grp in F.ROTATION_GROUPS}
    for grp, r in mats.items():
        torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand_as(r))
    dets = {grp: torch.linalg.det(r) for grp, r in mats.items()}
    assert torch.allclose(dets["SO3"], torch.ones(2000, dtype=torch.float64)) and torch.allclose(dets["z"], torch.ones(2000, dtype=torch.float64))
    assert 0.45 < float((dets["O3"] < 0).double().mean()) < 0.55
    torch.testing.assert_close(mats["z"][:, 2], torch.tensor([0.0, 0, 1], dtype=torch.float64).expand(2000, 3))
    # Haar measure: E[R] = 0 and the rotated axis is uniform on the sphere (E[(R e_z)_k^2] = 1/3)
    assert float(mats["SO3"].mean(0).abs().max()) < 0.05
    torch.testing.assert_close((mats["SO3"][:, :, 2] ** 2).mean(0), torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.03, rtol=0)
    data = _cloud()
    out = T.RandomRotation("O3", seed=5, record=True)(data)
    rot = out.rotation[0]
    torch.testing.assert_close(out.pos, data.pos @ rot.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.normal, data.normal @ rot.T, atol=1e-5, rtol=0)


def test_jitter_voxel_and_graphs():
    data = _cloud()
    out = T.Jitter(sigma=1.0, clip=0.05, seed=0)(data)
    assert float((out.pos - data.pos).abs().max()) <= 0.05 + 1e-6
    vox = T.VoxelDownsample(0.5)(data)
    cluster, count = F.voxel_clusters(data.pos, 0.5)
    assert vox.pos.shape[0] == count == torch.unique(torch.floor(data.pos / 0.5), dim=0).shape[0]
    torch.testing.assert_close(vox.pos, F.voxel_downsample(data.pos, 0.5))
    torch.testing.assert_close(vox.normal.norm(dim=1), torch.ones(count))
    assert vox.label.dtype == torch.long and set(vox.label.tolist()) <= set(range(300))
    assert torch.equal(T.RadiusGraph(0.5, max_num_neighbors=8)(data).edge_index, radius_graph(data.pos, 0.5, max_num_neighbors=8))
    assert torch.equal(T.KNNGraph(5)(data).edge_index, knn_graph(data.pos, 5))
    with pytest.raises(ValueError, match="voxel_size must be a positive finite number"):
        T.VoxelDownsample(0)
    with pytest.raises(ValueError, match="group must be one of"):
        T.RandomRotation("SO2")
    with pytest.raises(ValueError, match="needs data.pos"):
        T.Jitter(seed=0)(Data(x=torch.ones(3, 1)))


def test_normalize_is_equivariant(float64):
    pos = torch.randn(50, 3)
    # the centred, scaled cloud rotates with the input, ignores translations and permutes with the points
    assert_equivariant(lambda p: F.normalize_points(p, "mean", "sphere")[0], (pos,), ("position",), "vector")
    assert_equivariant(lambda p: T.Normalize()(Data(pos=p)).pos, (pos,), ("position",), "vector")


def test_normalize_float32_far_from_the_origin_matches_float64():
    """A float32 cloud at ~1e4: the centroid itself is only known to ulp(1e4) ~ 1e-3, which used to shift the
    normalised cloud by ~5e-4 of its radius; the second centring pass removes it (float32 rounding only)."""
    g = torch.Generator().manual_seed(0)
    pos = (torch.randn(2048, 3, generator=g, dtype=torch.float64) + torch.tensor([1e4, -7e3, 3e3], dtype=torch.float64)).float()
    out, c, s = F.normalize_points(pos, "mean", "sphere")
    ref, c64, s64 = F.normalize_points(pos.double(), "mean", "sphere")
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-6
    assert float(out.double().mean(0).abs().max()) < 1e-6
    torch.testing.assert_close((out * s + c).double(), pos.double(), rtol=1e-6, atol=0)  # pos = pos' * s + c still


def test_surface_sampling_and_overlap_are_equivariant(float64):
    from geomdl.datasets.synthetic.meshes import torus

    verts, faces = torus(1.0, 0.3, 12, 6)

    def sample(v):
        pos, normal = F.sample_surface(v, faces, 64, generator=torch.Generator().manual_seed(0))
        return pos, normal

    # same seed: the samples move with the mesh (normals rotate, flip under reflection with the orientation)
    assert_equivariant(sample, (verts,), ("position",), ("position", "pseudovector"), permutation=False)
    ref, src = torch.randn(80, 3), torch.randn(60, 3)

    def overlap(a, b):
        return torch.tensor([F.overlap_ratio(a, b, None, radius=0.6)])

    assert_equivariant(overlap, (ref, src), ("position", "position"), "global_scalar", permutation=False)


@pytest.mark.parametrize("make, message", [
    (lambda: T.Jitter(sigma="a"), "sigma must be a finite number >= 0, got 'a'"),
    (lambda: T.Jitter(sigma=None), "sigma must be a finite number >= 0, got None"),
    (lambda: T.Jitter(sigma=float("nan")), "sigma must be a finite number >= 0, got nan"),
    (lambda: T.Jitter(sigma=float("inf")), "sigma must be a finite number >= 0, got inf"),
    (lambda: T.Jitter(sigma=-0.1), "sigma must be a finite number >= 0, got -0.1"),
    (lambda: T.Jitter(sigma=True), "sigma must be a finite number >= 0, got True"),
    (lambda: T.Jitter(clip="a"), "clip must be a finite number > 0 or None, got 'a'"),
    (lambda: T.Jitter(clip=True), "clip must be a finite number > 0 or None, got True"),
    (lambda: T.Jitter(clip=0), "clip must be a finite number > 0 or None, got 0"),
    (lambda: T.RandomCrop(ratio="a"), r"ratio must be a finite number in \(0, 1\], got 'a'"),
    (lambda: T.RandomCrop(ratio=None), r"ratio must be a finite number in \(0, 1\], got None"),
    (lambda: T.RandomCrop(ratio=True), r"ratio must be a finite number in \(0, 1\], got True"),
    (lambda: T.RandomCrop(ratio=1.5), r"ratio must be a finite number in \(0, 1\], got 1.5"),
    (lambda: T.SamplePoints(True), "num must be an int >= 1, got True"),
    (lambda: T.SamplePoints(4, include_normals="no"), r"include_normals must be a bool \(True or False\), got 'no'"),
    (lambda: T.RandomRotation(record="yes"), r"record must be a bool \(True or False\), got 'yes'"),
    (lambda: T.RandomRotation(positions="pos"), "positions must be a sequence of attribute names, got 'pos'"),
    (lambda: T.RandomRotation(vectors=None), "vectors must be a sequence of attribute names, got None"),
    (lambda: T.VoxelDownsample(True), "voxel_size must be a positive finite number, got True"),
    (lambda: T.VoxelDownsample(float("inf")), "voxel_size must be a positive finite number, got inf"),
    (lambda: T.RadiusGraph(True), "r must be a positive finite number, got True"),
    (lambda: T.RadiusGraph("a"), "r must be a positive finite number, got 'a'"),
    (lambda: T.RadiusGraph(0.5, max_num_neighbors="a"), "max_num_neighbors must be an int >= 1, got 'a'"),
    (lambda: T.RadiusGraph(0.5, max_num_neighbors=None), "max_num_neighbors must be an int >= 1, got None"),
    (lambda: T.RadiusGraph(0.5, max_num_neighbors=2.5), "max_num_neighbors must be an int >= 1, got 2.5"),
    (lambda: T.RadiusGraph(0.5, max_num_neighbors=0), "max_num_neighbors must be an int >= 1, got 0"),
    (lambda: T.RadiusGraph(0.5, loop="no"), r"loop must be a bool \(True or False\), got 'no'"),
    (lambda: T.KNNGraph(True), "k must be an int >= 1, got True"),
    (lambda: T.KNNGraph(3, loop=None), r"loop must be a bool \(True or False\), got None"),
    (lambda: F.voxel_clusters(torch.zeros(2, 3), "a"), "voxel_size must be a positive finite number, got 'a'"),
    (lambda: F.sample_surface(torch.eye(3), torch.tensor([[0, 1, 2]]), True), "num must be an int >= 1, got True"),
    (lambda: F.overlap_ratio(torch.zeros(2, 3), torch.zeros(2, 3), radius="a"), "radius must be a finite number >= 0, got 'a'"),
    # face_weights reached torch's broadcasting error or "invalid multinomial distribution"
    (lambda: F.sample_surface(torch.eye(3), torch.tensor([[0, 1, 2]]), 2, face_weights=torch.ones(2)),
     r"face_weights must have shape \[F\] = \[1\] \(one weight per face\), got \(2,\)"),
    (lambda: F.sample_surface(torch.eye(3), torch.tensor([[0, 1, 2]]), 2, face_weights=torch.tensor([-1.0])),
     "face_weights must be finite numbers >= 0"),
    (lambda: F.sample_surface(torch.eye(3), torch.tensor([[0, 1, 2]]), 2, face_weights=torch.tensor([float("nan")])),
     "face_weights must be finite numbers >= 0"),
])
def test_wrong_typed_arguments_name_the_argument(make, message):
    # strings, None, NaN/inf, bools and out-of-range numbers get a ValueError that names the argument and the range
    with pytest.raises(ValueError, match=f"^{message}$"):
        make()


def test_bool_seed_is_rejected():
    with pytest.raises(TypeError, match="^seed must be an int or None, got True$"):
        T.Jitter(seed=True)


def test_numpy_scalars_are_accepted_as_arguments():
    import numpy as np

    assert T.Jitter(sigma=np.float32(0.5), clip=np.float64(0.1)).sigma == 0.5
    assert T.RandomCrop(ratio=np.float64(0.5)).ratio == 0.5
    assert T.KNNGraph(np.int64(3)).k == 3 and T.SamplePoints(np.int64(5)).num == 5
    assert T.RadiusGraph(np.float64(0.5), max_num_neighbors=np.int64(4), loop=np.bool_(True)).loop is True


def test_unambiguous_values_of_other_types_are_still_accepted():
    """0-dim tensors for numbers, 0/1 for flags and any iterable of names (sets) worked before the argument
    checks and still do; only strings, None, NaN/inf and out-of-range values are refused."""
    assert T.Jitter(sigma=torch.tensor(0.01), clip=torch.tensor(0.05, dtype=torch.float64)).sigma == pytest.approx(0.01)
    assert T.RandomCrop(ratio=torch.tensor(0.5)).ratio == 0.5
    assert T.RadiusGraph(0.3, loop=1).loop is True
    assert T.KNNGraph(4, loop=0).loop is False
    assert T.KNNGraph(4, loop=torch.tensor(True)).loop is True
    assert T.SamplePoints(8, include_normals=0).include_normals is False
    assert T.RandomRotation(positions={"pos"}, vectors=iter(["normal"])).positions == ("pos",)
    with pytest.raises(ValueError, match=r"loop must be a bool"):
        T.KNNGraph(4, loop=2)
    with pytest.raises(ValueError, match=r"sigma must be a finite number >= 0"):
        T.Jitter(sigma=10 ** 400)


def test_overlap_ratio_counts_points_at_exactly_the_radius():
    # the KD-tree's distance bound is strict: a point exactly at ``radius`` was not counted, so identical clouds had
    # overlap 0 at radius=0 (an allowed value)
    pos = torch.randn(50, 3, dtype=torch.float64)
    assert F.overlap_ratio(pos, pos, radius=0.0) == 1.0
    assert F.overlap_ratio(pos.float(), pos.float(), radius=0.0) == 1.0
    ref, src = torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[0.5, 0.0, 0.0], [0.5000001, 0.0, 0.0]], dtype=torch.float64)
    assert F.overlap_ratio(ref, src, radius=0.5) == 0.5
