"""Registration: geomdl (PPF histogram or learned descriptor + spectral estimator + ICP) vs Open3D (FPFH + RANSAC + ICP).

Three sets of pairs, every pair registered by every method in the same run (order alternated):

* ``synthetic``: built-in partial-overlap pairs (room-like scenes, two ball-shaped views, 5 mm noise,
  5 % outliers, random poses);
* ``lowoverlap``: pairs cropped from the real 3DMatch redkitchen fragments (0-4, 0-6, 4-6) down to
  10-30 % overlap, source randomly rotated (needs ``../shared/data/3dmatch``);
* ``3dmatch``: the three real pairs as they are.

Success: RRE < 15 deg and RTE < 0.3 m (3DMatch convention). ``flagged_ok_but_wrong`` counts results
with ``success=True`` that fail that criterion (the flag must never present a wrong pose). Times are
wall-clock seconds of the whole ``register`` call (downsampling and verification included);
``time_ratio_vs_open3d`` = Open3D total / method total, measured in the same run (methods alternate
order pair by pair). The learned descriptor was trained on built-in pairs of other seeds only.
"""
from __future__ import annotations

from benchmarks.timing import nonnegative_int, positive_float

import os
import pathlib
import statistics
import time

import torch

HELP = "registration success rate and time: geomdl vs Open3D FPFH+RANSAC+ICP"
DATA = pathlib.Path(os.environ.get("GEOMDL_SHARED_DATA", pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def add_arguments(parser) -> None:
    from geomdl.pipelines.registration.pipeline import METHODS

    parser.add_argument("--synthetic", type=nonnegative_int, default=200, help="number of built-in pairs (default 200)")
    parser.add_argument("--crops", type=nonnegative_int, default=24, help="number of low-overlap crops of real pairs (default 24)")
    parser.add_argument("--methods", nargs="+", default=["geomdl", "learned", "open3d"], choices=METHODS, metavar="METHOD",
                        help=f"methods (default: geomdl learned open3d; choose from {', '.join(METHODS)})")
    parser.add_argument("--voxel", type=positive_float, default=0.05, help="voxel size in metres (default 0.05)")
    parser.add_argument("--seed", type=int, default=0)


def synthetic_pairs(num: int, seed: int):
    from geomdl.pipelines.registration.pairs import partial_pair, synthetic_scene

    gen = torch.Generator().manual_seed(seed)
    for _ in range(num):
        scene = synthetic_scene(30000, extent=3.0, generator=gen)
        offset = 0.5 + 0.7 * float(torch.rand((), generator=gen))
        src, tgt, pose = partial_pair(scene, 1.0, offset, noise=0.005, outlier_fraction=0.05, generator=gen)
        yield "synthetic", src, tgt, pose, None


def real_pairs():
    from geomdl.pipelines.registration.io import read_gt_info, read_gt_log, read_point_cloud

    root = DATA / "3dmatch"
    bench = root / "benchmarks" / "3DMatch" / "7-scenes-redkitchen"
    gt, info = read_gt_log(bench / "gt.log"), read_gt_info(bench / "gt.info")
    frags = {0: read_point_cloud(root / "fragments" / "7-scenes-redkitchen" / "cloud_bin_0.ply"),
             4: read_point_cloud(root / "fragments" / "7-scenes-redkitchen" / "cloud_bin_4.ply"),
             6: read_point_cloud(root / "geotransformer_demo" / "src.npy")}
    pairs = [(i, j, frags[j], frags[i], gt[(i, j)], info[(i, j)]) for i, j in ((0, 4), (0, 6), (4, 6))]
    return frags, pairs


def lowoverlap_pairs(num: int, seed: int):
    from geomdl.pipelines.registration.geometry import voxel_downsample
    from geomdl.pipelines.registration.pairs import crop_low_overlap

    frags, pairs = real_pairs()
    small = {k: voxel_downsample(v, 0.025)[0] for k, v in frags.items()}
    gen = torch.Generator().manual_seed(seed + 1)
    for k in range(num):
        i, j, _, _, gt, _ = pairs[k % len(pairs)]
        target_overlap = 0.1 + 0.2 * float(torch.rand((), generator=gen))
        src, tgt, pose, measured = crop_low_overlap(small[j], small[i], gt, target_overlap, generator=gen)
        yield f"lowoverlap ({measured:.2f})", src, tgt, pose, None


def run(args) -> list[dict]:
    from tqdm import tqdm

    from geomdl.pipelines.registration import register, registration_metrics

    problems = [("synthetic", p) for p in synthetic_pairs(args.synthetic, args.seed)]
    if (DATA / "3dmatch").is_dir():
        problems += [("lowoverlap", p) for p in lowoverlap_pairs(args.crops, args.seed)]
        problems += [("3dmatch", (f"{i}-{j}", s, t, g, inf)) for i, j, s, t, g, inf in real_pairs()[1]]
    else:
        print(f"(no real data at {DATA}: synthetic pairs only)")
    if not problems:
        raise SystemExit(f"--synthetic 0 and no real data at {DATA} (GEOMDL_SHARED_DATA): no pairs to register")
    stats, methods, skipped = {}, [], []
    for method in args.methods:  # warm-up (lazy imports, weights, first-call allocations), not timed
        try:
            register(problems[0][1][1], problems[0][1][2], method=method, voxel_size=args.voxel, seed=args.seed)
        except ImportError as exc:  # a peer that is not installed (open3d): a row saying so, not a crash
            skipped.append({"pairs": "all", "method": method, "n": 0, "skipped": str(exc)})
            continue
        methods.append(method)
    for k, (group, (_, src, tgt, pose, info)) in enumerate(tqdm(problems, desc="pairs", disable=None)):
        methods_k = methods if k % 2 == 0 else methods[::-1]
        for method in methods_k:
            t0 = time.perf_counter()
            result = register(src, tgt, method=method, voxel_size=args.voxel, seed=args.seed)
            elapsed = time.perf_counter() - t0
            met = registration_metrics(result.pose, pose, info)
            rec = stats.setdefault((group, method), {"ok": 0, "n": 0, "time": 0.0, "rre": [], "rte": [], "flag_wrong": 0})
            rec["n"] += 1
            rec["ok"] += int(met["success"])
            rec["time"] += elapsed
            rec["flag_wrong"] += int(result.success and not met["success"])
            if met["success"]:
                rec["rre"].append(met["rre_deg"])
                rec["rte"].append(met["rte"])
    rows = []
    groups = list(dict.fromkeys(g for g, _ in stats)) + ["overall"]
    for group in groups:
        peer_time = _total(stats, group, "open3d")
        for method in methods:
            keys = [(g, method) for g, m in stats if m == method and (group == "overall" or g == group)]
            recs = [stats[k] for k in keys]
            n = sum(r["n"] for r in recs)
            ok = sum(r["ok"] for r in recs)
            t = sum(r["time"] for r in recs)
            rre = [v for r in recs for v in r["rre"]]
            rte = [v for r in recs for v in r["rte"]]
            rows.append({"pairs": group, "method": method, "n": n, "success_rate": ok / max(n, 1),
                         "median_rre_deg": statistics.median(rre) if rre else None,
                         "median_rte_m": statistics.median(rte) if rte else None,
                         "flagged_ok_but_wrong": sum(r["flag_wrong"] for r in recs),
                         "total_s": t, "time_ratio_vs_open3d": (peer_time / t) if peer_time and t else None})
    return rows + skipped


def _total(stats, group, method):
    return sum(r["time"] for (g, m), r in stats.items() if m == method and (group == "overall" or g == group)) or None
