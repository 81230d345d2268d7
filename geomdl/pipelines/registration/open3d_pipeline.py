"""The Open3D peer: voxel grid, normals, FPFH, feature RANSAC and point-to-plane ICP, all from Open3D.

Parameters follow Open3D's global-registration tutorial (normals: radius 2v / 30 nn; FPFH: radius 5v
/ 100 nn; RANSAC: mutual filter, 3-point samples, 100k iterations, 0.999 confidence).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from geomdl.pipelines.registration.estimation import ransac_open3d


def _cloud(o3d, points: torch.Tensor):
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(points.detach().cpu().numpy().astype(np.float64))
    return pcd


def register_open3d(src, tgt, voxel_size, radius, tau, icp_dist, icp_iterations, min_inliers, min_fitness, seed,
                    result_cls, check_downsampled):
    """Run the Open3D pipeline on validated float64 clouds; returns ``result_cls`` (RegistrationResult)."""
    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    reg = o3d.pipelines.registration
    timings = {}
    t0 = start = time.perf_counter()

    def lap(name):
        nonlocal t0
        now = time.perf_counter()
        timings[name] = now - t0
        t0 = now

    downs = []
    for points, name in ((src, "source"), (tgt, "target")):
        down = _cloud(o3d, points).voxel_down_sample(voxel_size)
        check_downsampled(points, len(down.points), voxel_size, name)  # same error as the geomdl path
        downs.append(down)
    lap("voxel")
    for down in downs:
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel_size, max_nn=30))
    lap("normals")
    lap("keypoints")
    feats = [reg.compute_fpfh_feature(d, o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=100))
             for d in downs]
    lap("descriptors")
    src_down = torch.from_numpy(np.asarray(downs[0].points).copy())
    tgt_down = torch.from_numpy(np.asarray(downs[1].points).copy())
    d_src = torch.from_numpy(np.asarray(feats[0].data).T.copy())
    d_tgt = torch.from_numpy(np.asarray(feats[1].data).T.copy())
    lap("matching")  # Open3D matches inside RANSAC
    est = ransac_open3d(src_down, tgt_down, d_src, d_tgt, tau, seed=seed)
    lap("estimation")
    icp = reg.registration_icp(downs[0], downs[1], icp_dist, est.pose.numpy(), reg.TransformationEstimationPointToPlane(),
                               reg.ICPConvergenceCriteria(max_iteration=icp_iterations))
    lap("refinement")
    timings["total"] = time.perf_counter() - start
    pose = torch.from_numpy(np.asarray(icp.transformation).copy())
    num_inliers = est.inliers.numel()
    reasons = []
    if num_inliers < min_inliers:
        reasons.append(f"{num_inliers} inlier correspondences < min_inliers={min_inliers}")
    if icp.fitness < min_fitness:
        reasons.append(f"fitness {icp.fitness:.3f} < min_fitness={min_fitness}")
    corr = torch.zeros((0, 2), dtype=torch.long)
    return result_cls(pose=pose, success=not reasons, correspondences=corr, inliers=est.inliers,
                      inlier_ratio=float("nan"), num_inliers=num_inliers, fitness=float(icp.fitness),
                      rmse=float(icp.inlier_rmse), timings=timings, method="open3d", reason="; ".join(reasons),
                      source_down=src_down, target_down=tgt_down)
