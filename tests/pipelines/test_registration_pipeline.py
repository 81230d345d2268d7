"""register(): built-in shapes, the Stanford bunny and real 3DMatch pairs; degenerate and bad input."""
from __future__ import annotations

import pytest
import torch

from geomdl.pipelines.registration import (
    read_gt_info,
    read_gt_log,
    read_point_cloud,
    register,
    registration_metrics,
    rotation_error_deg,
    transform,
    translation_error,
)
from geomdl.pipelines.registration.geometry import random_pose, voxel_downsample
from geomdl.pipelines.registration.pairs import crop_low_overlap, partial_pair, synthetic_scene, synthetic_shape

STAGES = {"voxel", "normals", "keypoints", "descriptors", "matching", "estimation", "refinement", "verification", "total"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_builtin_shape_under_random_pose_registers_below_one_degree(seed):
    gen = torch.Generator().manual_seed(seed)
    shape = synthetic_shape(4000, generator=gen)
    pose = random_pose(gen, max_translation=2.0)
    result = register(transform(shape, pose), shape, voxel_size=0.08)
    assert result.success, result.summary()
    assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 1.0
    assert set(result.timings) == STAGES and all(v >= 0 for v in result.timings.values())
    assert result.correspondences.shape[1] == 2 and 0 < result.inlier_ratio <= 1
    assert result.fitness > 0.9


def test_builtin_scene_partial_overlap_pair_with_noise_and_outliers():
    gen = torch.Generator().manual_seed(0)  # the success *rate* over 200 such pairs is in benchmarks/registration.py
    scene = synthetic_scene(30000, generator=gen)
    src, tgt, pose = partial_pair(scene, 1.0, 0.6, noise=0.005, outlier_fraction=0.05, generator=gen)
    result = register(src, tgt, voxel_size=0.05)
    assert result.success, result.summary()
    assert rotation_error_deg(result.pose, pose) < 1.0 and translation_error(result.pose, pose) < 0.05


def test_methods_agree_on_an_easy_pair():
    gen = torch.Generator().manual_seed(7)
    shape = synthetic_shape(3000, generator=gen)
    pose = random_pose(gen)
    for method in ("fpfh", "open3d"):
        result = register(transform(shape, pose), shape, method=method, voxel_size=0.08)
        assert result.method == method and result.success, result.summary()
        assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 1.0, method


def test_stanford_bunny_under_random_poses(shared_data):
    bunny = read_point_cloud(shared_data / "stanford_bunny" / "bun_zipper_res3.ply")
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        pose = random_pose(gen, max_translation=0.3)
        result = register(transform(bunny, pose), bunny, voxel_size=0.004)
        assert result.success, result.summary()
        assert rotation_error_deg(result.pose, torch.linalg.inv(pose)) < 1.0


@pytest.fixture(scope="module")
def redkitchen():
    from tests.conftest import SHARED_DATA

    root = SHARED_DATA / "3dmatch"
    if not root.is_dir():
        pytest.skip(f"3DMatch samples not found at {root}")
    bench = root / "benchmarks" / "3DMatch" / "7-scenes-redkitchen"
    frags = root / "fragments" / "7-scenes-redkitchen"
    return {"gt": read_gt_log(bench / "gt.log"), "info": read_gt_info(bench / "gt.info"),
            0: read_point_cloud(frags / "cloud_bin_0.ply"), 4: read_point_cloud(frags / "cloud_bin_4.ply"),
            6: read_point_cloud(root / "geotransformer_demo" / "src.npy"),
            "gt_demo": torch.from_numpy(__import__("numpy").load(root / "geotransformer_demo" / "gt.npy"))}


def test_redkitchen_fragments_0_4(redkitchen):
    result = register(redkitchen[4], redkitchen[0], voxel_size=0.05)
    m = registration_metrics(result.pose, redkitchen["gt"][(0, 4)], redkitchen["info"][(0, 4)])
    assert result.success, result.summary()
    assert m["rre_deg"] < 2.0 and m["rte"] < 0.05, m
    assert m["recall_ok"]


def test_redkitchen_geotransformer_demo_0_6(redkitchen):
    """Measured (``python -m benchmarks registration_refine --open3d``): every ICP variant tried (ours
    plain or Tukey-robust, on 5 or 2.5 cm grids; symmetric ICP; Open3D point-to-plane, Tukey or GICP
    coarse to fine down to 1 cm), started at the estimate *or at the ground truth*, ends 6.8-11 cm from
    gt.log on this pair, except symmetric Tukey ICP started at the estimate, which stops in a shallower
    local minimum ~2 cm from it (its own cost is lower ~6-8 cm away; it loses built-in pairs), so
    RTE < 5 cm (the issue's target) is not a fixed point of refinement. The default (plain then Tukey)
    measured RRE 0.79 deg, RTE 8.0 cm (plain ICP alone: RTE 11.1 cm); we pin RRE < 1.1 deg, RTE < 0.10 m
    and the 3DMatch RMSE criterion."""
    assert torch.equal(redkitchen["gt_demo"], redkitchen["gt"][(0, 6)])
    result = register(redkitchen[6], redkitchen[0], voxel_size=0.05)
    m = registration_metrics(result.pose, redkitchen["gt"][(0, 6)], redkitchen["info"][(0, 6)])
    assert result.success, result.summary()
    assert m["rre_deg"] < 1.1 and m["recall_ok"] and m["rte"] < 0.10, m
    # Why RTE < 5 cm is out of reach: the fragments' own geometry fits our pose better than gt.log's. On the
    # source points within 5 cm of the target under both poses (~7000), the closest-point RMSE is 1.52 cm at
    # our pose and 1.90 cm at the ground truth (38 % vs 33 % of all source points within 2 cm), while those
    # points sit ~5 cm apart between the two poses.
    from geomdl.ops import knn

    def closest_distance(pose):
        target, pose = redkitchen[0].double(), pose.double()
        moved = redkitchen[6].double() @ pose[:3, :3].T + pose[:3, 3]
        j, i = knn(target, moved, 1)
        return (moved[i] - target[j]).norm(dim=1)

    ours, truth = closest_distance(result.pose), closest_distance(redkitchen["gt"][(0, 6)])
    common = (ours < 0.05) & (truth < 0.05)
    assert common.sum() > 5000
    rmse_ours, rmse_truth = ours[common].pow(2).mean().sqrt(), truth[common].pow(2).mean().sqrt()
    assert rmse_ours < 0.9 * rmse_truth, (float(rmse_ours), float(rmse_truth))
    assert (ours < 0.02).float().mean() > (truth < 0.02).float().mean()


def test_low_overlap_crop_is_flagged_or_correct(redkitchen):
    small = {k: voxel_downsample(redkitchen[k], 0.025)[0] for k in (0, 4)}
    src, tgt, pose, overlap = crop_low_overlap(small[4], small[0], redkitchen["gt"][(0, 4)], 0.2,
                                               generator=torch.Generator().manual_seed(0))
    assert 0.1 <= overlap <= 0.3
    result = register(src, tgt, voxel_size=0.05)
    m = registration_metrics(result.pose, pose)
    assert not (result.success and not m["success"]), (result.summary(), m)


# --- degenerate and bad input -------------------------------------------------------------------

def test_empty_cloud_is_an_error():
    with pytest.raises(ValueError, match="source is empty"):
        register(torch.zeros(0, 3), torch.rand(100, 3))


def test_nan_points_are_an_error_naming_the_cloud():
    tgt = torch.rand(100, 3)
    tgt[7, 1] = float("nan")
    with pytest.raises(ValueError, match="target contains 1 point.*NaN.*row 7"):
        register(torch.rand(100, 3), tgt)


@pytest.mark.parametrize("method", ["geomdl", "open3d"])
def test_too_few_points_for_the_voxel_size_is_an_error(method):
    pts = torch.rand(500, 3) * 0.04  # at most 8 occupied 5 cm voxels, whatever the grid origin
    with pytest.raises(ValueError, match="occupied voxel.*smaller voxel_size"):
        register(pts, pts, voxel_size=0.05, method=method)


def test_wrong_shape_type_and_method_are_errors():
    with pytest.raises(ValueError, match=r"source must have shape \[N, 3\]"):
        register(torch.rand(10, 2), torch.rand(10, 3))
    with pytest.raises(TypeError, match="source"):
        register("not points", torch.rand(10, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        register(torch.rand(10, 3), torch.rand(10, 3), method="magic")
    with pytest.raises(ValueError, match="voxel_size"):
        register(torch.rand(10, 3), torch.rand(10, 3), voxel_size=-1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_no_overlap_is_flagged_as_failed(seed):
    gen = torch.Generator().manual_seed(seed)
    a = synthetic_scene(20000, generator=gen)
    b = synthetic_scene(20000, generator=gen)
    src = a[(a[:, 0] < 1.2) & (a[:, 1] < 1.2)]
    tgt = transform(b[(b[:, 0] > 1.8) & (b[:, 1] > 1.8)], random_pose(gen))  # another scene, other corner
    result = register(src, tgt, voxel_size=0.05)
    assert not result.success, result.summary()
    assert result.reason
