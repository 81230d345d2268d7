"""Part ``knn_features`` of ``python -m benchmarks ops``: k nearest neighbours in feature space (DGCNN's
dynamic graphs: 64 features, k = 20, clouds of 1024 points; one 16-feature cloud of 16,384 points; and
the 9 local-covariance features of 20,000 points on a torus, a 2-D surface in feature space, where the
grid search is the faster one).

geomdl's compiled knn (automatic choice between its grid and dense searches) against each of them forced
with ``GEOMDL_KNN_SEARCH``, its pure-PyTorch reference, torch ``cdist`` + ``topk`` per cloud
(what DGCNN implementations do), torch_cluster (PyG's knn_graph) and scipy's cKDTree. Each peer's edge
set is compared with geomdl's first; float32 peers rank near-ties by float32 distances, so a few
edges may differ (the count is reported).
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.timing import environment_variable

CASES = [  # (clouds, points per cloud, features or "torus", k)
    (8, 1024, 64, 20),
    (1, 16384, 16, 16),
    (1, 20000, "torus", 16),
]
QUICK_CASES = [(2, 512, 64, 20), (1, 2048, 16, 16), (1, 3000, "torus", 16)]


def _torus_covariances(n: int) -> torch.Tensor:
    """[n, 9] local covariance features of n points on a torus (as `geomdl demo`'s ops stage builds them)."""
    from geomdl import ops
    from geomdl.pipelines.demo_ops import _torus, local_covariances

    pos = _torus(n, torch.Generator().manual_seed(0))
    return local_covariances(pos, ops.radius_graph(pos, 0.08 * (20000 / n) ** 0.5, max_num_neighbors=64))


def feature_case(clouds: int, per: int, dim):
    """``(x [clouds * per, D], batch, D, name)`` of a case of CASES: random features, or the torus covariances."""
    n = clouds * per
    if dim == "torus":
        x, dim, name = _torus_covariances(n), 9, f"torus covariances {per} D=9"
    else:
        x = torch.randn(n, dim, generator=torch.Generator().manual_seed(dim))
        name = f"features {clouds}x{per} D={dim}"
    return x, torch.arange(clouds).repeat_interleave(per), dim, name


def _search(value: str, variable: str = "GEOMDL_KNN_SEARCH"):
    """Force a CPU neighbour search: ``variable`` (GEOMDL_KNN_SEARCH or GEOMDL_RADIUS_SEARCH) = ``value``."""
    return environment_variable(variable, value)


def knn_features(table, quick: bool, threads: int, optional, edge_key) -> None:
    from scipy.spatial import cKDTree

    from geomdl import ops

    for clouds, per, dim, k in QUICK_CASES if quick else CASES:
        n = clouds * per
        x, batch, dim, name = feature_case(clouds, per, dim)
        op = f"knn_graph {name} k={k}"
        with ops.use_backend("compiled"):
            want = ops.knn_graph(x, k, batch)
        key = edge_key(want, n)

        def agree(edges):
            e = torch.as_tensor(edges)
            if e.shape != want.shape:
                return f"NO (shape {tuple(e.shape)})"
            differ = int((~torch.isin(edge_key(e, n), key)).sum())  # edges of e missing from want (not a shifted count)
            return "yes" if differ == 0 else f"{differ} of {key.numel()} edges differ (float32 near-ties)"

        def geomdl_compiled():
            with ops.use_backend("compiled"):
                return ops.knn_graph(x, k, batch)

        table.time(op, "geomdl (compiled, automatic choice)", geomdl_compiled, geomdl=True)
        for search in ("dense", "grid"):
            def forced(search=search):
                with _search(search), ops.use_backend("compiled"):
                    return ops.knn_graph(x, k, batch)

            table.time(op, f"geomdl {search} search (GEOMDL_KNN_SEARCH={search})", forced, agrees=agree(forced()),
                       repeats=3)
        table.time(op, "geomdl reference", lambda: ops.knn_graph_reference(x, k, batch),
                   agrees=agree(ops.knn_graph_reference(x, k, batch)), repeats=3)

        if per <= 4096:
            def cdist_topk():  # [B, P, P] distances per cloud, k + 1 smallest, the point itself dropped
                xb = x.view(clouds, per, dim)
                idx = torch.cdist(xb, xb).topk(k + 1, dim=-1, largest=False).indices
                idx = idx + (torch.arange(clouds) * per).view(clouds, 1, 1)
                dst = torch.arange(n).repeat_interleave(k + 1)
                src = idx.reshape(-1)
                keep = src != dst
                return torch.stack([src[keep], dst[keep]])

            table.time(op, "torch cdist + topk per cloud (float32)", cdist_topk, agrees=agree(cdist_topk()))
        tc = optional("torch_cluster")
        if tc is not None:
            fn = lambda: tc.knn_graph(x, k, batch, loop=False, num_workers=threads)  # noqa: E731
            table.time(op, f"torch_cluster.knn_graph (num_workers={threads})", fn, agrees=agree(fn()), repeats=3)
        else:
            table.skip(op, "torch_cluster", "not installed (pip install 'geomdl[bench]')")

        xnp = x.numpy()

        def ckdtree():
            parts = []
            for b in range(clouds):
                pts = xnp[b * per:(b + 1) * per]
                _, idx = cKDTree(pts).query(pts, k=k + 1, workers=threads)
                dst = np.repeat(np.arange(per), k + 1)
                src = idx.reshape(-1)
                keep = src != dst
                parts.append(np.stack([src[keep], dst[keep]]) + b * per)
            return torch.from_numpy(np.concatenate(parts, axis=1))

        table.time(op, f"scipy cKDTree.query per cloud (workers={threads})", ckdtree, agrees=agree(ckdtree()), repeats=3)


def knn_search_sweep(table, quick: bool) -> None:
    """Part ``knn_sweep``: the automatic choice against both searches forced, on random features of growing
    dimension (one cloud of 4096 points, k = 16): the data behind the cost model in
    kernels/neighbors/knn_dense.h."""
    from geomdl import ops

    n = 1024 if quick else 4096
    for dim in (4, 8, 10, 16, 32, 64):
        x = torch.randn(n, dim, generator=torch.Generator().manual_seed(dim))
        op = f"knn_graph random 1x{n} D={dim} k=16"

        def run(search):
            with _search(search), ops.use_backend("compiled"):
                return ops.knn_graph(x, 16)

        want = run("auto")
        table.time(op, "geomdl (compiled, automatic choice)", lambda: run("auto"), geomdl=True, repeats=3)
        for search in ("dense", "grid"):
            table.time(op, f"geomdl {search} search", lambda s=search: run(s),
                       agrees="yes" if torch.equal(run(search), want) else "NO", repeats=3)
