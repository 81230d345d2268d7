r"""Reference TSP solvers on Euclidean instances: exact Held-Karp DP, brute force, nearest neighbour,
2-opt / or-opt local search, and greedy decoding of an edge heat-map.

A tour is a permutation ``[n]`` of the cities; its length is :math:`\sum_k d(t_k, t_{k+1 \bmod n})`.

Held-Karp (Bellman 1962, Held & Karp 1962), with city 0 as the start and ``S`` a subset of the others:

.. math::  C(S, j) = \min_{i \in S \setminus \{j\}} C(S \setminus \{j\}, i) + d_{ij},\quad
           C(\{j\}, j) = d_{0j},\quad L^* = \min_j C(\{1..n-1\}, j) + d_{j0}

``O(2^n n^2)`` time, vectorised over a batch of instances of equal size (practical up to n = 14).
"""
from __future__ import annotations

import itertools

import numpy as np


def distance_matrix(pos: np.ndarray) -> np.ndarray:
    """``[..., n, n]`` Euclidean distances of ``pos [..., n, d]`` (exact differences, no matmul trick)."""
    pos = np.asarray(pos, dtype=np.float64)
    return np.sqrt(((pos[..., :, None, :] - pos[..., None, :, :]) ** 2).sum(-1))


def tour_length(dist: np.ndarray, tour) -> float:
    """Length of the closed ``tour`` under the ``[n, n]`` distance matrix ``dist``."""
    tour = np.asarray(tour)
    return float(dist[tour, np.roll(tour, -1)].sum())


def _check_dist(dist: np.ndarray, name: str = "dist") -> np.ndarray:
    dist = np.asarray(dist, dtype=np.float64)
    if dist.ndim < 2 or dist.shape[-1] != dist.shape[-2]:
        raise ValueError(f"{name} must be [..., n, n] square matrices, got shape {dist.shape}")
    if dist.shape[-1] < 3:
        raise ValueError(f"{name}: a tour needs at least 3 cities, got {dist.shape[-1]}")
    return dist


