"""Registration building blocks: voxel grid, Kabsch, descriptors (invariance), matching, estimator, ICP, metrics, IO."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.pipelines.registration import (
    correspondence_rmse,
    estimate_normals,
    feature_match_recall,
    icp_point_to_plane,
    inlier_ratio,
    mutual_nearest_neighbors,
    random_pose,
    read_gt_info,
    read_gt_log,
    read_point_cloud,
    rotation_error_deg,
    spectral_estimate,
    transform,
    translation_error,
    voxel_downsample,
    weighted_kabsch,
    write_pose,
)
from geomdl.pipelines.registration.descriptors import ppf_histogram
from geomdl.pipelines.registration.geometry import axis_angle_to_matrix, make_pose
from geomdl.pipelines.registration.pairs import synthetic_shape
from geomdl.testing import assert_equivariant


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 200), st.floats(0.05, 2.0), st.integers(0, 2**31 - 1))
def test_voxel_downsample_centroids_are_voxel_means(n, voxel, seed):
    gen = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 3 - 1
    cent, voxel_of = voxel_downsample(pts, voxel)
    cells = torch.floor((pts - pts.min(0).values) / voxel).long()
    assert cent.shape[0] == torch.unique(cells, dim=0).shape[0]
    for v in range(cent.shape[0]):
        members = voxel_of == v
        assert members.any()
        assert torch.unique(cells[members], dim=0).shape[0] == 1  # one voxel per index
        assert torch.allclose(cent[v], pts[members].mean(0))


def test_voxel_downsample_rejects_bad_size():
    with pytest.raises(ValueError, match="voxel_size"):
        voxel_downsample(torch.rand(5, 3), 0.0)


def test_weighted_kabsch_recovers_pose_and_ignores_zero_weights():
    gen = torch.Generator().manual_seed(1)
    src = torch.randn(2, 50, 3, generator=gen, dtype=torch.float64)
    poses = torch.stack([random_pose(gen), random_pose(gen)])
    tgt = transform(src, poses)
    tgt[:, :10] += 5 * torch.randn(2, 10, 3, generator=gen, dtype=torch.float64)  # corrupted, weight 0
    w = torch.ones(2, 50, dtype=torch.float64)
    w[:, :10] = 0
    est = weighted_kabsch(src, tgt, w)
    assert torch.allclose(est, poses, atol=1e-10)
    assert torch.allclose(torch.det(est[:, :3, :3]), torch.ones(2, dtype=torch.float64))


def test_weighted_kabsch_returns_a_proper_rotation_for_reflected_points():
    src = torch.randn(30, 3, dtype=torch.float64)
    est = weighted_kabsch(src, src * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    assert abs(float(torch.det(est[:3, :3])) - 1) < 1e-10


@pytest.mark.parametrize("weights, message", [
    (torch.zeros(30), "weights are all zero"),
    (-torch.ones(30), "weights must be non-negative"),
    (torch.full((30,), float("nan")), "weights contains NaN"),
    (torch.tensor([1.0, float("inf")] * 15), "weights contains NaN or infinite"),
    (torch.ones(29), r"weights must have shape \[30\]"),
    (torch.ones(30, 1), r"weights must have shape \[30\]"),
])
def test_weighted_kabsch_rejects_bad_weights_naming_them(weights, message):
    """Zero or negative weights gave a pose silently (the identity rotation; a translation of 1e13), NaN an SVD
    failure, a wrong shape a broadcasting error."""
    src = torch.randn(30, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tgt = transform(src, random_pose(torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError, match=message):
        weighted_kabsch(src, tgt, weights.double())


def test_weighted_kabsch_rejects_a_batch_with_one_all_zero_set():
    src = torch.randn(2, 10, 3, dtype=torch.float64)
    w = torch.ones(2, 10, dtype=torch.float64)
    w[1] = 0
    with pytest.raises(ValueError, match="weights are all zero in some set"):
        weighted_kabsch(src, src, w)
    with pytest.raises(ValueError, match=r"src and tgt must both have shape"):
        weighted_kabsch(src, src[:, :5])


def _descriptor_fn(points):
    return ppf_histogram(points, estimate_normals(points), torch.arange(points.shape[0]), radius=0.8)


def test_ppf_descriptor_is_invariant_to_rotations_reflections_translations_permutations():
    pts = synthetic_shape(150, generator=torch.Generator().manual_seed(0))
    out = _descriptor_fn(pts)
    assert out.shape == (150, 75) and out.dtype == torch.float64
    assert torch.allclose(out.norm(dim=1), torch.ones(150, dtype=torch.float64))
    assert_equivariant(_descriptor_fn, [pts], ["position"], "scalar", group="O3", tol=1e-8)


def test_ppf_descriptor_equivariance_check_catches_a_non_invariant_variant():
    def broken(points):  # uses raw coordinates: must be caught
        return torch.cat([_descriptor_fn(points), points], 1)

    pts = synthetic_shape(100, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError):
        assert_equivariant(broken, [pts], ["position"], "scalar", group="O3", tol=1e-8)


def test_mutual_nearest_neighbors_pairs_are_mutual_and_sorted():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 8, generator=gen)
    perm = torch.randperm(40, generator=gen)
    b = a[perm] + 0.01 * torch.randn(40, 8, generator=gen)
    pairs = mutual_nearest_neighbors(a, b)
    assert pairs.shape == (40, 2)
    assert torch.equal(perm[pairs[:, 1]], pairs[:, 0])
    with pytest.raises(ValueError, match="same D"):
        mutual_nearest_neighbors(a, b[:, :4])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mutual_nearest_neighbors_on_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(3000, 16, generator=gen)  # more than one block of 2048
    perm = torch.randperm(3000, generator=gen)
    b = a[perm] + 0.01 * torch.randn(3000, 16, generator=gen)  # unambiguous matches: no near ties across devices
    pairs = mutual_nearest_neighbors(a.cuda(), b.cuda())
    assert pairs.device.type == "cuda" and pairs.shape == (3000, 2)
    assert torch.equal(perm[pairs[:, 1].cpu()], pairs[:, 0].cpu())
    assert mutual_nearest_neighbors(a[:0].cuda(), b.cuda()).device.type == "cuda"


@pytest.mark.parametrize("outlier_fraction", [0.0, 0.8])
def test_spectral_estimate_recovers_pose_among_outliers(outlier_fraction):
    gen = torch.Generator().manual_seed(3)
    n = 300
    src = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 3
    pose = random_pose(gen)
    tgt = transform(src, pose) + 0.005 * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    n_out = int(outlier_fraction * n)
    tgt[:n_out] = torch.rand(n_out, 3, generator=gen, dtype=torch.float64) * 3
    est = spectral_estimate(src, tgt, tau=0.05)
    assert rotation_error_deg(est.pose, pose) < 0.5
    assert translation_error(est.pose, pose) < 0.02
    assert int(est.inliers[n_out:].sum()) >= 0.95 * (n - n_out)
    assert int(est.inliers[:n_out].sum()) <= 0.05 * n


def test_spectral_estimate_with_too_few_correspondences_returns_identity_without_inliers():
    est = spectral_estimate(torch.zeros(2, 3), torch.ones(2, 3), tau=0.1)
    assert torch.equal(est.pose, torch.eye(4, dtype=torch.float64)) and not est.inliers.any()


def test_icp_point_to_plane_converges_from_a_small_error():
    pts = synthetic_shape(3000, generator=torch.Generator().manual_seed(0))
    normals = estimate_normals(pts)
    pose = make_pose(axis_angle_to_matrix(torch.tensor([0.05, -0.03, 0.04], dtype=torch.float64)),
                     torch.tensor([0.05, 0.02, -0.03], dtype=torch.float64))
    src = transform(pts, torch.linalg.inv(pose))
    res = icp_point_to_plane(src, pts, normals, torch.eye(4, dtype=torch.float64), max_distance=0.3, iterations=50)
    assert rotation_error_deg(res.pose, pose) < 0.05 and translation_error(res.pose, pose) < 1e-3
    assert res.fitness > 0.99


def test_rotation_and_translation_errors_match_known_values():
    rot = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.radians(30)], dtype=torch.float64))
    pose = make_pose(rot, torch.tensor([0.3, 0.4, 0.0], dtype=torch.float64))
    eye = torch.eye(4, dtype=torch.float64)
    assert rotation_error_deg(pose, eye) == pytest.approx(30.0)
    assert translation_error(pose, eye) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="pose must have shape"):
        rotation_error_deg(torch.eye(3), eye)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1e-3, 179.0))
def test_rotation_error_ignores_rounding_of_the_ground_truth_and_is_accurate_for_small_angles(seed, deg):
    """gt.log rotations carry ~7 digits (not exactly orthonormal): the plain arccos formula reported
    0.4-0.8 deg between such a pose and itself. Both rotations are projected onto SO(3) first."""
    gen = torch.Generator().manual_seed(seed)
    gt = random_pose(gen)
    rounded = torch.round(gt * 1e6) / 1e6 + 3e-5 * torch.randn(4, 4, generator=gen, dtype=torch.float64)  # |R^T R - I| ~ 1e-4
    rounded[3] = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64)
    assert rotation_error_deg(rounded, gt) < 0.02
    axis = torch.nn.functional.normalize(torch.randn(3, generator=gen, dtype=torch.float64), dim=0)
    turned = make_pose(axis_angle_to_matrix(axis * math.radians(deg)), torch.zeros(3, dtype=torch.float64)) @ gt
    assert rotation_error_deg(turned, gt) == pytest.approx(deg, rel=1e-9, abs=1e-9)


def test_correspondence_rmse_info_matrix_and_points_agree_for_pure_translation():
    # info = sum over points of [I, -[p]x; [p]x, -[p]x^2]-like blocks; for a pure translation only
    # the top-left block matters: rmse^2 = t^T I_tt t / I[0, 0] = |t|^2 when I_tt = c * Id.
    info = torch.eye(6, dtype=torch.float64) * 7.0
    pose = make_pose(torch.eye(3, dtype=torch.float64), torch.tensor([0.1, 0.2, 0.2], dtype=torch.float64))
    eye = torch.eye(4, dtype=torch.float64)
    assert correspondence_rmse(pose, eye, info) == pytest.approx(0.3)
    pts = torch.randn(100, 3, dtype=torch.float64)
    assert correspondence_rmse(pose, eye, source=pts) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="needs info"):
        correspondence_rmse(pose, eye)


def test_inlier_ratio_and_feature_match_recall():
    pose = random_pose(torch.Generator().manual_seed(0))
    src = torch.randn(10, 3, dtype=torch.float64)
    tgt = transform(src, pose)
    tgt[:4] += 1.0
    assert inlier_ratio(src, tgt, pose) == pytest.approx(0.6)
    assert feature_match_recall([0.01, 0.06, 0.5, 0.049]) == pytest.approx(0.5)


@pytest.mark.parametrize("info, message", [
    (torch.zeros(6, 6), r"info\[0, 0\] must be positive"),
    (torch.diag(torch.tensor([1.0, float("nan"), 1.0, 1.0, 1.0, 1.0])), "info contains NaN"),
    (-torch.eye(6), r"info\[0, 0\] must be positive"),
])
def test_correspondence_rmse_rejects_a_degenerate_information_matrix(info, message):
    """A zero or NaN information matrix gave an RMSE of 0 (``max(0, nan)``): a pair 116 degrees off was
    counted as registered."""
    pose = random_pose(torch.Generator().manual_seed(0))
    eye = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        correspondence_rmse(pose, eye, info)


@pytest.mark.parametrize("source, message", [(torch.zeros(0, 3), "source is empty"),
                                             (torch.zeros(5, 2), r"source must have shape \[N, 3\]")])
def test_correspondence_rmse_checks_its_source_points(source, message):
    """An empty cloud gave NaN silently; a wrong shape a matmul error."""
    with pytest.raises(ValueError, match=message):
        correspondence_rmse(random_pose(torch.Generator().manual_seed(0)), torch.eye(4), source=source)


@pytest.mark.parametrize("kwargs, message", [({"threshold": float("nan")}, "threshold must be a positive finite"),
                                             ({"threshold": -1.0}, "threshold must be a positive finite"),
                                             ({"points": torch.zeros(5, 2)}, r"must both have shape \[K, 3\]")])
def test_inlier_ratio_checks_its_arguments(kwargs, message):
    """A NaN or negative threshold gave a ratio of 0 silently; [K, 2] points a matmul error."""
    points = kwargs.pop("points", torch.zeros(5, 3))
    with pytest.raises(ValueError, match=message):
        inlier_ratio(points, points, torch.eye(4), **kwargs)


def test_point_cloud_readers_round_trip(tmp_path):
    from plyfile import PlyData, PlyElement

    from geomdl.utils.optional import import_open3d

    pts = np.random.default_rng(0).normal(size=(50, 3))
    np.save(tmp_path / "a.npy", pts)
    np.savetxt(tmp_path / "a.xyz", np.hstack([pts, np.ones((50, 1))]))
    vertex = np.array([tuple(p) for p in pts], dtype=[("x", "f8"), ("y", "f8"), ("z", "f8")])
    PlyData([PlyElement.describe(vertex, "vertex")], text=False).write(str(tmp_path / "a.ply"))
    o3d = import_open3d()
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(pts)
    o3d.io.write_point_cloud(str(tmp_path / "a.pcd"), pcd)
    for name in ("a.npy", "a.xyz", "a.ply", "a.pcd"):
        got = read_point_cloud(tmp_path / name)
        assert got.dtype == torch.float64 and torch.allclose(got, torch.from_numpy(pts), atol=1e-6), name


_PCD_HEAD = ("VERSION 0.7\nFIELDS {fields}\nSIZE {size}\nTYPE {type}\nCOUNT {count}\nWIDTH {n}\nHEIGHT 1\n"
             "VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n")


def _pcd(n, data, fields="x y z", size="4 4 4", type="F F F", count="1 1 1"):
    return _PCD_HEAD.format(n=n, data=data, fields=fields, size=size, type=type, count=count).encode()


@pytest.mark.parametrize("content", [
    _pcd(4, "binary", size="8 8 8") + np.arange(12, dtype="<f8").tobytes(),  # doubles: Open3D read zeros
    _pcd(4, "binary", fields="z y x rgb", size="4 4 4 4", type="F F F U", count="1 1 1 1")
    + np.concatenate([np.arange(12, dtype="<f4").reshape(4, 3)[:, ::-1], np.zeros((4, 1), "<f4")], 1).tobytes(),
    _pcd(4, "ascii", fields="x _ y z", count="1 2 1 1", size="4 4 4 4", type="F F F F")
    + b"".join(b"%d 7 7 %d %d\n" % (3 * k, 3 * k + 1, 3 * k + 2) for k in range(4)),
])
def test_pcd_fields_of_any_type_and_order_read_exactly(tmp_path, content):
    """Regression: Open3D read the x, y, z of a binary PCD stored as 8-byte doubles as zeros, without an error."""
    (tmp_path / "a.pcd").write_bytes(content)
    assert torch.equal(read_point_cloud(tmp_path / "a.pcd"), torch.arange(12, dtype=torch.float64).reshape(4, 3))


@pytest.mark.parametrize("content, message", [
    (_pcd(2, "ascii") + b"0 1\n3 4 5\n", "data row 1 has 2 values"),
    (_pcd(2, "ascii") + b"0 1 x\n3 4 5\n", "non-numeric data row"),
    (_pcd(2, "ascii") + b"0 1 2\n3 4 5\n6 7 8\n", "the header says POINTS 2, the file has 3 data rows"),
    (_pcd(2, "binary") + np.zeros((3, 3), "<f4").tobytes(), "12 bytes follow the POINTS 2 records"),
    (_pcd(2, "binary") + np.zeros((2, 3), "<f4").tobytes()[:-5], "truncated file: the header says POINTS 2"),
])
def test_pcd_rows_that_do_not_match_the_header_name_the_file(tmp_path, content, message):
    """Regression: Open3D read a short ascii row as another row's values, a non-numeric value as 0, and dropped the
    rows or bytes beyond POINTS, all without an error."""
    (tmp_path / "bad.pcd").write_bytes(content)
    with pytest.raises(ValueError, match=rf"bad\.pcd: .*{message}"):
        read_point_cloud(tmp_path / "bad.pcd")


def test_compressed_pcd_with_a_wrong_points_count_names_the_file(tmp_path):
    """Regression: Open3D read the first POINTS records of a larger compressed block without an error."""
    from geomdl.utils.optional import import_open3d

    try:
        o3d = import_open3d()
    except ImportError as exc:
        pytest.skip(f"open3d: {exc}")
    pts = np.random.default_rng(0).normal(size=(50, 3))
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(pts)
    o3d.io.write_point_cloud(str(tmp_path / "c.pcd"), pcd, compressed=True)
    assert torch.allclose(read_point_cloud(tmp_path / "c.pcd"), torch.from_numpy(pts), atol=1e-5)
    data = (tmp_path / "c.pcd").read_bytes()
    (tmp_path / "bad.pcd").write_bytes(data.replace(b"POINTS 50", b"POINTS 40"))
    with pytest.raises(ValueError, match=r"bad\.pcd: .*the header says POINTS 40 \(480 bytes\) but the compressed data holds 600"):
        read_point_cloud(tmp_path / "bad.pcd")
    (tmp_path / "bad.pcd").write_bytes(data[:-10])
    with pytest.raises(ValueError, match=r"bad\.pcd: .*truncated file"):
        read_point_cloud(tmp_path / "bad.pcd")


@pytest.mark.parametrize("name,content", [("bad.ply", b"ply\nformat nonsense\n"), ("bad.xyz", b"1 2 x\n"),
                                          ("bad.npy", b"not a numpy file"), ("bad.pcd", b"garbage")])
def test_corrupt_point_cloud_file_names_the_file(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=name):
        read_point_cloud(tmp_path / name)


def test_unknown_suffix_and_missing_file(tmp_path):
    (tmp_path / "a.obj").write_text("v 0 0 0\n")
    with pytest.raises(ValueError, match="unsupported"):
        read_point_cloud(tmp_path / "a.obj")
    with pytest.raises(FileNotFoundError):
        read_point_cloud(tmp_path / "missing.ply")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6)), min_size=1, max_size=20),
       st.sampled_from([" ", ",", "\t"]))
def test_xyz_parser_reads_what_was_written(tmp_path_factory, rows, sep):
    path = tmp_path_factory.mktemp("xyz") / "p.xyz"
    path.write_text("# header comment\n" + "\n".join(sep.join(repr(v) for v in r) for r in rows) + "\n")
    got = read_point_cloud(path)
    assert torch.equal(got, torch.tensor(rows, dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60)), min_size=1, max_size=5, unique=True),
       st.integers(0, 2**31 - 1))
def test_gt_log_and_info_parsers_round_trip(tmp_path_factory, keys, seed):
    folder = tmp_path_factory.mktemp("gt")
    gen = torch.Generator().manual_seed(seed)
    poses = {k: random_pose(gen) for k in keys}
    infos = {k: torch.randn(6, 6, generator=gen, dtype=torch.float64) for k in keys}
    (folder / "gt.log").write_text("".join(f"{i}\t {j}\t 60\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in p.tolist())
                                           + "\n" for (i, j), p in poses.items()))
    (folder / "gt.info").write_text("".join(f"{i} {j} 60\n" + "\n".join(" ".join(f"{v:.17g}" for v in row) for row in m.tolist())
                                            + "\n" for (i, j), m in infos.items()))
    got, got_info = read_gt_log(folder / "gt.log"), read_gt_info(folder / "gt.info")
    assert set(got) == set(keys) and all(torch.equal(got[k], poses[k]) for k in keys)
    assert all(torch.equal(got_info[k], infos[k]) for k in keys)


def test_truncated_gt_log_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "gt.log").write_text("0 1 60\n1 0 0 0\n0 1 0 0\n")
    with pytest.raises(ValueError, match="gt.log"):
        read_gt_log(tmp_path / "gt.log")


def test_write_pose_round_trip(tmp_path):
    pose = random_pose(torch.Generator().manual_seed(0))
    write_pose(tmp_path / "pose.txt", pose)
    assert torch.allclose(torch.from_numpy(np.loadtxt(tmp_path / "pose.txt")), pose, atol=1e-8)


def test_the_pcd_header_parser_reads_only_the_header_of_a_binary_file(tmp_path, monkeypatch):
    from geomdl.pipelines.registration import io as reg_io

    path = tmp_path / "big.pcd"
    header = b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1000\nHEIGHT 1\nPOINTS 1000\nDATA binary\n"
    path.write_bytes(header + np.zeros((1000, 3), np.float32).tobytes())
    read = []
    real_open = open

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def __iter__(self):
            for line in self.fh:
                read.append(len(line))
                yield line

    monkeypatch.setattr("builtins.open", lambda p, mode="r", *a, **k: Counting(real_open(p, mode, *a, **k)))
    assert reg_io._pcd_header(path)[1] == len(header)
    assert sum(read) == len(header)  # the data part was never read (it used to be read and split whole)
