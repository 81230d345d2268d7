import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.pipelines import metrics
from geomdl.testing.equivariance import random_rotation

labels = st.integers(1, 6).flatmap(lambda c: st.tuples(st.just(c), st.lists(st.tuples(st.integers(0, c - 1), st.integers(0, c - 1)), min_size=1, max_size=60)))


@settings(max_examples=80, deadline=None)
@given(labels)
def test_confusion_metrics_match_direct_definitions(case):
    num, pairs = case
    pred = torch.tensor([p for p, _ in pairs])
    target = torch.tensor([t for _, t in pairs])
    conf = metrics.confusion_matrix(pred, target, num)
    assert int(conf.sum()) == len(pairs)
    assert metrics.accuracy_from_confusion(conf) == pytest.approx(metrics.accuracy(pred, target))
    recalls = [float((pred[target == c] == c).double().mean()) for c in range(num) if (target == c).any()]
    assert metrics.class_mean_accuracy(pred, target, num) == pytest.approx(sum(recalls) / len(recalls))
    ious = []
    for c in range(num):
        inter, union = int(((pred == c) & (target == c)).sum()), int(((pred == c) | (target == c)).sum())
        if union:
            ious.append(inter / union)
    miou, per_class = metrics.mean_iou(pred, target, num)
    assert miou == pytest.approx(sum(ious) / len(ious)) and per_class.shape == (num,)
    # statistics are additive: the sum over any split of the samples gives the same metrics
    half = len(pairs) // 2
    split = metrics.confusion_matrix(pred[:half], target[:half], num) + metrics.confusion_matrix(pred[half:], target[half:], num)
    assert torch.equal(split, conf)
    perm = torch.randperm(len(pairs))
    assert torch.equal(metrics.confusion_matrix(pred[perm], target[perm], num), conf)


def test_perfect_and_worst_predictions_and_ignore_index():
    t = torch.tensor([0, 1, 2, 2])
    assert metrics.accuracy(t, t) == 1.0 and metrics.mean_iou(t, t, 3)[0] == 1.0
    assert metrics.accuracy((t + 1) % 3, t) == 0.0 and metrics.mean_iou((t + 1) % 3, t, 3)[0] == 0.0
    assert math.isnan(float(metrics.iou_from_confusion(metrics.confusion_matrix(t, t, 4))[3]))
    pred, target = torch.tensor([0, 1, 1]), torch.tensor([0, -1, 1])
    assert metrics.confusion_matrix(pred, target, 2, ignore_index=-1).sum() == 2


def test_label_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"target labels must lie in \[0, 2\)"):
        metrics.confusion_matrix(torch.tensor([0]), torch.tensor([2]), 2)
    with pytest.raises(ValueError, match="same shape"):
        metrics.accuracy(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(TypeError, match="integer class labels"):
        metrics.accuracy(torch.tensor([0.0]), torch.tensor([0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)), min_size=1, max_size=40), st.integers(0, 40))
def test_mae_rmse_and_their_summable_statistics(pairs, cut):
    pred = torch.tensor([p for p, _ in pairs], dtype=torch.float64)
    target = torch.tensor([t for _, t in pairs], dtype=torch.float64)
    err = (pred - target).abs()
    assert metrics.mae(pred, target) == pytest.approx(float(err.mean()), abs=1e-9)
    assert metrics.rmse(pred, target) == pytest.approx(math.sqrt(float((err ** 2).mean())), abs=1e-9)
    assert metrics.rmse(pred, target) >= metrics.mae(pred, target) - 1e-9
    cut = min(cut, len(pairs))
    a, b = metrics.error_sums(pred[:cut], target[:cut], "e"), metrics.error_sums(pred[cut:], target[cut:], "e")
    total = {k: a[k] + b[k] for k in a}
    got = metrics.mae_rmse_from_sums(total, "e")
    assert got["e_mae"] == pytest.approx(metrics.mae(pred, target), abs=1e-9)
    assert got["e_rmse"] == pytest.approx(metrics.rmse(pred, target), abs=1e-9)


def test_force_errors_are_per_component():
    forces = torch.zeros(5, 3)
    assert metrics.mae(forces + torch.tensor([1.0, 0.0, 0.0]), forces) == pytest.approx(1 / 3)


def _axis_angle(axis, deg):
    axis = torch.tensor(axis, dtype=torch.float64)
    axis = axis / axis.norm()
    k = torch.tensor([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=torch.float64)
    a = math.radians(deg)
    return torch.eye(3, dtype=torch.float64) + math.sin(a) * k + (1 - math.cos(a)) * k @ k


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 180), st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(lambda v: sum(x * x for x in v) > 0.01),
       st.integers(0, 2**31 - 1))
def test_rotation_error_is_the_relative_angle(deg, axis, seed):
    base = random_rotation(torch.Generator().manual_seed(seed))
    rre = metrics.rotation_error_deg(base @ _axis_angle(axis, deg), base)
    assert float(rre) == pytest.approx(deg, abs=1e-4)
    assert float(metrics.rotation_error_deg(base, base @ _axis_angle(axis, deg))) == pytest.approx(deg, abs=1e-4)


def test_registration_metrics_on_poses():
    gt = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    pred = gt.clone()
    pred[1, :3, :3] = _axis_angle([0, 0, 1], 10.0)
    pred[2, :3, 3] = torch.tensor([0.0, 0.5, 0.0])
    out = metrics.registration_metrics(pred, gt)
    assert out["recall@15deg,0.3"] == pytest.approx(2 / 3) and out["recall@5deg,0.1"] == pytest.approx(1 / 3)
    assert torch.allclose(metrics.translation_error(pred, gt), torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64))
    assert out["rre_mean_deg"] == pytest.approx(10 / 3, abs=1e-5)
    with pytest.raises(ValueError, match=r"rot_pred must have shape \[..., 3, 3\]"):
        metrics.rotation_error_deg(torch.zeros(2, 2), torch.zeros(2, 2))


def test_a_nan_pose_gives_a_nan_error_and_fails_recall_without_stopping_the_batch():
    # one NaN estimate made the SVD of the whole batch raise torch.linalg.LinAlgError
    gt = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    pred = gt.clone()
    pred[0, :3, :3] = _axis_angle([0, 0, 1], 10.0)
    pred[1, 0, 0] = math.nan
    rre = metrics.rotation_error_deg(pred, gt)
    assert rre[0] == pytest.approx(10.0, abs=1e-6) and math.isnan(rre[1]) and rre[2] == 0.0
    assert math.isnan(metrics.rotation_error_deg(gt[2], pred[1]))  # a NaN ground truth too
    out = metrics.registration_metrics(pred, gt)
    assert out["recall@15deg,0.3"] == pytest.approx(2 / 3)


def test_registration_medians_of_an_even_count_average_the_middle_pair():
    # torch.median returned the lower middle value: rte_median 0.1 for errors [0.1, 0.3]
    gt = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    pred = gt.clone()
    pred[:, 0, 3] = torch.tensor([0.1, 0.3], dtype=torch.float64)
    pred[1, :3, :3] = _axis_angle([0, 0, 1], 10.0)
    out = metrics.registration_metrics(pred, gt)
    assert out["rte_median"] == pytest.approx(0.2) and out["rre_median_deg"] == pytest.approx(5.0, abs=1e-6)
    empty = metrics.registration_metrics(torch.zeros(0, 4, 4), torch.zeros(0, 4, 4))
    assert math.isnan(empty["rte_median"]) and math.isnan(empty["rre_median_deg"])