def held_karp(dist: np.ndarray, max_cities: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Exact optimal tours of a batch of instances (dynamic programming over subsets).

    Args:
        dist: ``[B, n, n]`` (or ``[n, n]``) distance matrices.
        max_cities: refuse larger ``n`` (memory ``B 2^(n-1) (n-1)``).

    Returns:
        ``(lengths [B], tours [B, n])``; every tour starts at city 0.
    """
    dist = _check_dist(dist)
    single = dist.ndim == 2
    if single:
        dist = dist[None]
    num, n = dist.shape[0], dist.shape[-1]
    if n > max_cities:
        raise ValueError(f"held_karp: n={n} cities exceeds max_cities={max_cities} (O(2^n n^2) time and memory)")
    m = n - 1
    sub = dist[:, 1:, 1:]  # [B, m, m] between the non-start cities
    full = (1 << m) - 1
    cost = np.full((num, 1 << m, m), np.inf)
    parent = np.full((1 << m, m, num), -1, dtype=np.int8)
    for j in range(m):
        cost[:, 1 << j, j] = dist[:, 0, j + 1]
    for mask in range(1, full + 1):
        members = [j for j in range(m) if mask >> j & 1]
        if len(members) < 2:
            continue
        prev = [mask ^ (1 << j) for j in members]
        cand = cost[:, prev, :] + sub[:, :, members].transpose(0, 2, 1)  # [B, J, m]: via i to j
        best = cand.argmin(axis=2)
        cost[:, mask, members] = np.take_along_axis(cand, best[..., None], 2)[..., 0]
        parent[mask, members] = best.T
    closing = cost[:, full, :] + dist[:, 1:, 0]
    last = closing.argmin(axis=1)
    lengths = closing[np.arange(num), last]
    tours = np.zeros((num, n), dtype=np.int64)
    for b in range(num):
        mask, j = full, int(last[b])
        for pos in range(n - 1, 0, -1):
            tours[b, pos] = j + 1
            i = int(parent[mask, j, b])
            mask ^= 1 << j
            j = i
    return (lengths[0], tours[0]) if single else (lengths, tours)


def brute_force(dist: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact tour of one small instance by enumerating all ``(n-1)!`` tours (a check for held_karp)."""
    dist = _check_dist(dist)
    n = dist.shape[0]
    best, best_tour = np.inf, None
    for rest in itertools.permutations(range(1, n)):
        tour = (0, *rest)
        length = tour_length(dist, tour)
        if length < best:
            best, best_tour = length, tour
    return best, np.array(best_tour)


def nearest_neighbour(dist: np.ndarray, start: int = 0) -> np.ndarray:
    """Greedy tour: always go to the closest unvisited city."""
    dist = _check_dist(dist)
    n = dist.shape[0]
    tour, seen = [start], np.zeros(n, dtype=bool)
    seen[start] = True
    for _ in range(n - 1):
        row = np.where(seen, np.inf, dist[tour[-1]])
        nxt = int(row.argmin())
        tour.append(nxt)
        seen[nxt] = True
    return np.array(tour)


def two_opt(dist: np.ndarray, tour, max_rounds: int = 1000) -> np.ndarray:
    """2-opt local search (reverse a segment while that shortens the tour), first improvement."""
    dist = _check_dist(dist)
    tour = np.array(tour)
    n = len(tour)
    for _ in range(max_rounds):
        improved = False
        for i in range(n - 1):
            a, b = tour[i], tour[i + 1]
            c, d = tour[i + 2:], np.roll(tour, -1)[i + 2:]
            if i == 0:
                c, d = c[:-1], d[:-1]  # the edge (t_{n-1}, t_0) shares city t_0 with (t_0, t_1)
            if not len(c):
                continue
            delta = dist[a, c] + dist[b, d] - dist[a, b] - dist[c, d]
            k = int(delta.argmin())
            if delta[k] < -1e-12:
                j = i + 2 + k
                tour[i + 1:j + 1] = tour[i + 1:j + 1][::-1].copy()
                improved = True
        if not improved:
            break
    return tour


def or_opt(dist: np.ndarray, tour, max_rounds: int = 100) -> np.ndarray:
    """Or-opt: move segments of 1-3 consecutive cities (either orientation) elsewhere while that helps."""
    dist = _check_dist(dist)
    tour = list(tour)
    n = len(tour)
    for _ in range(max_rounds):
        improved = False
        for seg_len in (1, 2, 3):
            for i in range(n):
                seg = [tour[(i + k) % n] for k in range(seg_len)]
                rest = [c for c in tour if c not in seg]
                before, after = tour[(i - 1) % n], tour[(i + seg_len) % n]
                removed = dist[before, seg[0]] + dist[seg[-1], after] - dist[before, after]
                best_gain, best = 1e-12, None
                for p in range(len(rest)):
                    u, v = rest[p], rest[(p + 1) % len(rest)]
                    for piece in (seg, seg[::-1]):
                        gain = removed - (dist[u, piece[0]] + dist[piece[-1], v] - dist[u, v])
                        if gain > best_gain:
                            best_gain, best = gain, rest[:p + 1] + piece + rest[p + 1:]
                if best is not None:
                    tour, improved = best, True
        if not improved:
            break
    return np.array(tour)


def local_search(dist: np.ndarray, tour) -> np.ndarray:
    """2-opt and or-opt alternated until neither improves (a strong heuristic for small n)."""
    dist = _check_dist(dist)
    length = tour_length(dist, tour)
    while True:
        tour = or_opt(dist, two_opt(dist, tour))
        new = tour_length(dist, tour)
        if new > length - 1e-12:
            return tour
        length = new


def greedy_edge_decode(scores: np.ndarray) -> np.ndarray:
    """A tour from symmetric edge scores ``[n, n]``: take edges by decreasing score when both ends have
    degree < 2 and no cycle closes early (union-find), then walk the resulting Hamiltonian cycle.
    Ties are broken by the edge index, so equal scores give the same tour."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[0]
    iu, ju = np.triu_indices(n, 1)
    order = np.argsort(-scores[iu, ju], kind="stable")
    degree = np.zeros(n, dtype=int)
    root = list(range(n))

    def find(a):
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        return a

    adj: list[list[int]] = [[] for _ in range(n)]
    taken = 0
    for e in order:
        a, b = int(iu[e]), int(ju[e])
        if degree[a] >= 2 or degree[b] >= 2:
            continue
        ra, rb = find(a), find(b)
        if ra == rb and taken < n - 1:
            continue
        adj[a].append(b)
        adj[b].append(a)
        degree[a] += 1
        degree[b] += 1
        root[ra] = rb
        taken += 1
        if taken == n:
            break
    tour, prev = [0], -1
    while len(tour) < n:
        cur = tour[-1]
        nxt = adj[cur][0] if adj[cur][0] != prev else adj[cur][1]
        prev = cur
        tour.append(nxt)
    return np.array(tour)
