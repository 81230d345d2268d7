"""Partitions for APEN: the initial fine partition and the per-layer coarsening by clustering votes.

* :func:`fps_partition` (``Q_simple``): ``k`` centres per cloud by farthest point sampling, started
  at the point farthest from the cloud's centroid (canonical, so reproducible and equivariant), each
  point assigned to its nearest centre (ties: the lower centre).
* :func:`cluster_votes`: an isotropic Gaussian mixture with fixed width ``sigma`` fitted by EM to
  the per-point votes ``y_i`` (predicted centres of the rigid part containing ``i``), initialised
  with one component per current part (at the mean vote of the part, weight = its share of
  points). After every M-step, components closer than ``merge_threshold * sigma`` merge (the
  lower index survives), so the partition coarsens. Returns the hard partition
  ``Z_i = argmax_j Q_ij`` (ties: lower j) and the soft assignment ``Q``:

      Q_ij = pi_j N(y_i; mu_j, sigma^2 I) / sum_j' pi_j' N(y_i; mu_j', sigma^2 I)

The fit is E(3)-equivariant in ``y`` and permutation-equivariant in the points, so parts whose
votes move rigidly keep their assignment. It runs without gradients: the next layer uses the hard
argmax, and the votes are trained by the vote loss (methods.md 4.7); the mixture's repulsion term
(tau in Eq. 9) is replaced by the explicit merge rule.
"""
from __future__ import annotations

import torch

from geomdl.ops import fps, knn, scatter


