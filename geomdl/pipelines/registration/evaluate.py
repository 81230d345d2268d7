"""3DMatch-protocol evaluation over a benchmark folder (``gt.log`` [+ ``gt.info``]) and its fragments.

For every record ``i j`` of ``gt.log`` whose fragments ``cloud_bin_i`` and ``cloud_bin_j`` exist, the
fragment ``j`` (source) is registered onto ``i`` (target) and compared with the ground truth.
"""
from __future__ import annotations

import pathlib
import statistics
import warnings

from geomdl.ops._validation import check_positive_real
from geomdl.pipelines.registration.io import SUFFIXES, read_gt_info, read_gt_log, read_point_cloud
from geomdl.pipelines.registration.metrics import feature_match_recall, inlier_ratio, registration_metrics


def find_fragment(folder: pathlib.Path, index: int) -> pathlib.Path | None:
    """``folder/cloud_bin_<index>`` with the first existing suffix of :data:`SUFFIXES`."""
    for suffix in SUFFIXES:
        path = folder / f"cloud_bin_{index}{suffix}"
        if path.is_file():
            return path
    return None


def evaluate_benchmark(benchmark_dir, fragments_dir, method: str = "geomdl", voxel_size: float = 0.05,
                       max_pairs: int | None = None, progress: bool = True) -> dict:
    """Register every available ``gt.log`` pair and summarise with the 3DMatch metrics.

    ``max_pairs`` (``None`` or an int >= 1) keeps the first pairs of ``gt.log``; ``voxel_size`` (> 0) is in
    the fragments' units (metres for 3DMatch).

    Returns ``{"pairs": [per-pair dict], "summary": {...}}``; see :func:`summarize_pairs` for the summary.
    Each pair's ``rmse_from`` says whether its RMSE is the benchmark's (``"gt.info"``, the information-matrix
    RMSE) or the RMSE over the source fragment's points (``"points"``, when ``gt.info`` is absent or has no
    record of the pair); the two are not comparable, so a ``gt.info`` that lacks some pairs warns.
    """
    from tqdm import tqdm

    from geomdl.pipelines.registration.pipeline import register

    if max_pairs is not None and (isinstance(max_pairs, bool) or not isinstance(max_pairs, int) or max_pairs < 1):
        raise ValueError(f"max_pairs must be None (all pairs) or an int >= 1, got {max_pairs!r}")
    voxel_size = check_positive_real(voxel_size, "voxel_size")
    benchmark_dir, fragments_dir = pathlib.Path(benchmark_dir), pathlib.Path(fragments_dir)
    for what, folder, holds in (("benchmark", benchmark_dir, "gt.log"), ("fragments", fragments_dir, "cloud_bin_<k> files")):
        if not folder.is_dir():
            state = "is a file" if folder.exists() else "does not exist"
            raise (NotADirectoryError if folder.exists() else FileNotFoundError)(
                f"{what} folder {str(folder)!r} {state}; expected the folder that holds {holds}")
    gt = read_gt_log(benchmark_dir / "gt.log")
    if not gt:
        raise ValueError(f"{benchmark_dir / 'gt.log'}: no pair records (an empty file?)")
    info = read_gt_info(benchmark_dir / "gt.info") if (benchmark_dir / "gt.info").is_file() else {}
    todo = [(i, j) for (i, j) in gt if find_fragment(fragments_dir, i) and find_fragment(fragments_dir, j)]
    if not todo:
        raise ValueError(f"no gt.log pair of {benchmark_dir} has both fragments in {fragments_dir}")
    todo = todo[:max_pairs] if max_pairs is not None else todo
    cache, rows = {}, []
    for i, j in tqdm(todo, desc="pairs", disable=None if progress else True):
        for k in (i, j):
            if k not in cache:
                cache[k] = read_point_cloud(find_fragment(fragments_dir, k))
        try:
            result = register(cache[j], cache[i], method=method, voxel_size=voxel_size)
        except ValueError as exc:  # e.g. a fragment too small for voxel_size: name the pair's files
            raise ValueError(f"pair {i}-{j} (source {find_fragment(fragments_dir, j)}, target "
                             f"{find_fragment(fragments_dir, i)}): {exc}") from exc
        m = registration_metrics(result.pose, gt[(i, j)], info.get((i, j)), source=cache[j])
        corr = result.correspondences
        ratio = (inlier_ratio(result.source_down[corr[:, 0]], result.target_down[corr[:, 1]], gt[(i, j)])
                 if corr.numel() else float("nan"))
        rows.append({"pair": f"{i}-{j}", "consecutive": not is_protocol_pair(i, j), **m, "inlier_ratio": ratio,
                     "rmse_from": "gt.info" if (i, j) in info else "points",
                     "flagged_success": result.success, "time_s": result.timings["total"]})
    missing = [r["pair"] for r in rows if r["rmse_from"] == "points"]
    if info and missing:
        warnings.warn(f"{benchmark_dir / 'gt.info'}: no record of {len(missing)} of {len(rows)} evaluated pairs "
                      f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); their RMSE is over the fragment's "
                      "points, not the benchmark's information-matrix RMSE", stacklevel=2)
    return {"pairs": rows, "summary": {"method": method, **summarize_pairs(rows)}}


