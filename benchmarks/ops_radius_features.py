"""Parts ``radius_features`` and ``radius_sweep`` of ``python -m benchmarks ops``: radius graphs in feature
space, the radius counterpart of ``ops_knn_features.py`` (same clouds: 8 x 1024 points with 64 random
features, one cloud of 16,384 points with 16, and the 9 local-covariance features of 20,000 points on a
torus, a 2-D surface in feature space). ``r`` is the median distance of a query to its 20th neighbour
(16th on the single clouds), and ``max_num_neighbors`` the largest degree, so nothing is cut.

geomdl's compiled radius_graph (automatic choice between its grid and dense searches) against each of them
forced with ``GEOMDL_RADIUS_SEARCH``, its pure-PyTorch reference, torch_cluster (PyG's radius_graph) and
scipy's cKDTree. Each peer's edge set is compared with geomdl's first (geomdl and its reference decide
``|x_j - y_i|^2 <= r^2`` in double, summed left to right; a peer that rounds otherwise may differ on
pairs at distance r, and the count is reported).
"""
from __future__ import annotations

import numpy as np
import torch

from benchmarks.ops_knn_features import CASES, QUICK_CASES, _search, feature_case


def _radius_for(x: torch.Tensor, batch: torch.Tensor, k: int) -> float:
    """Median distance from a sample of 64 queries to their k-th neighbour (itself excluded)."""
    from geomdl import ops

    sample = torch.linspace(0, len(x) - 1, 64).long()
    edges = ops.knn(x, x[sample], k + 1, batch, batch[sample])
    d = (x[edges[0]].double() - x[sample][edges[1]].double()).norm(dim=1).view(len(sample), k + 1)
    return float(d[:, -1].median())


def _run(x, r, batch, limit, search="auto"):
    from geomdl import ops

    with _search(search, "GEOMDL_RADIUS_SEARCH"), ops.use_backend("compiled"):
        return ops.radius_graph(x, r, batch, max_num_neighbors=limit)


def radius_features(table, quick: bool, threads: int, optional, edge_key) -> None:
    from scipy.spatial import cKDTree

    from geomdl import ops

    for clouds, per, dim, k in QUICK_CASES if quick else CASES:
        n = clouds * per
        x, batch, dim, name = feature_case(clouds, per, dim)
        r = _radius_for(x, batch, k)
        want = _run(x, r, batch, n)
        limit = int(torch.bincount(want[1], minlength=n).max())
        op = f"radius_graph {name} r={r:.3g} ({want.shape[1] / n:.1f} nbrs, max {limit})"
        key = edge_key(want, n)

        def agree(edges):
            got = edge_key(torch.as_tensor(edges), n)
            if got.shape == key.shape and torch.equal(got, key):
                return "yes"
            missing, extra = int((~torch.isin(key, got)).sum()), int((~torch.isin(got, key)).sum())
            return f"NO: {missing} missing, {extra} extra of {key.numel()} (distance rounding at r)"

        table.time(op, "geomdl (compiled, automatic choice)", lambda: _run(x, r, batch, limit), geomdl=True)
        for search in ("dense", "grid"):
            fn = lambda s=search: _run(x, r, batch, limit, s)  # noqa: E731
            table.time(op, f"geomdl {search} search (GEOMDL_RADIUS_SEARCH={search})", fn, agrees=agree(fn()), repeats=3)
        ref = lambda: ops.radius_graph_reference(x, r, batch, max_num_neighbors=limit)  # noqa: E731
        table.time(op, "geomdl reference", ref, agrees=agree(ref()), repeats=3)
        tc = optional("torch_cluster")
        if tc is not None:
            fn = lambda: tc.radius_graph(x, r, batch, loop=False, max_num_neighbors=limit, num_workers=threads)  # noqa: E731
            table.time(op, f"torch_cluster.radius_graph (num_workers={threads})", fn, agrees=agree(fn()), repeats=3)
        else:
            table.skip(op, "torch_cluster", "not installed (pip install 'geomdl[bench]')")
        xnp = x.numpy()

        def ckdtree():  # per-query lists per cloud, the point itself dropped
            parts = []
            for b in range(clouds):
                pts = xnp[b * per:(b + 1) * per]
                lists = cKDTree(pts).query_ball_point(pts, r, workers=threads)
                counts = np.fromiter((len(v) for v in lists), dtype=np.int64, count=per)
                src = np.concatenate(lists).astype(np.int64)
                dst = np.repeat(np.arange(per), counts)
                keep = src != dst
                parts.append(np.stack([src[keep], dst[keep]]) + b * per)
            return torch.from_numpy(np.concatenate(parts, axis=1))

        table.time(op, f"scipy cKDTree.query_ball_point per cloud (workers={threads})", ckdtree, agrees=agree(ckdtree()),
                   repeats=3)


def radius_search_sweep(table, quick: bool) -> None:
    """Part ``radius_sweep``: the automatic choice against both searches forced, on random features of
    growing dimension (one cloud of 4096 points, r = median distance to the 16th neighbour): the data behind the cost
    model in kernels/neighbors/radius_dense.h."""
    n = 1024 if quick else 4096
    for dim in (4, 8, 10, 16, 32, 64):
        x = torch.randn(n, dim, generator=torch.Generator().manual_seed(dim))
        batch = torch.zeros(n, dtype=torch.long)
        r = _radius_for(x, batch, 16)
        want = _run(x, r, batch, n)
        limit = int(torch.bincount(want[1], minlength=n).max())
        op = f"radius_graph random 1x{n} D={dim} ({want.shape[1] / n:.1f} nbrs)"
        table.time(op, "geomdl (compiled, automatic choice)", lambda: _run(x, r, batch, limit), geomdl=True, repeats=3)
        for search in ("dense", "grid"):
            table.time(op, f"geomdl {search} search", lambda s=search: _run(x, r, batch, limit, s),
                       agrees="yes" if torch.equal(_run(x, r, batch, limit, search), want) else "NO", repeats=3)
