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

Both run vectorised over the clouds of a batch (padded ``[B, K]`` component tables), so their cost
grows with the number of EM iterations / centres, not with the number of clouds.
"""
from __future__ import annotations

import torch

from geomdl.ops import scatter
from geomdl.ops._validation import check_batch_and_count, check_int


def compact_labels(labels: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Relabel to ``0..P-1`` in order of the sorted unique ids."""
    uniq, inv = torch.unique(labels, return_inverse=True)
    return inv, int(uniq.numel())


def _dense(batch: torch.Tensor, nb: int):
    """``(counts [B], first [B], slot [N])``: the position of every point inside its cloud."""
    counts = torch.bincount(batch, minlength=nb)
    first = torch.cumsum(counts, 0) - counts
    slot = torch.arange(batch.numel(), device=batch.device) - first[batch]
    return counts, first, slot


def farthest_point_centres(pos: torch.Tensor, batch: torch.Tensor, num: int) -> torch.Tensor:
    """``[B, min(num, max cloud size)]`` global indices of farthest-point samples of every cloud,
    started at the (first) point farthest from the cloud's centroid; ties go to the lowest index.
    A cloud with fewer than ``num`` points repeats its last sample (its centres stay unique as a set)."""
    nb = int(batch.max()) + 1 if batch.numel() else 0
    counts, first, slot = _dense(batch, nb)
    nmax = int(counts.max()) if nb else 0
    p = pos.detach().double()
    dense = p.new_zeros((nb, nmax, 3))
    dense[batch, slot] = p
    present = torch.zeros((nb, nmax), dtype=torch.bool, device=pos.device)
    present[batch, slot] = True
    centroid = scatter(p, batch, dim_size=nb, reduce="mean")
    neg = torch.tensor(-1.0, dtype=p.dtype, device=p.device)
    d0 = torch.where(present, (dense - centroid.unsqueeze(1)).pow(2).sum(-1), neg)
    cur = torch.argmax(d0, dim=1)  # first maximum: lowest index on ties
    take = min(num, nmax)
    chosen = [cur]
    ar = torch.arange(nb, device=pos.device)
    dist = torch.where(present, (dense - dense[ar, cur].unsqueeze(1)).pow(2).sum(-1), neg)
    for _ in range(take - 1):
        cur = torch.argmax(dist, dim=1)
        chosen.append(cur)
        dist = torch.minimum(dist, torch.where(present, (dense - dense[ar, cur].unsqueeze(1)).pow(2).sum(-1), neg))
    local = torch.stack(chosen, dim=1)  # [B, take]
    # clouds smaller than take: argmax over an all-covered cloud returns an already chosen point
    return local + first.unsqueeze(1)


def fps_partition(pos: torch.Tensor, batch: torch.Tensor, num_parts: int) -> tuple[torch.Tensor, int]:
    """Voronoi cells of ``num_parts`` farthest-point centres per cloud.

    Args:
        pos: ``[N, 3]`` positions; batch: ``[N]`` sorted cloud ids; num_parts: centres per cloud (>= 1).

    Returns ``(part [N], num_parts_total)`` with part ids unique across clouds (clouds with fewer
    points than ``num_parts`` get one cell per point).
    """
    num_parts = check_int(num_parts, "num_parts")
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos must have shape [N, 3], got {tuple(pos.shape)}")
    if batch.shape != (pos.shape[0],):
        raise ValueError(f"batch must have shape [{pos.shape[0]}], got {tuple(batch.shape)}")
    batch = check_batch_and_count(batch, "batch", pos.shape[0], pos.device)[0]  # sorted, non-negative ids
    if pos.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=pos.device), 0
    centres = farthest_point_centres(pos, batch, num_parts)  # [B, K]
    p = pos.detach().double()
    d2 = (p.unsqueeze(1) - p[centres[batch]]).pow(2).sum(-1)  # [N, K]
    nearest = torch.argmin(d2, dim=1)  # first minimum: the lower centre on ties
    k = centres.shape[1]
    return compact_labels(batch * k + nearest)