def is_protocol_pair(i: int, j: int) -> bool:
    """Whether the pair ``i j`` of ``gt.log`` counts in the 3DMatch registration recall: ``j - i > 1``.

    The benchmark's own evaluation (``mrEvaluateRegistration`` of Choi et al.'s toolbox, called by the
    3DMatch toolbox) skips consecutive fragments, which overlap heavily and are easy.
    """
    return j - i > 1


def summarize_pairs(rows: list[dict]) -> dict:
    """Summary of per-pair rows (each with ``consecutive``, ``recall_ok``, ``success``, ``rre_deg``, ``rte``,
    ``inlier_ratio`` (NaN when no correspondence) and ``time_s``).

    * ``registration_recall``: fraction of the non-consecutive pairs (``j - i > 1``, the benchmark's own
      protocol, see :func:`is_protocol_pair`) whose correspondence RMSE is at most 0.2 m; NaN when every
      evaluated pair is consecutive. ``registration_recall_pairs`` counts those pairs.
    * ``registration_recall_all_pairs``: the same criterion over every evaluated pair.
    * ``success_rate`` (RRE < 15 deg and RTE < 0.3 m) and ``feature_match_recall`` (inlier ratio > 5 %)
      over every evaluated pair (a pair without correspondences counts as not recalled);
      ``mean_inlier_ratio`` over the pairs with correspondences; median RRE/RTE over the pairs within
      the RMSE threshold; the mean time per pair.
    """
    if not rows:
        raise ValueError("rows must hold at least one evaluated pair")
    counted = [r for r in rows if not r["consecutive"]]
    recalled = [r for r in rows if r["recall_ok"]]
    ratios = [r["inlier_ratio"] for r in rows if r["inlier_ratio"] == r["inlier_ratio"]]
    nan = float("nan")
    return {
        "pairs": len(rows),
        "registration_recall": sum(r["recall_ok"] for r in counted) / len(counted) if counted else nan,
        "registration_recall_pairs": len(counted),
        "registration_recall_all_pairs": sum(r["recall_ok"] for r in rows) / len(rows),
        "success_rate": sum(r["success"] for r in rows) / len(rows),
        # a pair without correspondences (ratio NaN) has no inlier: it fails the > 5 % test, not drops out
        "feature_match_recall": feature_match_recall([0.0 if r != r else r for r in (x["inlier_ratio"] for x in rows)]),
        "mean_inlier_ratio": statistics.fmean(ratios) if ratios else nan,
        "median_rre_deg": statistics.median(r["rre_deg"] for r in recalled) if recalled else nan,
        "median_rte": statistics.median(r["rte"] for r in recalled) if recalled else nan,
        "mean_time_s": statistics.fmean(r["time_s"] for r in rows),
    }
