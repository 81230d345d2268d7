"""Cost of the TinvNN embedding: the covariance route (positions, O(N d^2)) against the classical-MDS
route (n x n distance matrices, O(n^3)) on the same clouds, and against one forward pass of the PointNet
it feeds. Every timing is checked for agreement first (the two routes give the same embedding)."""
from __future__ import annotations

HELP = "TinvNN embedding: covariance route vs distance-matrix route vs a PointNet forward"


def add_arguments(parser) -> None:
    from benchmarks.timing import positive_int

    parser.add_argument("--clouds", type=positive_int, default=8, help="clouds per batch (default 8)")
    parser.add_argument("--points", type=positive_int, nargs="+", default=[256, 1024], help="points per cloud (default 256 1024)")
    parser.add_argument("--repeats", type=positive_int, default=5)


def run(args) -> list[dict]:
    import torch

    from benchmarks.timing import measure
    from geomdl.models.pointnet import PointNet
    from geomdl.nn.tinv import mds_embedding

    rows = []
    gen = torch.Generator().manual_seed(0)
    net = PointNet(40).eval()
    for n in args.points:
        x = torch.randn(args.clouds * n, 3, generator=gen) * torch.tensor([3.0, 2.0, 1.0])
        x = (x + 0.3 * x.pow(2)).double()
        batch = torch.arange(args.clouds).repeat_interleave(n)
        dists = [torch.cdist(c, c, compute_mode="donot_use_mm_for_euclid_dist") for c in x.view(args.clouds, n, 3)]
        by_pos = mds_embedding(x, batch=batch).embedding
        by_dist = mds_embedding(distances=dists).embedding
        agree = float((by_pos - by_dist).abs().max())
        cov = measure(lambda: mds_embedding(x, batch=batch), repeats=args.repeats)
        gram = measure(lambda: mds_embedding(distances=dists), repeats=args.repeats)
        x32 = x.float()  # the peer's input, cast outside its timing
        with torch.no_grad():
            fwd = measure(lambda: net(x32, batch=batch), repeats=args.repeats)
        for name, t in (("covariance route (pos)", cov), ("distance route (n x n)", gram), ("PointNet forward (peer)", fwd)):
            rows.append({"points": n, "clouds": args.clouds, "method": name, "median_ms": t["median_ms"],
                         "iqr_ms": t["iqr_ms"], "ratio_vs_covariance": t["median_ms"] / cov["median_ms"],
                         "max_abs_diff_routes": agree})
    return rows