def merge_close_components(mu: torch.Tensor, pi: torch.Tensor, alive: torch.Tensor, distance: float,
                           upper: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge the live components of each cloud whose means are closer than ``distance``.

    A component close to a live component of lower index is absorbed: its weight moves to the root of its
    chain (A <- B <- C with A, C apart: C's weight goes to A, through B), so each cloud's total weight is
    kept. The means are left as they are (the next M-step recomputes them).

    Args:
        mu: ``[B, K, 3]`` component means; pi: ``[B, K]`` weights; alive: ``[B, K]`` bool.
        distance: merge distance (``merge_threshold * sigma``).
        upper: optional cached strictly upper triangular ``[K, K]`` bool mask.

    Returns:
        ``(pi [B, K], alive [B, K])`` after merging.
    """
    k = mu.shape[1]
    if upper is None:
        upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=mu.device), diagonal=1)
    dd = (mu.unsqueeze(2) - mu.unsqueeze(1)).pow(2).sum(-1)  # [B, K, K]
    close = (dd < distance ** 2) & alive.unsqueeze(2) & alive.unsqueeze(1) & upper
    absorbed = close.any(1)  # [B, K]: some lower-index live component is close
    if not bool(absorbed.any()):
        return pi, alive
    own = torch.arange(k, device=mu.device).expand_as(absorbed)
    target = torch.where(absorbed, torch.argmax(close.to(torch.int8), dim=1), own)  # the lowest close index
    while True:  # follow chains to their roots (targets only decrease, so this ends within K steps)
        nxt = target.gather(1, target)
        if torch.equal(nxt, target):
            break
        target = nxt
    return torch.zeros_like(pi).scatter_add_(1, target, pi), alive & ~absorbed


@torch.no_grad()
def cluster_votes(votes: torch.Tensor, part: torch.Tensor, batch: torch.Tensor, sigma: float, iterations: int = 10,
                  merge_threshold: float = 1.0):
    """Coarsen ``part`` by EM on an isotropic GMM of the votes (see the module docstring).

    Args:
        votes: ``[N, 3]`` predicted part centres.
        part: ``[N]`` current part ids (0..P-1), each part inside one cloud.
        batch: ``[N]`` sorted cloud ids.
        sigma: the mixture's standard deviation (> 0, in the units of ``votes``).
        iterations: EM iterations (an int >= 1).
        merge_threshold: components closer than ``merge_threshold * sigma`` merge.

    Returns:
        ``(new_part [N], num_parts, soft [N, K] (assignment to the components of the point's cloud,
        padded with 0), comp_of_point [N, K] component ids (-1 = padding))``.
    """
    if not 0 < sigma < float("inf"):
        raise ValueError(f"sigma must be > 0 and finite, got {sigma}")
    if not 0 <= merge_threshold < float("inf"):
        raise ValueError(f"merge_threshold must be a finite number >= 0, got {merge_threshold}")
    iterations = check_int(iterations, "iterations", 1)  # 0 / negative counts used to run one iteration silently
    if votes.dim() != 2 or votes.shape[1] != 3:
        raise ValueError(f"votes must have shape [N, 3], got {tuple(votes.shape)}")
    if part.shape != (votes.shape[0],) or batch.shape != (votes.shape[0],):
        raise ValueError(f"part and batch must have shape [{votes.shape[0]}], got {tuple(part.shape)} and {tuple(batch.shape)}")
    if part.dtype.is_floating_point or part.dtype == torch.bool or part.is_complex():
        raise TypeError(f"part must be an integer tensor [N] of part ids, got {part.dtype}")
    batch = check_batch_and_count(batch, "batch", votes.shape[0], votes.device)[0]  # sorted, non-negative ids
    if votes.shape[0] == 0:  # nothing to cluster (empty input)
        empty = torch.zeros(0, dtype=torch.long, device=votes.device)
        return empty, 0, votes.new_zeros((0, 0)), empty.view(0, 0)
    y = votes.detach().double()
    dev = y.device
    if int(part.min()) < 0:
        raise ValueError("part ids must be >= 0")
    num_parts = int(part.max()) + 1 if part.numel() else 0
    nb = int(batch.max()) + 1 if batch.numel() else 0
    # each cloud's votes relative to their mean (the result does not change under translation): the
    # expansion |y|^2 - 2 y.mu + |mu|^2 of e_step would cancel catastrophically far from the origin
    cloud_size = torch.bincount(batch, minlength=nb).clamp_min(1).to(y.dtype).unsqueeze(1)
    y = y - (y.new_zeros((nb, 3)).index_add_(0, batch, y) / cloud_size)[batch]
    part_cloud = torch.zeros(num_parts, dtype=torch.long, device=dev).scatter_(0, part, batch)
    lowest = torch.full((num_parts,), nb, dtype=torch.long, device=dev).scatter_reduce_(0, part, batch, "amin")
    if bool((lowest[part] != batch).any()):
        raise ValueError("every part must lie inside one cloud (part ids unique across the clouds of batch)")
    # padded component table: comp[b, k] = global component id or -1
    per_cloud = torch.bincount(part_cloud, minlength=nb)
    kmax = int(per_cloud.max()) if nb else 0
    order = torch.argsort(part_cloud, stable=True)
    slot_of_part = torch.empty(num_parts, dtype=torch.long, device=dev)
    slot_of_part[order] = torch.arange(num_parts, device=dev) - (torch.cumsum(per_cloud, 0) - per_cloud)[part_cloud[order]]
    comp = torch.full((nb, kmax), -1, dtype=torch.long, device=dev)
    comp[part_cloud, slot_of_part] = torch.arange(num_parts, device=dev)
    alive = comp >= 0  # [B, K]
    n_cloud = torch.bincount(batch, minlength=nb).double().clamp_min(1)  # [B]
    # initial components: mean vote and share of points of every current part
    point_slot = slot_of_part[part]  # [N]
    w = y.new_zeros((nb, kmax)).index_put_((batch, point_slot), torch.ones_like(y[:, 0]), accumulate=True)
    s = y.new_zeros((nb, kmax, 3)).index_put_((batch, point_slot), y, accumulate=True)
    mu = s / w.clamp_min(1e-300).unsqueeze(-1)
    pi = w / n_cloud.unsqueeze(1)
    inv2s2 = 1.0 / (2.0 * sigma * sigma)
    upper = torch.triu(torch.ones(kmax, kmax, dtype=torch.bool, device=dev), diagonal=1)
    neg_inf = torch.tensor(float("-inf"), dtype=y.dtype, device=dev)
    # the votes of every cloud as a padded block [B, Nmax, 3] (padding rows get q = 0)
    _, _, pslot = _dense(batch, nb)
    nmax = int(pslot.max()) + 1 if pslot.numel() else 0
    yd = y.new_zeros((nb, nmax, 3))
    yd[batch, pslot] = y
    real = torch.zeros((nb, nmax, 1), dtype=y.dtype, device=dev)
    real[batch, pslot] = 1.0
    y2 = yd.pow(2).sum(-1, keepdim=True)  # [B, Nmax, 1]

    def e_step():
        d2 = (y2 - 2 * torch.bmm(yd, mu.transpose(1, 2)) + mu.pow(2).sum(-1).unsqueeze(1)).clamp_min(0)  # [B, Nmax, K]
        logp = torch.where(alive.unsqueeze(1), torch.log(pi.clamp_min(1e-300)).unsqueeze(1) - d2 * inv2s2, neg_inf)
        return torch.softmax(logp, dim=2) * real

    for _ in range(iterations):
        q = e_step()
        w = q.sum(1)  # [B, K]
        s = torch.bmm(q.transpose(1, 2), yd)  # [B, K, 3]
        alive = alive & (w > 1e-9)
        mu = torch.where(alive.unsqueeze(-1), s / w.clamp_min(1e-300).unsqueeze(-1), mu)
        pi = torch.where(alive, w / n_cloud.unsqueeze(1), torch.zeros_like(w))
        pi, alive = merge_close_components(mu, pi, alive, merge_threshold * sigma, upper)
    q = e_step()[batch, pslot]  # [N, K]
    best = torch.argmax(q, dim=1)  # first maximum: lowest slot on ties
    point_comp = comp[batch]  # [N, K]
    new_part, count = compact_labels(point_comp.gather(1, best.unsqueeze(1))[:, 0])
    return new_part, count, q.to(votes.dtype), point_comp