def compact_labels(labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Relabel to ``0..P-1`` in order of first appearance of the sorted unique ids."""
    uniq, inv = torch.unique(labels, return_inverse=True)
    return inv, int(uniq.numel())


def fps_partition(pos: torch.Tensor, batch: torch.Tensor, num_parts: int) -> tuple[torch.Tensor, int]:
    """Voronoi cells of ``num_parts`` farthest-point centres per cloud.

    Returns ``(part [N], num_parts_total)`` with part ids unique across clouds.
    """
    if num_parts < 1:
        raise ValueError(f"num_parts must be >= 1, got {num_parts}")
    nb = int(batch.max()) + 1 if batch.numel() else 0
    centroid = scatter(pos, batch, dim_size=nb, reduce="mean")
    dist = (pos - centroid[batch]).pow(2).sum(1)
    far = scatter(dist.unsqueeze(1), batch, dim_size=nb, reduce="max")
    # local index of the (first) farthest point of each cloud
    counts = torch.bincount(batch, minlength=nb)
    first = torch.cumsum(counts, 0) - counts
    is_far = dist == far[batch, 0]
    idx = torch.arange(pos.shape[0], device=pos.device)
    start = scatter(torch.where(is_far, idx, torch.full_like(idx, pos.shape[0])).unsqueeze(1).double(), batch, dim_size=nb, reduce="min")[:, 0].long() - first
    centres = fps(pos.detach(), batch, num=num_parts, start=start)
    edge = knn(pos.detach()[centres], pos.detach(), 1, batch[centres], batch)
    part = torch.empty(pos.shape[0], dtype=torch.long, device=pos.device)
    part[edge[1]] = edge[0]
    return compact_labels(part)


@torch.no_grad()
def cluster_votes(votes: torch.Tensor, part: torch.Tensor, batch: torch.Tensor, sigma: float, iterations: int = 10,
                  merge_threshold: float = 1.0):
    """Coarsen ``part`` by EM on an isotropic GMM of the votes (see the module docstring).

    Args:
        votes: ``[N, 3]`` predicted part centres.
        part: ``[N]`` current part ids (0..P-1), each part inside one cloud.
        batch: ``[N]`` sorted cloud ids.
        sigma: the mixture's standard deviation (> 0, in the units of ``votes``).
        iterations: EM iterations.
        merge_threshold: components closer than ``merge_threshold * sigma`` merge.

    Returns:
        ``(new_part [N], num_parts, soft [N, K] (assignment to the components of the point's cloud,
        padded with 0), comp_of_point [N, K] component ids (-1 = padding))``.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    y = votes.detach().double()
    num_parts = int(part.max()) + 1 if part.numel() else 0
    part_cloud = scatter(batch.unsqueeze(1).double(), part, dim_size=num_parts, reduce="max")[:, 0].long()
    mu = scatter(y, part, dim_size=num_parts, reduce="mean")
    pi = torch.bincount(part, minlength=num_parts).double()
    nb = int(batch.max()) + 1 if batch.numel() else 0
    pi = pi / torch.bincount(batch, minlength=nb).double()[part_cloud]
    # components of each cloud, padded: comp[b, k] = global component id or -1
    order = torch.argsort(part_cloud, stable=True)
    per_cloud = torch.bincount(part_cloud, minlength=nb)
    kmax = int(per_cloud.max()) if nb else 0
    slot = torch.arange(num_parts, device=y.device) - (torch.cumsum(per_cloud, 0) - per_cloud)[part_cloud[order]]
    comp = torch.full((nb, kmax), -1, dtype=torch.long, device=y.device)
    comp[part_cloud[order], slot] = order
    alive = torch.ones(num_parts, dtype=torch.bool, device=y.device)
    point_comp = comp[batch]  # [N, K]
    valid = point_comp >= 0
    safe = point_comp.clamp_min(0)
    for _ in range(max(1, iterations)):
        # E-step
        d2 = (y.unsqueeze(1) - mu[safe]).pow(2).sum(-1)
        logp = torch.log(pi[safe].clamp_min(1e-300)) - d2 / (2 * sigma * sigma)
        logp = torch.where(valid & alive[safe], logp, torch.full_like(logp, float("-inf")))
        q = torch.softmax(logp, dim=1)
        # M-step
        w = torch.zeros(num_parts, dtype=y.dtype, device=y.device).index_add(0, safe[valid], q[valid])
        s = torch.zeros(num_parts, 3, dtype=y.dtype, device=y.device).index_add(0, safe[valid], (q.unsqueeze(2) * y.unsqueeze(1))[valid])
        alive = alive & (w > 1e-9)
        mu = torch.where(alive.unsqueeze(1), s / w.clamp_min(1e-300).unsqueeze(1), mu)
        pi = torch.where(alive, w / torch.bincount(batch, minlength=nb).double()[part_cloud], torch.zeros_like(w))
        # merge components of the same cloud that collapsed onto each other (lower index survives)
        cm = mu[comp.clamp_min(0)]  # [B, K, 3]
        dd = (cm.unsqueeze(2) - cm.unsqueeze(1)).pow(2).sum(-1)
        ok = (comp >= 0) & alive[comp.clamp_min(0)]
        close = (dd < (merge_threshold * sigma) ** 2) & ok.unsqueeze(2) & ok.unsqueeze(1)
        upper = torch.triu(torch.ones(kmax, kmax, dtype=torch.bool, device=y.device), diagonal=1)
        absorbed = (close & upper.unsqueeze(0)).any(1)  # [B, K]: some lower-index component is close
        if bool(absorbed.any()):
            # the absorbing component is the lowest-index close one
            target_slot = torch.argmax((close & upper.unsqueeze(0)).transpose(1, 2).to(torch.int8), dim=2)  # [B, K]
            b_idx, k_idx = absorbed.nonzero(as_tuple=True)
            dead = comp[b_idx, k_idx]
            keep = comp[b_idx, target_slot[b_idx, k_idx]]
            pi = pi.index_add(0, keep, pi[dead])
            pi[dead] = 0
            alive[dead] = False
    d2 = (y.unsqueeze(1) - mu[safe]).pow(2).sum(-1)
    logp = torch.log(pi[safe].clamp_min(1e-300)) - d2 / (2 * sigma * sigma)
    logp = torch.where(valid & alive[safe], logp, torch.full_like(logp, float("-inf")))
    q = torch.softmax(logp, dim=1)
    best = torch.argmax(q, dim=1)  # first maximum: lowest slot on ties
    new_part, count = compact_labels(point_comp.gather(1, best.unsqueeze(1))[:, 0])
    return new_part, count, q.to(votes.dtype), point_comp
