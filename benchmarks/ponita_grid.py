"""Equivariance error of PONITA's fiber-bundle mode for an unrotated grid, as a function of the number
of orientations (random weights, float64), and its reduction by averaging over random grid rotations.

Error = ||f(R x) - R f(x)|| / ||f(x)|| averaged over ``--samples`` Haar rotations, reported separately
for scalar and vector outputs; the co-rotated grid (``G R^T``) is exact and is the control row.

    python -m benchmarks ponita_grid --threads 1
"""
from __future__ import annotations

from benchmarks.timing import positive_int

import torch

GRIDS = ("fibonacci", "repulsion")  # the grids Ponita(grid=...) builds
HELP = "PONITA grid mode: equivariance error vs number of orientations and vs grid-rotation averaging"


def add_arguments(parser) -> None:
    parser.add_argument("--orientations", type=positive_int, nargs="+", default=[4, 8, 12, 16, 20, 32, 64, 128])
    parser.add_argument("--grids", nargs="+", default=list(GRIDS), choices=GRIDS)
    parser.add_argument("--samples", type=positive_int, default=8)
    parser.add_argument("--points", type=positive_int, default=12)
    parser.add_argument("--averages", type=positive_int, nargs="+", default=[1, 4, 16], help="grid rotations averaged (at 16 orientations)")
    parser.add_argument("--seed", type=int, default=0)


def _rel(a, b):
    return float((a - b).norm() / b.norm().clamp(min=1e-300))


def run(args) -> list[dict]:
    from geomdl.nn.ponita import Ponita, grid_moment_error
    from geomdl.utils.rotations import random_rotation

    gen = torch.Generator().manual_seed(args.seed)
    pos = torch.randn(args.points, 3, generator=gen, dtype=torch.float64)
    x = torch.randn(args.points, 2, generator=gen, dtype=torch.float64)
    vec = torch.randn(args.points, 1, 3, generator=gen, dtype=torch.float64)
    rots = [random_rotation(gen) for _ in range(args.samples)]
    rows = []

    def build(num, grid):
        torch.manual_seed(args.seed)  # the same weights for every grid size
        return Ponita(2, out_scalars=2, out_vectors=2, in_vectors=1, hidden=16, layers=3, num_ori=num, grid=grid,
                      task_level="node").double().eval()

    with torch.no_grad():
        for grid in args.grids:
            for num in args.orientations:
                model = build(num, grid)
                s, v = model(pos, x, vec)
                es, ev, ec = [], [], []
                for rot in rots:
                    s2, v2 = model(pos @ rot.T, x, vec @ rot.T)
                    es.append(_rel(s2, s))
                    ev.append(_rel(v2, v @ rot.T))
                    s3, v3 = model(pos @ rot.T, x, vec @ rot.T, grid=model.grid @ rot.T)
                    ec.append(max(_rel(s3, s), _rel(v3, v @ rot.T)))
                rows.append({"grid": grid, "orientations": num, "moment_error": grid_moment_error(model.grid),
                             "scalar_rel_error": sum(es) / len(es), "vector_rel_error": sum(ev) / len(ev),
                             "co_rotated_grid_error": max(ec)})
        model = build(16, "fibonacci")

        def averaged(p, vv, grids):
            outs = [model(p, x, vv, grid=g) for g in grids]
            return sum(o[0] for o in outs) / len(outs), sum(o[1] for o in outs) / len(outs)

        for k in args.averages:
            grids = [model.grid @ random_rotation(gen).T for _ in range(k)]
            s, v = averaged(pos, vec, grids)
            es, ev = [], []
            for rot in rots:
                s2, v2 = averaged(pos @ rot.T, vec @ rot.T, grids)
                es.append(_rel(s2, s))
                ev.append(_rel(v2, v @ rot.T))
            rows.append({"grid": "fibonacci", "orientations": 16, "grid_rotations_averaged": k,
                         "scalar_rel_error": sum(es) / len(es), "vector_rel_error": sum(ev) / len(ev)})
    return rows
