"""``geomdl register SOURCE TARGET``: align two point-cloud files, write the pose and a PNG."""
from __future__ import annotations

HELP = "align two point clouds: geomdl register SOURCE TARGET [--voxel 0.05] [--method geomdl] [--out pose.txt] [--show out.png]"


def add_arguments(parser) -> None:
    parser.add_argument("source", help="source cloud (.ply/.pcd/.xyz/.txt/.npy); the pose maps it onto the target")
    parser.add_argument("target", help="target cloud (same formats)")
    parser.add_argument("--voxel", type=float, default=0.05, help="voxel size in the clouds' units (default 0.05)")
    parser.add_argument("--method", default="geomdl", choices=["geomdl", "learned", "fpfh", "open3d"],
                        help="geomdl (PPF + spectral, default), learned (learned invariant descriptor + spectral), "
                             "fpfh (FPFH + spectral), open3d (FPFH + RANSAC)")
    parser.add_argument("--out", help="write the 4x4 pose (source -> target) to this file: .npy writes a NumPy array, "
                        "any other name four text rows")
    parser.add_argument("--show", metavar="PNG", help="write a PNG of the aligned clouds")
    parser.add_argument("--gt", help="optional 4x4 ground-truth pose file (text or .npy): prints RRE/RTE")


def _read_pose(path):
    import numpy as np
    import torch

    from geomdl.cli import CommandError

    try:
        pose = np.load(path, allow_pickle=False) if str(path).lower().endswith(".npy") else np.loadtxt(path)
    except Exception as exc:  # numpy raises OSError, ValueError, EOFError, UnicodeDecodeError... for bad files
        raise CommandError(f"{path}: cannot read a 4x4 pose ({type(exc).__name__}: {exc})") from exc
    if pose.shape != (4, 4) or not np.issubdtype(pose.dtype, np.floating) and not np.issubdtype(pose.dtype, np.integer):
        raise CommandError(f"{path}: expected a 4x4 numeric pose, got shape {pose.shape} and dtype {pose.dtype}")
    if not np.isfinite(pose).all():
        raise CommandError(f"{path}: the 4x4 pose contains NaN or infinite values")
    return torch.from_numpy(pose.astype("float64"))


def _name_cloud(message: str, args) -> str:
    """``message`` of register() about "source ..." / "target ..." with the file named: "source a.ply: ..."."""
    for name, path in (("source", args.source), ("target", args.target)):
        if message.startswith(name + " "):
            return f"{name} {path}: {message[len(name) + 1:]}"
    return message


def run(args) -> int:
    import math

    from geomdl.cli import CommandError
    from geomdl.cli._common import check_output_file
    from geomdl.pipelines.registration import read_point_cloud, register, registration_metrics, write_pose

    if not math.isfinite(args.voxel) or args.voxel <= 0:
        raise CommandError(f"--voxel must be a positive number (in the clouds' units), got {args.voxel}")
    for option, value in (("--out", args.out), ("--show", args.show)):
        check_output_file(option, value, CommandError)
    if args.gt is not None and not args.gt.strip():
        raise CommandError("--gt: empty path; give the ground-truth pose file (or leave --gt out)")
    gt = _read_pose(args.gt) if args.gt else None  # a bad --gt fails before the (long) registration
    try:
        source, target = read_point_cloud(args.source), read_point_cloud(args.target)
        result = register(source, target, method=args.method, voxel_size=args.voxel)
    except (FileNotFoundError, IsADirectoryError, ValueError, TypeError) as exc:
        raise CommandError(_name_cloud(str(exc), args)) from exc
    print(result.summary())
    print("stage times (s): " + ", ".join(f"{k} {v:.3f}" for k, v in result.timings.items()))
    print("pose (source -> target):")
    for row in result.pose.tolist():
        print("  " + " ".join(f"{v: .6f}" for v in row))
    if gt is not None:
        m = registration_metrics(result.pose, gt, source=source)
        # the RMSE over the source points (no gt.info here; geomdl register-eval uses gt.info, 3DMatch's definition)
        print(f"RRE {m['rre_deg']:.3f} deg, RTE {m['rte']:.4f}, RMSE over the source points {m['rmse']:.4f}")
    try:
        if args.out:
            write_pose(args.out, result.pose)
            print(f"pose written to {args.out}")
        if args.show:
            from geomdl.pipelines.registration.plot import save_alignment_png

            save_alignment_png(args.show, result.source_down, result.target_down, result.pose, title=result.summary())
            print(f"image written to {args.show}")
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename or args.out or args.show}: {exc.strerror or exc}") from exc
    return 0 if result.success else 1
