"""``geomdl register-eval BENCHMARK_DIR FRAGMENTS_DIR``: 3DMatch-protocol evaluation of the registration pipeline."""
from __future__ import annotations

HELP = "evaluate registration on a gt.log folder: geomdl register-eval BENCHMARK_DIR FRAGMENTS_DIR [--method ...]"


def add_arguments(parser) -> None:
    parser.add_argument("benchmark", help="folder with gt.log (and optionally gt.info)")
    parser.add_argument("fragments", help="folder with cloud_bin_<k>.ply/.npy/.pcd/.xyz fragments")
    parser.add_argument("--method", default="geomdl", choices=["geomdl", "learned", "fpfh", "open3d"],
                        help="registration method (default geomdl; see geomdl register --help)")
    parser.add_argument("--voxel", type=float, default=0.05, help="voxel size in metres (default 0.05)")
    parser.add_argument("--max-pairs", type=int, default=None, help="evaluate at most this many pairs")
    parser.add_argument("--out", help="write per-pair results and the summary as JSON "
                                      "(an undefined metric, NaN in the printout, as null)")


def run(args) -> int:
    from geomdl.cli import CommandError
    from geomdl.cli._common import check_output_file
    from geomdl.pipelines.registration.evaluate import evaluate_benchmark

    if args.max_pairs is not None and args.max_pairs < 1:
        raise CommandError(f"--max-pairs must be >= 1, got {args.max_pairs}")
    if not args.voxel > 0 or args.voxel == float("inf"):
        raise CommandError(f"--voxel must be a positive number (metres), got {args.voxel}")
    check_output_file("--out", args.out, CommandError)
    try:
        report = evaluate_benchmark(args.benchmark, args.fragments, method=args.method, voxel_size=args.voxel,
                                    max_pairs=args.max_pairs)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise CommandError(str(exc)) from exc
    for row in report["pairs"]:
        print(f"{row['pair']:>8}  RRE {row['rre_deg']:7.3f} deg  RTE {row['rte']:.4f}  RMSE {row['rmse']:.4f}  "
              f"inlier ratio {row['inlier_ratio']:.3f}  {'ok' if row['recall_ok'] else 'FAIL'}  {row['time_s']:.2f} s"
              + ("  (consecutive: not in registration_recall)" if row["consecutive"] else "")
              + ("  (RMSE over the points: no gt.info record)" if row.get("rmse_from") == "points" else ""))
    print("summary: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in report["summary"].items()))
    if report["summary"]["registration_recall_pairs"] < report["summary"]["pairs"]:
        print("registration_recall counts only non-consecutive pairs (j - i > 1), as the 3DMatch protocol does; "
              "registration_recall_all_pairs counts every pair")
    if args.out:
        from geomdl.utils.io import atomic_write_json

        try:  # strict JSON: an undefined metric (no non-consecutive pair: NaN recall) is written as null
            atomic_write_json(args.out, report, indent=2, default=float)
        except OSError as exc:
            raise CommandError(f"cannot write {exc.filename or args.out}: {exc.strerror or exc}") from exc
        print(f"results written to {args.out}")
    return 0
