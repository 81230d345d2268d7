"""APEN part segmentation recipe: APEN, the globally E(3)-equivariant baseline (the same backbone on
the whole cloud) and DGCNN (no equivariance) trained in the same run on the same scenes.

Every model is trained with the bundled configs ``{apen,apen_global,dgcnn}_segmentation``
(``geomdl/configs/``) through the training engine on scenes whose objects are rotated about z only (``train_arrangement: z``); ``val`` has the
same distribution, ``test`` tumbles every object by its own random SO(3) rotation (a new arrangement of
the parts). Reported: point mIoU on val (same arrangement) and test (new arrangement), training time
(ratio to DGCNN's, measured in the same run), and for the trained APEN, per layer, the measured
piecewise-equivariance error of its invariant features under independent random O(3) motions of the
true parts (first-layer cells carried with the points, as in the paper's definition, and recomputed
on the moved scene, as at test time) next to lambda-hat (share of points in parts that straddle true parts) and delta-hat
(assignment uncertainty), plus the error with the true partition (exactly piecewise equivariant).
Default recipe: a few minutes of CPU per model (run with ``--threads 1`` on a shared machine).
"""
from __future__ import annotations

import math
import pathlib
import time

from benchmarks.timing import check_config, nonnegative_float, positive_int

HELP = "APEN vs global-E(3) baseline vs DGCNN: part segmentation mIoU on new part arrangements + measured error"

MODELS = (("apen", "apen_segmentation"), ("apen_global", "apen_global_segmentation"),
          ("dgcnn", "dgcnn_segmentation"))


def add_arguments(parser) -> None:
    parser.add_argument("--source", default="shapes", choices=["shapes", "modelnet", "parts"], help="scene source (default shapes)")
    parser.add_argument("--root", default=None, help="ModelNet folder for --source modelnet (data.root)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="extra config overrides for every run")
    parser.add_argument("--models", nargs="+", default=[m for m, _ in MODELS], choices=[m for m, _ in MODELS])
    parser.add_argument("--out-dir", default="runs/bench_apen_segmentation", help="run folders")
    parser.add_argument("--measure-scenes", type=positive_int, default=8, help="test scenes for the equivariance measurement")
    parser.add_argument("--measure-samples", type=positive_int, default=4, help="random piecewise motions per measurement")
    parser.add_argument("--measure-translation", type=nonnegative_float, default=0.0,
                        help="std of the random translation per part in the measurement (default 0: parts turn in place, "
                             "as in the test arrangement, so they never collide)")
    parser.add_argument("--only-measure", action="store_true", help="skip training; measure the APEN run in --out-dir")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, not a measurement)")


def measure_apen(run_dir: pathlib.Path, num_scenes: int, n_samples: int, translation: float = 0.0) -> list[dict]:
    """Per-layer measured error, lambda-hat and delta-hat of a trained APEN on test scenes (float64)."""
    import torch
    from torch_geometric.data import Batch

    from geomdl.nn.apen import piecewise_equivariance_error
    from geomdl.pipelines.runs import load_trained

    model, task, _ = load_trained(run_dir / "last.pt")
    model = model.double()
    scenes = list(task.dataset_for("test"))[:num_scenes]
    batch = Batch.from_data_list(scenes)
    pos = batch.pos.double()

    def measure(**kw):
        return piecewise_equivariance_error(model, pos, batch.batch, batch.part, n_samples=n_samples,
                                            generator=torch.Generator().manual_seed(0), translation_scale=translation, **kw)

    carried, recomputed, gt = measure(), measure(carry_initial=False), measure(partition="gt")
    n = len(scenes)
    rows = []
    for layer, err in enumerate(carried["equivariance_error_per_layer"]):
        rows.append({"model": "apen", "measure": f"layer {layer + 1}", "equivariance_error": err,
                     "equivariance_error_cells_recomputed": recomputed["equivariance_error_per_layer"][layer],
                     "lambda_points": carried["lambda_points_per_layer"][layer],
                     "delta_points": carried["delta_points_per_layer"][layer],
                     "parts_per_cloud": carried["parts_per_layer"][layer] / n,
                     "true_parts_per_cloud": (int(batch.part.max()) + 1) / n})
    rows.append({"model": "apen", "measure": "logits (predicted partitions)", "equivariance_error": carried["equivariance_error"],
                 "equivariance_error_cells_recomputed": recomputed["equivariance_error"],
                 "equivariance_error_max": carried["equivariance_error_max"]})
    rows.append({"model": "apen", "measure": "logits (true partition)", "equivariance_error": gt["equivariance_error"],
                 "equivariance_error_max": gt["equivariance_error_max"]})
    return rows


def run(args) -> list[dict]:
    from geomdl.pipelines.runs import train

    out = pathlib.Path(args.out_dir)
    # the end-of-training weights, which the measurement below loads (last.pt), as for the README's numbers
    common = [f"data.kwargs.source={args.source}", "train.tensorboard=false", "train.progress=off",
              "train.final_weights=last"]
    if args.root:
        common.append(f"data.root={args.root}")
    if args.quick:  # before --set, which wins (--quick --set train.epochs=3 trains 3 epochs)
        common += ["train.epochs=1", "data.kwargs.num_scenes=8", "data.kwargs.num_points=128"]
    common += args.set
    if args.only_measure:
        return measure_apen(out / "apen", args.measure_scenes, args.measure_samples, args.measure_translation)
    chosen = [(name, cfg) for name, cfg in MODELS if name in args.models]
    for name, cfg in chosen:  # a bad --set is a one-line usage error, not a traceback
        check_config(cfg, [*common, f"train.out_dir={out / name}"])
    results = {}
    for name, cfg in chosen:
        t0 = time.perf_counter()
        summary = train(cfg, [*common, f"train.out_dir={out / name}"], overwrite=True)
        seconds = time.perf_counter() - t0
        results[name] = (summary, seconds)
        print(f"{name}: {seconds:.0f} s, val mIoU {summary['metrics']['val']['miou']:.3f}, "
              f"test mIoU {summary['metrics']['test']['miou']:.3f}", flush=True)
    peer = results.get("dgcnn", (None, math.nan))[1]
    rows = []
    for name, (summary, seconds) in results.items():
        val, test = summary["metrics"]["val"], summary["metrics"]["test"]
        rows.append({"model": name, "measure": "training", "val_miou_same_arrangement": val["miou"],
                     "test_miou_new_arrangement": test["miou"], "test_accuracy": test["accuracy"],
                     "n_test_points": test["num_points"], "train_s": seconds, "train_time_vs_dgcnn": seconds / peer})
    if "apen" in results:
        rows += measure_apen(out / "apen", args.measure_scenes, args.measure_samples, args.measure_translation)
    return rows
