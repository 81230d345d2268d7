"""TinvNN's TSP experiment: train edge-scoring networks on random Euclidean instances (cities uniform in
the unit square, optimal tours from Held-Karp as labels), then measure the optimality gap of their greedily
decoded tours on fresh instances, as they are and after a random similarity transformation (rotation,
reflection, translation, scaling) of every instance.

The TinvNN model (:class:`~geomdl.models.tinv_tsp.TSPEdgeNet` with ``invariant=True``) predicts the same
scores on an instance and on any transformed copy, so its gap cannot change; the coordinate-based
baseline (``invariant=False``), trained on the same data, meets coordinates and distances it never saw.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from geomdl.models.tinv_tsp import TSPEdgeNet
from geomdl.pipelines.tsp.solvers import (
    distance_matrix,
    greedy_edge_decode,
    held_karp,
    local_search,
    nearest_neighbour,
    tour_length,
)
from geomdl.utils.devices import module_device


def random_instances(num: int, n: int, seed: int) -> np.ndarray:
    """``[num, n, 2]`` cities uniform in the unit square."""
    if num < 1 or n < 3:
        raise ValueError(f"need num >= 1 instances of n >= 3 cities, got num={num}, n={n}")
    return np.random.default_rng(seed).random((num, n, 2))


def random_similarity(pos: np.ndarray, seed: int) -> np.ndarray:
    """Each instance moved by its own random rotation, reflection (half of them), scaling
    (log-uniform in [0.1, 10]) and translation (N(0, 10^2) per axis)."""
    rng = np.random.default_rng(seed)
    num = pos.shape[0]
    angle = rng.uniform(0, 2 * np.pi, num)
    rot = np.stack([np.stack([np.cos(angle), -np.sin(angle)], -1), np.stack([np.sin(angle), np.cos(angle)], -1)], -2)
    rot[rng.random(num) < 0.5, :, 1] *= -1  # improper: det = -1
    scale = np.exp(rng.uniform(np.log(0.1), np.log(10.0), num))
    shift = rng.normal(0, 10, (num, 1, 2))
    return scale[:, None, None] * np.einsum("bij,bnj->bni", rot, pos) + shift


def optimal_tours(pos: np.ndarray, chunk: int = 256, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Held-Karp lengths ``[num]`` and tours ``[num, n]`` (in chunks, with a progress bar)."""
    dist = distance_matrix(pos)
    lengths, tours = [], []
    for start in tqdm(range(0, len(pos), chunk), desc="Held-Karp", disable=None if progress else True, leave=False):
        length, tour = held_karp(dist[start:start + chunk])
        lengths.append(length)
        tours.append(tour)
    return np.concatenate(lengths), np.concatenate(tours)


def tour_adjacency(tours: np.ndarray) -> np.ndarray:
    """``[num, n, n]`` 0/1 symmetric adjacency of closed tours."""
    num, n = tours.shape
    adj = np.zeros((num, n, n), dtype=np.float32)
    rows = np.arange(num)[:, None]
    adj[rows, tours, np.roll(tours, -1, axis=1)] = 1
    adj[rows, np.roll(tours, -1, axis=1), tours] = 1
    return adj


