"""ICP refinement: Tukey weights, robust point-to-plane ICP against a ghost layer, the level schedule."""
from __future__ import annotations

import pytest
import torch

from geomdl.pipelines.registration import estimate_normals, rotation_error_deg, transform, translation_error
from geomdl.pipelines.registration.geometry import axis_angle_to_matrix, make_pose, voxel_downsample
from geomdl.pipelines.registration.pairs import synthetic_shape
from geomdl.pipelines.registration.refine import DEFAULT_SCHEDULE, icp_point_to_plane, multiscale_icp, tukey_weights


def _small_pose():
    return make_pose(axis_angle_to_matrix(torch.tensor([0.02, -0.01, 0.015], dtype=torch.float64)),
                     torch.tensor([0.02, 0.01, -0.01], dtype=torch.float64))


def test_tukey_weights_values():
    r = torch.tensor([0.0, 0.5, -0.5, 1.0, 2.0, -3.0], dtype=torch.float64)
    w = tukey_weights(r, 1.0)
    assert torch.allclose(w, torch.tensor([1.0, 0.5625, 0.5625, 0.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(tukey_weights(0.01 * r, 0.01), w)  # depends on r / c only
    with pytest.raises(ValueError, match="scale must be positive"):
        tukey_weights(r, 0.0)


def test_robust_icp_ignores_a_ghost_layer_that_biases_plain_icp():
    """Part of the source doubled 5 cm off the surface (a ghost layer, as from a second scan of one
    side): every ghost point lies within the 10 cm correspondence distance, so plain least squares
    is pulled towards it; Tukey weights (scale 2 cm) drop it."""
    pts = synthetic_shape(3000, generator=torch.Generator().manual_seed(0))
    normals = estimate_normals(pts)
    side = pts[:, 0] > 0.6
    outward = torch.sign((normals[side] * pts[side]).sum(1, keepdim=True))
    ghost = pts[side] + 0.05 * normals[side] * outward
    pose = _small_pose()
    src = transform(torch.cat([pts, ghost]), torch.linalg.inv(pose))
    eye = torch.eye(4, dtype=torch.float64)
    plain = icp_point_to_plane(src, pts, normals, eye, max_distance=0.1, iterations=50)
    robust = icp_point_to_plane(src, pts, normals, eye, max_distance=0.1, iterations=50, robust_scale=0.02)
    assert translation_error(robust.pose, pose) < 1e-4 and rotation_error_deg(robust.pose, pose) < 0.01
    assert translation_error(plain.pose, pose) > 0.01  # the bias the kernel removes


@pytest.mark.parametrize("schedule", [DEFAULT_SCHEDULE, ((1.0, 2.0, None), (0.5, 1.0, 0.5), (0.5, 0.5, 0.5))])
def test_multiscale_icp_converges_on_the_full_resolution_clouds(schedule):
    gen = torch.Generator().manual_seed(1)
    target = synthetic_shape(6000, generator=gen)
    pose = _small_pose()
    source = transform(target[torch.randperm(6000, generator=gen)[:4000]], torch.linalg.inv(pose))
    levels = {}
    res = multiscale_icp(source, target, torch.eye(4, dtype=torch.float64), voxel_size=0.08, generator=gen, levels=levels)
    res = multiscale_icp(source, target, torch.eye(4, dtype=torch.float64), voxel_size=0.08, schedule=schedule,
                         generator=gen, levels=levels)
    assert rotation_error_deg(res.pose, pose) < 0.3 and translation_error(res.pose, pose) < 0.005
    assert set(levels) == {f_v for f_v, _, _ in DEFAULT_SCHEDULE + schedule}  # each grid computed once, cached
    down, _ = voxel_downsample(target, 0.08)
    assert torch.equal(levels[1.0][1], down)


def test_multiscale_icp_rejects_bad_schedules():
    pts = synthetic_shape(500, generator=torch.Generator().manual_seed(2))
    eye = torch.eye(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least one"):
        multiscale_icp(pts, pts, eye, 0.1, schedule=())
    with pytest.raises(ValueError, match="each schedule level must be"):
        multiscale_icp(pts, pts, eye, 0.1, schedule=((1.0, 1.0),))
    with pytest.raises(ValueError, match="must be positive"):
        multiscale_icp(pts, pts, eye, 0.1, schedule=((1.0, -1.0, None),))
    with pytest.raises(ValueError, match="max_distance must be positive"):
        icp_point_to_plane(pts, pts, estimate_normals(pts), eye, max_distance=0.0)
    # max_points=0 refined nothing and returned init silently; negative counts and tolerances were taken as given
    for kwargs, name in (({"max_points": 0}, "max_points"), ({"iterations": -1}, "iterations"),
                         ({"tolerance": -1e-3}, "tolerance"), ({"iterations": 2.5}, "iterations")):
        with pytest.raises(ValueError, match=name):
            multiscale_icp(pts, pts, eye, 0.1, **kwargs)
    assert multiscale_icp(pts, pts, eye, 0.1, iterations=0).iterations == 0


def test_a_too_coarse_level_names_the_schedule():
    src = torch.rand(2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with pytest.raises(ValueError, match=r"icp_schedule\) level \(100\.0, 1\.0, None\) is too coarse"):
        multiscale_icp(src, src.clone(), torch.eye(4, dtype=torch.float64), 0.05, schedule=((100.0, 1.0, None),))


def test_icp_iterations_count_the_steps_applied():
    """``iterations`` reported 1 when no step ran (no source point within max_distance); 0 now, as for
    ``iterations=0``; a converged run reports the steps it took."""
    pts = synthetic_shape(800, generator=torch.Generator().manual_seed(0))
    normals = estimate_normals(pts)
    eye = torch.eye(4, dtype=torch.float64)
    far = icp_point_to_plane(pts + 100.0, pts, normals, eye, max_distance=0.1)
    assert far.iterations == 0 and far.fitness == 0.0 and far.rmse == float("inf")
    assert torch.equal(far.pose, eye)
    assert icp_point_to_plane(pts, pts, normals, eye, max_distance=0.1, iterations=0).iterations == 0
    moved = transform(pts, torch.linalg.inv(_small_pose()))
    res = icp_point_to_plane(moved, pts, normals, eye, max_distance=0.2, iterations=50)
    assert 1 <= res.iterations < 50 and rotation_error_deg(res.pose, _small_pose()) < 0.01
