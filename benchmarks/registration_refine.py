"""ICP refinement variants from the same robust estimate: RRE/RTE on the real redkitchen pairs, success
and flag on the built-in pairs.

For every pair ``register(method="geomdl")`` gives the coarse pose (``result.coarse_pose``); each variant
refines that same pose, so only the refinement differs:

* geomdl's torch ICP with a schedule of levels ``(voxel factor, distance factor, Tukey factor or None)``
  (:func:`geomdl.pipelines.registration.refine.multiscale_icp`), the default among them;
* symmetric ICP (Rusinkiewicz 2019, the linearised "rotate halfway" form), plain and Tukey-robust;
* Open3D on the raw clouds: point-to-plane, generalized ICP (Segal et al. 2009, plane-to-plane) and
  Tukey-robust point-to-plane, coarse to fine at 5 / 2.5 / 1 cm voxels (``--open3d``, real pairs only).

Real pairs: 0-4 (fragments), 0-6 (GeoTransformer demo), 4-6, against gt.log; ``start=gt`` rows start the
same variants at the ground-truth pose (where the geometry, not the estimator, leads ICP). Built-in
pairs: the 200 pairs of ``benchmarks/registration.py`` (same generator and seed); success = RRE < 15
deg and RTE < 0.3 m; ``flagged_ok_but_wrong`` = success flag set on a failed pose (verify.py checks).
"""
from __future__ import annotations

import math
import statistics
import time

import torch

from benchmarks.timing import nonnegative_int, positive_float

HELP = "ICP refinement variants (schedules, robust kernels, symmetric, Open3D GICP) from the same coarse pose"

VARIANTS = {  # name -> schedule of multiscale_icp, or a special key
    "plain (v)": ((1.0, 1.0, None),),
    "tukey (v)": ((1.0, 1.0, 0.5),),
    "plain (v) + tukey (v) [default]": ((1.0, 1.0, None), (1.0, 1.0, 0.5)),
    "plain (v) + tukey (v/2)": ((1.0, 1.0, None), (0.5, 0.5, 0.5)),
    "plain (v) + tukey (v) + tukey (v/2)": ((1.0, 1.0, None), (1.0, 1.0, 0.5), (0.5, 0.5, 0.5)),
    "tukey c2f (v, 2d) (v/2, d) (v/2, d/2)": ((1.0, 2.0, 0.5), (0.5, 1.0, 0.5), (0.5, 0.5, 0.5)),
    "symmetric (v)": "symmetric",
    "symmetric tukey (v)": "symmetric_tukey",
    "plain (v) + symmetric tukey (v)": "plain+symmetric_tukey",
}
OPEN3D_VARIANTS = {
    "open3d point-to-plane (v)": ("p2l", ((1.0, 1.0),)),
    "open3d gicp c2f 5/2.5/1 cm": ("gicp", ((1.0, 2.0), (0.5, 1.0), (0.2, 0.5))),
    "open3d tukey point-to-plane c2f 5/2.5/1 cm": ("p2l_tukey", ((1.0, 2.0), (0.5, 1.0), (0.2, 0.5))),
}


def add_arguments(parser) -> None:
    parser.add_argument("--synthetic", type=nonnegative_int, default=200, help="built-in pairs (default 200; 0 = real pairs only)")
    parser.add_argument("--open3d", action="store_true", help="also Open3D's ICP variants on the real pairs")
    parser.add_argument("--voxel", type=positive_float, default=0.05, help="voxel size in metres (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)


def symmetric_icp(source, source_normals, target, target_normals, init, max_distance, iterations=30, robust_scale=None):
    """Symmetric point-to-plane ICP: residual ``(p - q) . (n_p + n_q)``, linearised with the rotation
    split half on each side (Rusinkiewicz, SIGGRAPH 2019); the step is ``rot(θ) trans(t cos θ) rot(θ)``
    about the centroid of the matched target points."""
    from geomdl.pipelines.registration.geometry import axis_angle_to_matrix, make_pose, transform
    from geomdl.pipelines.registration.neighbors import NearestNeighbor
    from geomdl.pipelines.registration.refine import tukey_weights

    nn = NearestNeighbor(target)
    pose = init.double().clone()
    eye = torch.eye(4, dtype=torch.float64)
    for _ in range(iterations):
        p, n_p = transform(source, pose), source_normals @ pose[:3, :3].T
        idx, dist = nn.query(p)
        keep = dist < max_distance
        if int(keep.sum()) < 6:
            break
        p, n_p, q, n_q = p[keep], n_p[keep], target[idx[keep]], target_normals[idx[keep]]
        n_q = torch.where(((n_q * n_p).sum(1) < 0)[:, None], -n_q, n_q)
        n = n_p + n_q
        c = q.mean(0)
        jac = torch.cat([torch.linalg.cross(p - c + q - c, n, dim=1), n], 1)
        res = ((p - q) * n).sum(1)
        w = tukey_weights(res, robust_scale) if robust_scale else torch.ones_like(res)
        x = -torch.linalg.solve(jac.T @ (w[:, None] * jac) + 1e-9 * torch.eye(6, dtype=torch.float64), jac.T @ (w * res))
        theta = math.atan(float(x[:3].norm()))
        half = make_pose(axis_angle_to_matrix(x[:3] / x[:3].norm().clamp_min(1e-15) * theta), x[3:] * 0)
        shift, back, move = eye.clone(), eye.clone(), eye.clone()
        shift[:3, 3], back[:3, 3], move[:3, 3] = c, -c, x[3:] * math.cos(theta)
        pose = shift @ half @ move @ half @ back @ pose
        if float(x.norm()) < 1e-6:
            break
    return pose


def _open3d_refine(src, tgt, init, voxel, kind, levels):
    import numpy as np

    from geomdl.utils.optional import import_open3d

    o3d = import_open3d()
    reg = o3d.pipelines.registration
    pose = init.numpy()
    for f_v, f_d in levels:
        clouds = []
        for pts in (src, tgt):
            pcd = o3d.geometry.PointCloud()
            pcd.points = o3d.utility.Vector3dVector(pts.numpy())
            pcd = pcd.voxel_down_sample(f_v * voxel)
            if kind != "gicp":
                pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * max(f_v, f_d) * voxel, max_nn=30))
            clouds.append(pcd)
        dist = f_d * voxel
        crit = reg.ICPConvergenceCriteria(max_iteration=30)
        if kind == "gicp":
            out = reg.registration_generalized_icp(*clouds, dist, pose, reg.TransformationEstimationForGeneralizedICP(), crit)
        else:
            est = (reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=dist / 2)) if kind == "p2l_tukey"
                   else reg.TransformationEstimationPointToPlane())
            out = reg.registration_icp(*clouds, dist, pose, est, crit)
        pose = np.asarray(out.transformation).copy()
    return torch.from_numpy(pose)


