"""``geomdl demo`` stage ``registration``: register a built-in partial-overlap scene pair (noise and
outliers, random pose) and a built-in shape, print RRE/RTE and write a PNG of the alignment."""
from __future__ import annotations

import pathlib

import torch


def run(out_dir: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    from geomdl.pipelines.registration.geometry import random_pose, transform
    from geomdl.pipelines.registration.metrics import registration_metrics
    from geomdl.pipelines.registration.pairs import partial_pair, synthetic_scene, synthetic_shape
    from geomdl.pipelines.registration.pipeline import register
    from geomdl.pipelines.registration.plot import save_alignment_png

    gen = torch.Generator().manual_seed(seed)
    scene = synthetic_scene(20000 if quick else 40000, generator=gen)
    src, tgt, pose = partial_pair(scene, 1.0, 0.6, noise=0.005, outlier_fraction=0.05, generator=gen)
    shape = synthetic_shape(2000 if quick else 5000, generator=gen)
    shape_pose = random_pose(gen, max_translation=2.0)
    problems = {"scene": (src, tgt, pose, 0.03), "shape": (transform(shape, shape_pose), shape, torch.linalg.inv(shape_pose), 0.08)}
    out = {}
    for name, (s, t, gt, voxel) in problems.items():
        result = register(s, t, voxel_size=voxel)
        m = registration_metrics(result.pose, gt)
        png = out_dir / f"registration_{name}.png"
        save_alignment_png(png, result.source_down, result.target_down, result.pose, title=f"{name}: {result.summary()}")
        print(f"   {name}: RRE {m['rre_deg']:.3f} deg, RTE {m['rte']:.4f}, flagged {'success' if result.success else 'failed'}, "
              f"inlier ratio {result.inlier_ratio:.3f}, {result.timings['total']:.2f} s -> {png}")
        out[name] = {"rre_deg": m["rre_deg"], "rte": m["rte"], "success": result.success, "png": str(png),
                     "time_s": result.timings["total"]}
    return out
