"""Edge cases of the registration API: dtypes, argument checks naming the argument, protocol summaries."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geomdl import ops
from geomdl.pipelines.registration import (
    estimate_normals,
    icp_point_to_plane,
    multiscale_icp,
    random_pose,
    register,
    rotation_error_deg,
    spectral_estimate,
    transform,
    voxel_downsample,
    write_pose,
)
from geomdl.pipelines.registration.evaluate import summarize_pairs
from geomdl.pipelines.registration.neighbors import knn_search
from geomdl.pipelines.registration.pairs import synthetic_shape


@pytest.fixture(params=["auto", "reference"])
def backend(request):
    ops.set_backend(request.param)
    yield request.param
    ops.set_backend(None)


def test_knn_search_takes_queries_of_another_float_dtype(backend):
    points = torch.rand(50, 3)
    idx, dist = knn_search(points, points[:7].double() + 1e-4, 1)
    assert torch.equal(idx[:, 0], torch.arange(7)) and dist.dtype == torch.float32


def test_icp_refines_float32_clouds(backend):
    # float32 is how clouds come from files; ICP moves the source in float64 and queries the float32 target
    gen = torch.Generator().manual_seed(0)
    shape = synthetic_shape(1500, generator=gen).float()
    init = random_pose(gen, max_translation=0.02, max_angle_deg=3.0)
    result = icp_point_to_plane(shape, shape, estimate_normals(shape), init, 0.2)
    assert rotation_error_deg(result.pose, torch.eye(4)) < 0.1 and result.fitness > 0.99
    result = multiscale_icp(shape, shape, init, 0.05)
    assert rotation_error_deg(result.pose, torch.eye(4)) < 0.5


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"inlier_threshold": 0.0}, ValueError, "inlier_threshold must be a positive finite number, got 0.0"),
    ({"inlier_threshold": -0.1}, ValueError, "inlier_threshold must be a positive finite number"),
    ({"descriptor_radius": 0.0}, ValueError, "descriptor_radius must be a positive finite number"),
    ({"descriptor_radius": -1.0}, ValueError, "descriptor_radius must be a positive finite number"),
    ({"icp_distance": float("nan")}, ValueError, "icp_distance must be a positive finite number"),
    ({"keypoint_spacing": -1.0}, ValueError, "keypoint_spacing must be a positive finite number"),
    ({"voxel_size": True}, ValueError, "voxel_size must be a positive finite number"),
    ({"icp_points": 0}, ValueError, "icp_points must be an int >= 1"),
    ({"icp_iterations": 2.5}, ValueError, "icp_iterations must be an int >= 0"),
    ({"seed": None}, TypeError, "seed must be an int"),
])
def test_register_rejects_bad_settings_naming_them(kwargs, exc, message):
    cloud = torch.rand(200, 3)
    with pytest.raises(exc, match=message):
        register(cloud, cloud, **kwargs)


def test_numpy_scalar_settings_are_accepted():
    gen = torch.Generator().manual_seed(3)
    shape = synthetic_shape(2000, generator=gen)
    pose = random_pose(gen, max_translation=0.3, max_angle_deg=30.0)
    assert voxel_downsample(shape, np.float32(0.1))[0].shape == voxel_downsample(shape, 0.1)[0].shape
    result = register(transform(shape, pose), shape, voxel_size=np.float32(0.08), inlier_threshold=np.float64(0.16),
                      seed=np.int64(0))
    assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 2.0


def test_multiscale_icp_rejects_a_zero_distance_instead_of_using_the_default():
    cloud = torch.rand(300, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="icp_distance must be a positive finite number, got 0"):
        multiscale_icp(cloud, cloud, torch.eye(4), 0.1, icp_distance=0.0)


def test_spectral_estimate_checks_its_inputs():
    src = torch.rand(20, 3)
    with pytest.raises(ValueError, match=r"src and tgt must be \[K, 3\] tensors of the same shape.*\(20, 3\).*\(5, 3\)"):
        spectral_estimate(src, src[:5], 0.1)
    with pytest.raises(ValueError, match="src and tgt must be"):
        spectral_estimate(src[:, :2], src[:, :2], 0.1)
    for tau in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="tau must be a positive finite number"):
            spectral_estimate(src, src, tau)
    bad = src.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        spectral_estimate(bad, src, 0.1)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_seeds": 0}, "num_seeds must be an int >= 1, got 0"),  # was an IndexError of max()
    ({"num_seeds": -1}, "num_seeds must be an int >= 1"),  # silently used all seeds but one
    ({"num_seeds": 2.5}, "num_seeds must be an int >= 1"),
    ({"consensus": 0}, "consensus must be an int >= 3"),  # silently the identity, with no inlier
    ({"consensus": 2}, "consensus must be an int >= 3"),  # two points do not fix a rigid motion
    ({"consensus": True}, "consensus must be an int >= 3"),
    ({"max_correspondences": 0}, "max_correspondences must be an int >= 3"),
    ({"refine_steps": -1}, "refine_steps must be an int >= 0"),
])
def test_spectral_estimate_checks_its_counts(kwargs, message):
    src = torch.rand(20, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=message):
        spectral_estimate(src, src + 0.1, 0.05, **kwargs)


def _correspondences(k=400, outliers=0.5, seed=0):
    """k correspondences within [0, 2]^3 (a rigid motion plus 5 mm noise), a share of them random (outliers)."""
    from geomdl.testing import random_rotation

    g = torch.Generator().manual_seed(seed)
    src = torch.rand(k, 3, generator=g, dtype=torch.float64) * 2
    r, t = random_rotation(g).double(), torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    tgt = src @ r.T + t + 0.005 * torch.randn(k, 3, generator=g, dtype=torch.float64)
    bad = torch.rand(k, generator=g, dtype=torch.float64) < outliers
    tgt[bad] = torch.rand(int(bad.sum()), 3, generator=g, dtype=torch.float64) * 2
    return src, tgt, src @ r.T + t, bad


@pytest.mark.parametrize("offset", [1e4, 1e5])
def test_spectral_estimate_far_from_the_origin(offset):
    """The same correspondences shifted far from the origin (a scan in a map frame) give the same inliers: the
    pairwise lengths are taken relative to the points' mean (cdist's expansion cancelled: 0 inliers at 1e4)."""
    src, tgt, _, bad = _correspondences()
    near = spectral_estimate(src, tgt, tau=0.03)
    assert torch.equal(near.inliers, ~bad)
    far = spectral_estimate(src + offset, tgt + offset, tau=0.03)
    assert torch.equal(far.inliers, near.inliers)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chance_agreement_far_from_the_origin(dtype):
    from geomdl.pipelines.registration.verify import chance_agreement

    src, tgt, moved, _ = _correspondences(k=300, outliers=0.0)
    near = chance_agreement(moved.to(dtype), tgt.to(dtype), tau=0.1)
    assert near > 0
    assert chance_agreement((moved + 1e3).to(dtype), (tgt + 1e3).to(dtype), tau=0.1) == near


@pytest.mark.parametrize("offset,dtype", [(1e4, torch.float64), (1e5, torch.float64), (1e5, torch.float32)])
def test_register_far_from_the_origin(offset, dtype):
    """A scan far from the origin (a map frame) registers like one at the origin. float32 at 1e5 holds the
    points to 0.008 (a sixth of the voxel). ICP used to linearise rotations about the origin, where they are
    almost translations: it diverged from a good coarse pose (point RMSE 22.7 at 1e5 in float32)."""
    g = torch.Generator().manual_seed(0)
    shape = synthetic_shape(4000, g)
    pose = random_pose(generator=g)
    shift = torch.tensor([offset, -0.5 * offset, 0.25 * offset], dtype=torch.float64)
    res = register((shape + shift).to(dtype), (transform(shape, pose) + shift).to(dtype), voxel_size=0.05)
    true = pose.clone()
    true[:3, 3] = pose[:3, 3] + shift - pose[:3, :3] @ shift  # the same motion in the shifted frame
    err = (transform(shape + shift, res.pose) - transform(shape + shift, true)).norm(dim=1)
    assert res.success, res.reason
    assert float(err.max()) < (2e-3 if dtype == torch.float64 else 5e-3)


def test_feature_match_recall_counts_a_pair_without_correspondences_as_not_recalled():
    def row(ratio):
        return {"pair": "0-2", "consecutive": False, "recall_ok": False, "success": False, "rre_deg": 90.0,
                "rte": 1.0, "inlier_ratio": ratio, "time_s": 0.1}

    summary = summarize_pairs([row(0.5), row(float("nan"))])
    assert summary["feature_match_recall"] == pytest.approx(0.5)
    assert summary["mean_inlier_ratio"] == pytest.approx(0.5)
    assert summarize_pairs([row(float("nan"))])["feature_match_recall"] == 0.0


def test_load_descriptor_with_a_foreign_config_names_the_file(tmp_path):
    from geomdl.pipelines.registration.learned import FORMAT, PatchDescriptor, load_descriptor

    torch.save({"format": FORMAT, "config": {"dim": 4, "layers": 9}, "state_dict": {}}, tmp_path / "cfg.pt")
    with pytest.raises(ValueError, match="cfg.pt.*config"):
        load_descriptor(tmp_path / "cfg.pt")
    config = PatchDescriptor(width=8, dim=4).config
    torch.save({"format": FORMAT, "config": config}, tmp_path / "nostate.pt")
    with pytest.raises(ValueError, match="nostate.pt"):
        load_descriptor(tmp_path / "nostate.pt")


@pytest.mark.parametrize("pose, message", [
    (torch.eye(3), r"pose must have shape \[4, 4\], got \(3, 3\)"),
    (torch.arange(16.0), r"pose must have shape \[4, 4\], got \(16,\)"),
    (torch.full((4, 4), math.nan), "NaN"),
])
def test_write_pose_rejects_a_wrong_pose_and_writes_nothing(tmp_path, pose, message):
    with pytest.raises(ValueError, match=message):
        write_pose(tmp_path / "pose.txt", pose)
    assert not (tmp_path / "pose.txt").exists()


@pytest.mark.parametrize("voxel", [1e-12, 1e-25, 1e-200])
def test_a_voxel_too_small_for_the_extent_is_named_before_int64_wraps(voxel):
    from geomdl.pipelines.registration.geometry import voxel_downsample

    points = torch.rand(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # below ~extent / 9.2e18 the cell indices wrapped: 2 voxels instead of an error
    with pytest.raises(ValueError, match=f"voxel_size {voxel:g} is too small for the extent of the cloud"):
        voxel_downsample(points, voxel)


def test_open3d_method_names_a_voxel_too_small_and_small_clouds_and_seeds_are_named():
    from geomdl.pipelines.registration import register

    src = torch.rand(200, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with pytest.raises(ValueError, match="source has only 10 point"):  # not "use a smaller voxel_size"
        register(src[:10], src, voxel_size=1e-6)
    with pytest.raises(ValueError, match="seed must fit in 64 bits"):
        register(src, src, voxel_size=0.05, seed=2 ** 64 + 5)
    from geomdl.utils.optional import import_open3d

    try:
        import_open3d()
    except ImportError as exc:
        pytest.skip(f"open3d not importable: {exc}")
    with pytest.raises(ValueError, match="too small for the extent"):  # Open3D's RuntimeError before
        register(src, src + 0.1, method="open3d", voxel_size=1e-12)


def test_a_pose_written_as_npy_reads_back(tmp_path):
    from geomdl.pipelines.registration.io import write_pose

    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    write_pose(tmp_path / "pose.npy", pose)
    np.testing.assert_array_equal(np.load(tmp_path / "pose.npy"), pose.numpy())  # was text in a .npy file


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_voxel_downsample_rejects_non_finite_points_naming_the_row(bad):
    points = torch.rand(100, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    points[5, 0] = bad  # a NaN made the grid origin NaN and silently scrambled every cell (65 bogus voxels)
    with pytest.raises(ValueError, match=r"points contains 1 point\(s\) with NaN or infinite coordinates.*row 5"):
        voxel_downsample(points, 0.1)
    with pytest.raises(ValueError, match=r"points must have shape \[N, 3\]"):
        voxel_downsample(torch.rand(10, 2), 0.1)


def test_transform_of_integer_points_keeps_the_rotation():
    pose = random_pose(torch.Generator().manual_seed(0))
    points = torch.tensor([[1, 2, 3], [-4, 0, 7]])
    expected = transform(points.double(), pose)
    out = transform(points, pose)  # the pose was cast to int64: rotation truncated to 0/1 entries
    assert out.dtype == torch.float64 and torch.allclose(out, expected)


def _open3d_or_skip():
    from geomdl.utils.optional import import_open3d

    try:
        return import_open3d()
    except ImportError as exc:
        pytest.skip(f"open3d not importable: {exc}")


@pytest.mark.parametrize("seed", [2**31, 2**40, -(2**63), 2**63 - 1])
def test_open3d_method_takes_every_64_bit_seed(seed):
    _open3d_or_skip()
    gen = torch.Generator().manual_seed(7)
    shape = synthetic_shape(1500, generator=gen)
    pose = random_pose(gen)
    # register() accepts 64-bit seeds, but Open3D's random.seed takes a C int: a pybind TypeError before
    result = register(transform(shape, pose), shape, method="open3d", voxel_size=0.1, seed=seed)
    assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 1.0


@pytest.mark.parametrize("kwargs, message", [({"max_iterations": -5}, "max_iterations must be an int >= 1"),
                                             ({"max_iterations": 0}, "max_iterations must be an int >= 1"),
                                             ({"confidence": 1.5}, r"confidence must be in \(0, 1\]"),
                                             ({"confidence": 0.0}, r"confidence must be in \(0, 1\]"),
                                             ({"tau": 0.0}, "tau")])
def test_ransac_open3d_checks_its_convergence_criteria(kwargs, message):
    from geomdl.pipelines.registration import ransac_open3d

    _open3d_or_skip()
    points = torch.rand(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    desc = torch.rand(50, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    args = {"tau": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):  # -5: "cannot create std::vector"; 0 or 1.5: silently ran
        ransac_open3d(points, points, desc, desc, **args)


def test_open3d_correspondences_are_the_fpfh_matches_ransac_samples_from():
    """The open3d method returned Open3D's ``correspondence_set``: every source point paired with its nearest
    target point under the estimated pose, all consistent with that pose by construction, so its inlier ratio,
    the evaluation's feature-match recall and the consensus checks of verify_pose were not those of the other
    methods (putative descriptor matches). Its correspondences are now mutual nearest neighbours in FPFH space."""
    o3d = _open3d_or_skip()
    gen = torch.Generator().manual_seed(7)
    shape = synthetic_shape(3000, generator=gen)
    voxel = 0.08
    result = register(transform(shape, random_pose(gen)), shape, method="open3d", voxel_size=voxel)
    feats = []
    for down in (result.source_down, result.target_down):
        pcd = o3d.geometry.PointCloud()
        pcd.points = o3d.utility.Vector3dVector(down.numpy())
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        fpfh = o3d.pipelines.registration.compute_fpfh_feature(
            pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100))
        feats.append(torch.from_numpy(np.asarray(fpfh.data).T.copy()))
    corr = result.correspondences
    dist = torch.cdist(feats[0], feats[1])
    assert torch.equal(dist[corr[:, 0]].argmin(1), corr[:, 1])  # mutual nearest neighbours in descriptor space
    assert torch.equal(dist[:, corr[:, 1]].argmin(0), corr[:, 0])
    assert result.inlier_ratio == pytest.approx(int(result.inliers.sum()) / corr.shape[0])


def test_ransac_open3d_gives_open3d_feature_matching_pose_and_keeps_its_matches():
    # ransac_open3d runs the two calls registration_ransac_based_on_feature_matching makes, to keep the matches
    o3d = _open3d_or_skip()
    from geomdl.pipelines.registration import ransac_open3d

    reg = o3d.pipelines.registration
    gen = torch.Generator().manual_seed(3)
    shape = synthetic_shape(2000, generator=gen)
    src = transform(shape, random_pose(gen))
    clouds, feats = [], []
    for points in (src, shape):
        pcd = o3d.geometry.PointCloud()
        pcd.points = o3d.utility.Vector3dVector(points.numpy())
        pcd = pcd.voxel_down_sample(0.08)
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=0.16, max_nn=30))
        clouds.append(pcd)
        feats.append(reg.compute_fpfh_feature(pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=0.4, max_nn=100)))
    tau = 0.12
    o3d.utility.random.seed(5)
    expected = reg.registration_ransac_based_on_feature_matching(
        clouds[0], clouds[1], feats[0], feats[1], True, tau, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(tau)],
        reg.RANSACConvergenceCriteria(100000, 0.999))
    points = [torch.from_numpy(np.asarray(c.points).copy()) for c in clouds]
    desc = [torch.from_numpy(np.asarray(f.data).T.copy()) for f in feats]
    est = ransac_open3d(points[0], points[1], desc[0], desc[1], tau, seed=5)
    # Open3D's RANSAC runs hypotheses on several threads: the pose is the same for the same seed only on a quiet
    # machine (checked exactly on 6 pairs), so compare within RANSAC's accuracy
    peer = torch.from_numpy(np.asarray(expected.transformation).copy())
    assert rotation_error_deg(est.pose, peer) < 2.0 and float((est.pose[:3, 3] - peer[:3, 3]).norm()) < tau
    matches = torch.from_numpy(np.asarray(reg.correspondences_from_features(feats[0], feats[1], True)).astype(np.int64))
    assert torch.equal(est.correspondences, matches)
    residual = (transform(points[0][matches[:, 0]], est.pose) - points[1][matches[:, 1]]).norm(dim=1)
    assert torch.equal(est.inliers, residual < tau) and est.score == float((residual < tau).sum())