def _refine(name, spec, src, tgt, coarse, voxel, result, gen):
    from geomdl.pipelines.registration.geometry import estimate_normals
    from geomdl.pipelines.registration.refine import multiscale_icp

    if isinstance(spec, tuple) and isinstance(spec[0], str):
        return _open3d_refine(src, tgt, coarse, voxel, *spec)
    if isinstance(spec, str):
        s = result.source_down
        keep = torch.randperm(s.shape[0], generator=gen)[:3000]  # the subset size of the torch ICP levels
        s_n = estimate_normals(s)[keep]  # normals from the whole grid
        if spec.startswith("plain+"):
            coarse = multiscale_icp(src, tgt, coarse, voxel, schedule=((1.0, 1.0, None),), generator=gen).pose
        return symmetric_icp(s[keep], s_n, result.target_down, estimate_normals(result.target_down), coarse, voxel,
                             robust_scale=voxel / 2 if spec.endswith("symmetric_tukey") else None)
    return multiscale_icp(src, tgt, coarse, voxel, schedule=spec, generator=gen).pose


def run(args) -> list[dict]:
    from tqdm import tqdm

    from benchmarks.registration import DATA, real_pairs, synthetic_pairs
    from geomdl.pipelines.registration import register, registration_metrics
    from geomdl.pipelines.registration.geometry import estimate_normals
    from geomdl.pipelines.registration.verify import verify_pose

    rows = []
    open3d_variants = OPEN3D_VARIANTS if args.open3d else {}
    if open3d_variants:
        from geomdl.utils.optional import import_open3d

        try:  # checked once, before any work: a missing open3d is a skipped row, not a traceback at the end
            import_open3d()
        except ImportError as exc:
            open3d_variants = {}
            rows.extend({"pairs": "-", "start": "-", "variant": name, "skipped": str(exc)} for name in OPEN3D_VARIANTS)
    variants = dict(VARIANTS, **open3d_variants)
    if (DATA / "3dmatch").is_dir():
        for i, j, src, tgt, gt, info in real_pairs()[1]:
            result = register(src, tgt, voxel_size=args.voxel, seed=args.seed)
            for start, init in (("coarse", result.coarse_pose), ("gt", gt)):
                for name, spec in variants.items():
                    t0 = time.perf_counter()
                    pose = _refine(name, spec, src, tgt, init, args.voxel, result, torch.Generator().manual_seed(args.seed))
                    elapsed = time.perf_counter() - t0
                    m = registration_metrics(pose, gt, info)
                    rows.append({"pairs": f"{i}-{j}", "start": start, "variant": name, "rre_deg": m["rre_deg"],
                                 "rte_cm": 100 * m["rte"], "rmse_3dmatch_m": m["rmse"], "time_s": elapsed})
    stats = {name: {"ok": 0, "wrong": 0, "rre": [], "rte": [], "t": 0.0} for name in VARIANTS}
    for _, src, tgt, gt, _ in tqdm(list(synthetic_pairs(args.synthetic, args.seed)), desc="built-in pairs", disable=None):
        result = register(src, tgt, voxel_size=args.voxel, seed=args.seed)
        sd, td = result.source_down, result.target_down
        tn = estimate_normals(td)
        cs, ct = sd[result.correspondences[:, 0]], td[result.correspondences[:, 1]]
        for name, spec in VARIANTS.items():
            t0 = time.perf_counter()
            pose = _refine(name, spec, src, tgt, result.coarse_pose, args.voxel, result, torch.Generator().manual_seed(args.seed))
            st = stats[name]
            st["t"] += time.perf_counter() - t0
            m = registration_metrics(pose, gt)
            flag = verify_pose(pose, result.coarse_pose, sd, td, tn, cs, ct, 2 * args.voxel, args.voxel, args.voxel).success
            st["ok"] += int(m["success"])
            st["wrong"] += int(flag and not m["success"])
            if m["success"]:
                st["rre"].append(m["rre_deg"])
                st["rte"].append(m["rte"])
    for name, st in stats.items():
        if args.synthetic:
            rows.append({"pairs": f"built-in ({args.synthetic})", "start": "coarse", "variant": name,
                         "success_rate": st["ok"] / args.synthetic, "flagged_ok_but_wrong": st["wrong"],
                         "rre_deg": statistics.median(st["rre"]) if st["rre"] else None,
                         "rte_cm": 100 * statistics.median(st["rte"]) if st["rte"] else None, "time_s": st["t"]})
    return rows
