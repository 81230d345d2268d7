"""The Open3D peer: voxel grid, normals, FPFH, feature RANSAC and point-to-plane ICP, all from Open3D.

Parameters follow Open3D's global-registration tutorial (normals: radius 2v / 30 nn; FPFH: radius 5v
/ 100 nn; RANSAC: mutual filter, 3-point samples, 100k iterations, 0.999 confidence).
"""
from __future__ import annotations

import numpy as np
import torch

from geomdl.pipelines.registration.estimation import ransac_open3d


def _cloud(o3d, points: torch.Tensor):
    pcd = o3d.geometry.PointCloud()
    pcd.points = o3d.utility.Vector3dVector(points.detach().cpu().numpy().astype(np.float64))
    return pcd


def register_open3d(src, tgt, voxel_size, radius, tau, icp_dist, icp_iterations, seed, check_downsampled, timer) -> dict:
    """Run the Open3D pipeline on validated float64 clouds, timing each stage with ``timer``.

    Returns the keyword arguments of ``pipeline._finish`` (pose, coarse pose, the putative FPFH correspondences
    RANSAC sampled from (see :func:`~geomdl.pipelines.registration.estimation.ransac_open3d`), ICP RMSE,
    downsampled clouds and target normals), so that the result is verified by the same checks as geomdl's and
    its inlier ratio has the same definition.
    """
    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    reg = o3d.pipelines.registration
    downs = []
    from geomdl.pipelines.registration.geometry import check_voxel_extent

    for points, name in ((src, "source"), (tgt, "target")):
        check_voxel_extent(points, voxel_size)  # Open3D raises a RuntimeError there
        down = _cloud(o3d, points).voxel_down_sample(voxel_size)
        check_downsampled(points, len(down.points), voxel_size, name)  # same error as the geomdl path
        downs.append(down)
    timer.lap("voxel")
    for down in downs:
        down.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel_size, max_nn=30))
    timer.lap("normals")
    timer.lap("keypoints")
    feats = [reg.compute_fpfh_feature(d, o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=100))
             for d in downs]
    timer.lap("descriptors")
    src_down = torch.from_numpy(np.asarray(downs[0].points).copy())
    tgt_down = torch.from_numpy(np.asarray(downs[1].points).copy())
    d_src = torch.from_numpy(np.asarray(feats[0].data).T.copy())
    d_tgt = torch.from_numpy(np.asarray(feats[1].data).T.copy())
    timer.lap("matching")  # Open3D matches inside RANSAC
    est = ransac_open3d(src_down, tgt_down, d_src, d_tgt, tau, seed=seed)
    timer.lap("estimation")
    icp = reg.registration_icp(downs[0], downs[1], icp_dist, est.pose.numpy(), reg.TransformationEstimationPointToPlane(),
                               reg.ICPConvergenceCriteria(max_iteration=icp_iterations))
    timer.lap("refinement")
    pose = torch.from_numpy(np.asarray(icp.transformation).copy())
    tgt_normals = torch.from_numpy(np.asarray(downs[1].normals).copy())
    return {"pose": pose, "coarse_pose": est.pose, "corr": est.correspondences, "rmse": float(icp.inlier_rmse),
            "src_down": src_down, "tgt_down": tgt_down, "tgt_normals": tgt_normals, "timer": timer}
