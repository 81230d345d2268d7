"""Demo stage ``ops``: the compiled kernels on a generated point cloud, checked against the references."""
from __future__ import annotations

import math
import time

import torch

from geomdl import ops


def _torus(n: int, generator: torch.Generator) -> torch.Tensor:
    u, v = torch.rand(2, n, generator=generator, dtype=torch.float64) * 2 * math.pi
    big, small = 1.0, 0.3
    return torch.stack([(big + small * v.cos()) * u.cos(), (big + small * v.cos()) * u.sin(), small * v.sin()], 1).float()


def local_covariances(pos: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``[N, 9]`` mean outer product of the edge vectors ``p_j - p_i`` arriving at each point ``i``
    (``edges [2, E]``, row 1 the targets): local-shape features (a real use of scatter)."""
    d = pos[edges[0]] - pos[edges[1]]
    return ops.scatter((d.unsqueeze(2) * d.unsqueeze(1)).reshape(-1, 9), edges[1], dim_size=pos.shape[0], reduce="mean")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - t0) * 1e3


def run(out_dir, quick: bool, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    n = 4_000 if quick else 20_000
    pos = torch.cat([_torus(n, g), _torus(n, g) + torch.tensor([3.0, 0.0, 0.0])])
    batch = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    print(f"   two tori, {2 * n} points; extension loaded: {ops.extension_loaded()} (backend {ops.get_backend()})")

    edges, t_graph = _timed(lambda: ops.radius_graph(pos, 0.08, batch, max_num_neighbors=64))
    deg = torch.bincount(edges[1], minlength=pos.shape[0]).float()
    print(f"   radius_graph r=0.08: {edges.shape[1]} edges, mean degree {deg.mean():.1f} ({t_graph:.1f} ms)")
    knn_edges, t_knn = _timed(lambda: ops.knn_graph(pos, 16, batch))
    print(f"   knn_graph k=16: {knn_edges.shape[1]} edges ({t_knn:.1f} ms)")
    centres, t_fps = _timed(lambda: ops.fps(pos, batch, ratio=0.01))
    spread = torch.cdist(pos[centres[:10]], pos[centres[:10]]).add(torch.eye(10) * 1e9).min().item()
    print(f"   fps ratio 0.01: {centres.numel()} centres, min spacing among the first 10: {spread:.3f} ({t_fps:.1f} ms)")

    cov, t_scatter = _timed(lambda: local_covariances(pos, edges))
    eig = torch.linalg.eigvalsh(cov.reshape(-1, 3, 3).double())  # ascending
    variation = (eig[:, 0] / eig.sum(1).clamp_min(1e-12)).median().item()
    print(f"   scatter-mean local covariances: median surface variation {variation:.4f} "
          f"(0 on a plane, 1/3 for an isotropic blob) ({t_scatter:.1f} ms)")

    # a feature-space graph (as DGCNN builds): neighbours by local shape, 9-D covariance features
    feat_edges, t_feat = _timed(lambda: ops.knn_graph(cov, 16, batch))
    same_cloud = bool((batch[feat_edges[0]] == batch[feat_edges[1]]).all())
    print(f"   knn_graph k=16 in the 9-D covariance-feature space: {feat_edges.shape[1]} edges, within each torus: "
          f"{same_cloud} ({t_feat:.1f} ms)")

    # a radius graph in a 32-D feature space: random Fourier features of the positions, whose distances
    # follow a Gaussian kernel of width 0.1 (where the CPU kernel takes its dense search)
    sub = slice(0, 2000)
    w, phase = torch.randn(3, 32, generator=g) / 0.1, torch.rand(32, generator=g) * 2 * math.pi
    rff = torch.cos(pos[sub] @ w + phase) * math.sqrt(2 / 32)
    rff_edges, t_rff = _timed(lambda: ops.radius_graph(rff, 0.8, max_num_neighbors=64))
    span = (pos[sub][rff_edges[0]] - pos[sub][rff_edges[1]]).norm(dim=1)
    print(f"   radius_graph r=0.8 in 32-D random Fourier features of 2000 points: {rff_edges.shape[1]} edges, "
          f"95% of them within {span.quantile(0.95):.3f} in space ({t_rff:.1f} ms)")

    # compare with the pure-PyTorch references on the subset
    with ops.use_backend("reference"):
        ref_edges = ops.radius_graph(pos[sub], 0.08, max_num_neighbors=64)
        ref_feat = ops.knn_graph(cov[sub], 16)
        ref_rff = ops.radius_graph(rff, 0.8, max_num_neighbors=64)
    agree = torch.equal(ref_edges, ops.radius_graph(pos[sub], 0.08, max_num_neighbors=64)) and \
        torch.equal(ref_feat, ops.knn_graph(cov[sub], 16)) and torch.equal(ref_rff, rff_edges)
    print(f"   compiled == reference on a 2000-point subset (radius graph, feature kNN, feature radius): {agree}")
    return {"points": 2 * n, "edges": int(edges.shape[1]), "mean_degree": float(deg.mean()), "fps_centres": int(centres.numel()),
            "surface_variation": variation, "reference_agrees": bool(agree),
            "ms": {"radius_graph": t_graph, "knn_graph": t_knn, "fps": t_fps, "scatter": t_scatter,
                   "knn_graph_features": t_feat, "radius_graph_features": t_rff}}