def train_model(invariant: bool, pos: np.ndarray, adj: np.ndarray, *, epochs: int = 20, batch_size: int = 64,
                lr: float = 1e-3, hidden_channels: int = 64, num_layers: int = 4, seed: int = 0,
                progress: bool = False) -> TSPEdgeNet:
    """Binary cross-entropy on the optimal tour's edges (positive weight ``n / 2`` for the imbalance)."""
    torch.manual_seed(seed)
    model = TSPEdgeNet(invariant=invariant, hidden_channels=hidden_channels, num_layers=num_layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(pos) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    with torch.no_grad():  # the inputs are fixed: embed every instance once
        coords, dist = model.features(torch.tensor(pos, dtype=torch.float32))
    y = torch.tensor(adj)
    n = pos.shape[1]
    off_diag = ~torch.eye(n, dtype=torch.bool)
    weight = torch.tensor(n / 2.0)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    bar = tqdm(range(epochs), desc=f"TSP {'TinvNN' if invariant else 'raw'}", disable=None if progress else True, leave=False)
    for _ in bar:
        order = torch.randperm(len(y), generator=gen)
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            logits = model.forward_features(coords[idx], dist[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, off_diag], y[idx][:, off_diag],
                                                                        pos_weight=weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    return model.eval()


@torch.no_grad()
def predict(model: TSPEdgeNet, pos: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Edge logits ``[num, n, n]`` (float64 numpy), computed on the device of ``model``."""
    x = torch.tensor(pos, dtype=torch.float32, device=module_device(model))
    return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]).double().cpu().numpy()


def decode_gaps(logits: np.ndarray, pos: np.ndarray, optimum: np.ndarray, refine: bool = False) -> np.ndarray:
    """Relative gaps ``L / L* - 1`` of the greedily decoded tours (optionally refined by 2-opt/or-opt)."""
    dist = distance_matrix(pos)
    gaps = np.empty(len(pos))
    for b in range(len(pos)):
        tour = greedy_edge_decode(logits[b])
        if refine:
            tour = local_search(dist[b], tour)
        gaps[b] = tour_length(dist[b], tour) / optimum[b] - 1
    return gaps


def run_experiment(n: int = 12, num_train: int = 2000, num_test: int = 200, epochs: int = 20, seed: int = 0,
                   progress: bool = True, **train_kwargs) -> dict:
    """The whole experiment; returns ``{"rows": [...], "invariance": {...}, "timings": {...}}``.

    Rows: one per (solver, test set) with the mean/median optimality gap in percent and the share of
    optimal tours. Solvers: TinvNN model, raw-coordinate model (both greedy-decoded, no search), nearest
    neighbour, and nearest neighbour + 2-opt/or-opt (a strong heuristic). Test sets: ``original``
    (the training distribution) and ``transformed`` (each instance under a random similarity).
    """
    t0 = time.perf_counter()
    train_pos = random_instances(num_train, n, seed)
    test_pos = random_instances(num_test, n, seed + 1)
    moved_pos = random_similarity(test_pos, seed + 2)
    _, train_tours = optimal_tours(train_pos, progress=progress)
    test_opt, _ = optimal_tours(test_pos, progress=progress)
    moved_opt, _ = optimal_tours(moved_pos[:20], progress=False)
    scale = np.linalg.norm(moved_pos[:20, 1] - moved_pos[:20, 0], axis=1) / np.linalg.norm(test_pos[:20, 1] - test_pos[:20, 0], axis=1)
    label_check = float(np.abs(moved_opt / (scale * test_opt[:20]) - 1).max())  # optimum is invariant up to scale
    timings = {"labels_s": time.perf_counter() - t0}
    adj = tour_adjacency(train_tours)
    rows, models = [], {}
    for invariant in (True, False):
        t1 = time.perf_counter()
        models[invariant] = train_model(invariant, train_pos, adj, epochs=epochs, seed=seed, progress=progress, **train_kwargs)
        timings[f"train_{'tinvnn' if invariant else 'raw'}_s"] = time.perf_counter() - t1
    for test_name, pos in (("original", test_pos), ("transformed", moved_pos)):
        dist = distance_matrix(pos)
        optimum = test_opt * (1.0 if test_name == "original" else
                              np.linalg.norm(pos[:, 1] - pos[:, 0], axis=1) / np.linalg.norm(test_pos[:, 1] - test_pos[:, 0], axis=1))
        for label, invariant in (("TinvNN model (greedy)", True), ("raw-coordinate model (greedy)", False)):
            gaps = decode_gaps(predict(models[invariant], pos), pos, optimum)
            rows.append(_row(label, test_name, gaps))
        nn_gaps = np.array([tour_length(dist[b], nearest_neighbour(dist[b])) / optimum[b] - 1 for b in range(len(pos))])
        rows.append(_row("nearest neighbour", test_name, nn_gaps))
        ls_gaps = np.array([tour_length(dist[b], local_search(dist[b], nearest_neighbour(dist[b]))) / optimum[b] - 1
                            for b in range(len(pos))])
        rows.append(_row("nearest neighbour + 2-opt/or-opt", test_name, ls_gaps))
    logits_a, logits_b = predict(models[True], test_pos), predict(models[True], moved_pos)
    same_tours = np.mean([np.array_equal(greedy_edge_decode(a), greedy_edge_decode(b)) for a, b in zip(logits_a, logits_b)])
    invariance = {"max_abs_logit_change_float32": float(np.abs(logits_a - logits_b).max()),
                  "share_identical_tours": float(same_tours), "optimum_scale_check": label_check}
    timings["total_s"] = time.perf_counter() - t0
    return {"rows": rows, "invariance": invariance, "timings": timings,
            "setup": {"n": n, "num_train": num_train, "num_test": num_test, "epochs": epochs, "seed": seed}}


def _row(solver: str, test: str, gaps: np.ndarray) -> dict:
    return {"solver": solver, "test_set": test, "gap_mean_pct": 100 * float(gaps.mean()),
            "gap_median_pct": 100 * float(np.median(gaps)), "optimal_pct": 100 * float((gaps < 1e-9).mean())}
