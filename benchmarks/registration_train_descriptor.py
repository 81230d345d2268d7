"""Training recipe of the shipped learned descriptor (``geomdl/pipelines/registration/weights/descriptor.pt``).

``python -m benchmarks registration_train_descriptor [--threads 2]`` (defaults = the shipped weights' recipe;
the weights go to ``benchmarks/results/registration_descriptor.pt`` unless ``--weights`` names another file:
``--weights geomdl/pipelines/registration/weights/descriptor.pt`` replaces the shipped ones):
generates the built-in training pairs (seeded; room-like scene pairs and shape pairs, no download and
no real scan), trains :class:`~geomdl.pipelines.registration.learned.PatchDescriptor` with InfoNCE
(:mod:`geomdl.pipelines.registration.training`), writes the weights atomically, then compares the
learned descriptor with geomdl's PPF histogram on held-out built-in pairs (another seed) and, when
``../shared/data/3dmatch`` is present, on the real redkitchen pairs (reported only, never used for
training or model selection): mutual-NN matches on grid keypoints and their inlier ratio.
"""
from __future__ import annotations

import pathlib
import statistics
import time

import torch

from benchmarks.timing import nonnegative_int, positive_float, positive_int

HELP = "train the learned registration descriptor (built-in pairs) and compare it with the PPF histogram"


def add_arguments(parser) -> None:
    from geomdl.pipelines.registration.learned import WEIGHTS

    parser.add_argument("--scenes", type=nonnegative_int, default=240, help="scene training pairs (default 240)")
    parser.add_argument("--shapes", type=nonnegative_int, default=80, help="shape training pairs (default 80)")
    parser.add_argument("--steps", type=positive_int, default=1500, help="optimisation steps (default 1500)")
    parser.add_argument("--width", type=positive_int, default=48, help="channels per neighbour (default 48)")
    parser.add_argument("--degree", type=nonnegative_int, default=3, help="angular harmonics (default 3)")
    parser.add_argument("--no-ppf-input", action="store_true", help="do not feed the PPF histogram to the head")
    parser.add_argument("--dim", type=positive_int, default=32, help="descriptor size (default 32)")
    parser.add_argument("--neighbors", type=positive_int, default=48, help="K neighbours per patch (default 48)")
    parser.add_argument("--radius", type=positive_float, default=5.0, help="support radius in voxels (default 5)")
    parser.add_argument("--pairs-per-step", type=positive_int, default=3)
    parser.add_argument("--per-pair", type=positive_int, default=128, help="matches per pair and step (default 128)")
    parser.add_argument("--lr", type=positive_float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val", type=nonnegative_int, default=30, help="held-out built-in pairs for the comparison (default 30)")
    default = pathlib.Path(__file__).resolve().parent / "results" / "registration_descriptor.pt"
    parser.add_argument("--weights", default=str(default),
                        help=f"output weights (default {default}; pass {WEIGHTS} to replace the shipped weights)")


def run(args) -> list[dict]:
    from geomdl.pipelines.registration import descriptors
    from geomdl.pipelines.registration.learned import PatchDescriptor, save_descriptor
    from geomdl.pipelines.registration.training import make_training_pairs, match_statistics, train_descriptor

    voxel = 0.05
    if args.scenes + args.shapes == 0:
        raise SystemExit("--scenes 0 --shapes 0: no training pairs")
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    pairs = make_training_pairs(args.scenes, args.shapes, seed=1000 + args.seed, voxel=voxel, progress=True)
    t_data = time.perf_counter() - t0
    model = PatchDescriptor(dim=args.dim, width=args.width, degree=args.degree, ppf_input=not args.no_ppf_input, radius_voxels=args.radius, num_neighbors=args.neighbors)
    t0 = time.perf_counter()
    losses = train_descriptor(model, pairs, args.steps, voxel=voxel, pairs_per_step=args.pairs_per_step,
                              per_pair=args.per_pair, lr=args.lr, seed=args.seed, progress=True)
    t_train = time.perf_counter() - t0
    meta = {"recipe": "python -m benchmarks registration_train_descriptor", "seed": args.seed, "steps": args.steps,
            "scenes": args.scenes, "shapes": args.shapes, "voxel": voxel, "data_s": round(t_data, 1),
            "train_s": round(t_train, 1), "final_loss": statistics.fmean(losses[-50:]), "threads": torch.get_num_threads()}
    pathlib.Path(args.weights).parent.mkdir(parents=True, exist_ok=True)
    save_descriptor(model, args.weights, meta)
    print(f"wrote {args.weights} ({pathlib.Path(args.weights).stat().st_size / 1024:.0f} kB): data {t_data:.0f} s, "
          f"training {t_train:.0f} s, loss {losses[0]:.3f} -> {meta['final_loss']:.3f}")

    def ppf(points, normals, keys):  # the training pairs' normals are oriented already
        return descriptors.ppf_histogram(points, normals, keys, 5 * voxel, oriented=True)

    def learned(points, normals, keys):
        return model.describe(points, normals, keys, voxel)

    problems = [(f"built-in held-out ({p.kind})", p) for p in make_training_pairs(args.val, args.val // 3,
                                                                                   seed=5000 + args.seed, voxel=voxel)]
    problems += [("3dmatch redkitchen", p) for p in _real_pairs(voxel)]
    rows = []
    for group in dict.fromkeys(g for g, _ in problems):
        for name, fn in (("ppf_histogram", ppf), ("learned", learned)):
            stats = [match_statistics(fn, p, voxel, 2 * voxel) for g, p in problems if g == group]
            ratios = [s["inlier_ratio"] for s in stats]
            rows.append({"pairs": group, "descriptor": name, "n": len(stats),
                         "mean_inlier_ratio": statistics.fmean(ratios),
                         "feature_match_recall": sum(r > 0.05 for r in ratios) / len(ratios),
                         "median_inliers": statistics.median(s["inliers"] for s in stats)})
    rows.append({"pairs": "training", "descriptor": "learned", "n": len(pairs), "loss_first": losses[0],
                 "loss_last50": meta["final_loss"], "train_s": t_train, "data_s": t_data})
    return rows


def _real_pairs(voxel):
    from benchmarks.registration import DATA
    from geomdl.pipelines.registration.training import _prepare

    if not (DATA / "3dmatch").is_dir():
        return []
    from benchmarks.registration import real_pairs

    _, pairs = real_pairs()
    out = []
    for i, j, src, tgt, gt, _ in pairs:
        pair = _prepare(src, tgt, gt, voxel, f"{i}-{j}")
        if pair is not None:
            out.append(pair)
    return out
