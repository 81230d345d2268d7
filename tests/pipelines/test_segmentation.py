"""Part segmentation pipeline: scene data, the task (loss, mIoU, lambda-hat), smoke runs of APEN and
its baselines through the engine, and the measured piecewise-equivariance error on constructed cases."""
from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Batch

from geomdl.ops import scatter
from geomdl.nn.apen import APEN, piecewise_equivariance_error, random_piecewise_motion
from geomdl.pipelines.config import ConfigError, load_config
from geomdl.pipelines.segmentation import PartSegmentationTask
from geomdl.pipelines.segmentation_data import PartScenes
from geomdl.testing import assert_equivariant

SMALL = {"num_scenes": 3, "num_points": 96, "objects_per_scene": [2, 3]}


def pairwise(p):
    return (p.unsqueeze(0) - p.unsqueeze(1)).norm(dim=-1)


# ---- data ---------------------------------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 1000), lo=st.integers(1, 3), extra=st.integers(0, 3), points=st.integers(64, 160),
       split=st.sampled_from(["train", "val", "test"]))
def test_object_scenes_are_well_formed(seed, lo, extra, points, split):
    hi = lo + extra
    ds = PartScenes("shapes", split, num_scenes=2, num_points=max(points, 16 * hi), objects_per_scene=(lo, hi), seed=seed,
                    classes=("sphere", "cube", "torus"))
    for d in ds:
        n_parts = d.part_label.numel()
        assert lo <= n_parts <= hi and d.pos.shape == (ds.num_points, 3) and d.y.shape == (ds.num_points,)
        counts = torch.bincount(d.part, minlength=n_parts)
        assert int(counts.min()) >= ds.num_points // hi and torch.equal(d.y, d.part_label[d.part])
        assert 0 <= int(d.y.min()) and int(d.y.max()) < 3
        # bounding spheres of different objects never overlap, whatever the arrangement
        centres = d.part_trans.double()
        radius = scatter((d.pos.double() - centres[d.part]).norm(dim=1), d.part, dim_size=n_parts, reduce="max")
        assert float(radius.max()) <= ds.object_radius[1] + 5 * ds.noise
        if n_parts > 1:
            off = ~torch.eye(n_parts, dtype=torch.bool)
            assert float(pairwise(centres)[off].min()) >= 2 * ds.object_radius[1] - 1e-5


def test_arrangements_move_each_part_rigidly_and_only_the_test_split_tumbles():
    upright = PartScenes("shapes", "test", num_scenes=2, num_points=120, test_arrangement="none", noise=0.0)
    tumbled = PartScenes("shapes", "test", num_scenes=2, num_points=120, test_arrangement="so3", noise=0.0)
    for a, b in zip(upright, tumbled):
        assert torch.equal(a.part, b.part) and torch.equal(a.y, b.y)
        assert not torch.allclose(a.pos, b.pos, atol=1e-3)
        for p in range(a.part_label.numel()):  # same object, moved rigidly about its centre
            pa, pb = a.pos[a.part == p].double(), b.pos[b.part == p].double()
            torch.testing.assert_close(pairwise(pa), pairwise(pb), atol=1e-5, rtol=0)
            torch.testing.assert_close(pa.mean(0), pb.mean(0), atol=1e-5, rtol=0)
            # the recorded motion maps the upright object onto the tumbled one
            rot = b.part_rot[p].double()
            torch.testing.assert_close((pa - a.part_trans[p].double()) @ rot.T + b.part_trans[p].double(), pb, atol=1e-5, rtol=0)
    train = PartScenes("shapes", "train", num_scenes=2, num_points=120)
    assert train.arrangement == "z" and tumbled.arrangement == "so3"
    for d in train:  # rotations about z keep every object upright
        torch.testing.assert_close(d.part_rot[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(d.part_label.numel(), 3))


def test_articulated_parts_are_reposed_independently():
    from geomdl.datasets.synthetic import SyntheticParts

    posed = PartScenes("parts", "test", num_scenes=2, num_points=256, test_arrangement="none", noise=0.0)
    moved = PartScenes("parts", "test", num_scenes=2, num_points=256, noise=0.0)
    raw = SyntheticParts(num_samples=2, num_points=256, split="test")
    for a, b, r in zip(posed, moved, raw):
        torch.testing.assert_close(a.pos.double(), r.pos.double() - r.pos.double().mean(0), atol=1e-5, rtol=0)
        assert torch.equal(a.y, r.y) and posed.num_classes == 12
        for p in range(a.part_label.numel()):
            pa, pb = a.pos[a.part == p].double(), b.pos[b.part == p].double()
            torch.testing.assert_close(pairwise(pa), pairwise(pb), atol=1e-4, rtol=0)


def test_modelnet_scenes_from_the_real_sample(shared_data):
    ds = PartScenes("modelnet", "test", num_scenes=3, num_points=256, root=shared_data / "modelnet40")
    assert ds.num_classes == 8 and len(ds) == 3
    for d in ds:
        assert d.pos.shape == (256, 3) and bool(torch.isfinite(d.pos).all())
    with pytest.raises(ValueError, match="no shapes of class"):
        PartScenes("modelnet", "train", num_scenes=1, root=shared_data / "modelnet40", classes=("door",))


def test_bad_scene_options_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="source"):
        PartScenes("rooms")
    with pytest.raises(ValueError, match="test_arrangement"):
        PartScenes(test_arrangement="SO3!")
    with pytest.raises(ValueError, match="spacing"):
        PartScenes(spacing=0.5)
    with pytest.raises(ValueError, match="num_points"):
        PartScenes(num_points=20)
    with pytest.raises(FileNotFoundError, match="modelnet40_normal_resampled"):
        PartScenes("modelnet", root=tmp_path)


# ---- task ---------------------------------------------------------------------------------------

def config(tmp_path, *overrides):
    return load_config("apen_segmentation", [
        f"train.out_dir={tmp_path}", "train.epochs=1", "train.batch_size=2", "train.progress=off", "train.tensorboard=false",
        "data.kwargs.num_scenes=4", "data.kwargs.eval_scenes=2", "data.kwargs.num_points=96", "data.kwargs.objects_per_scene=[2, 3]",
        "model.kwargs={hidden: 8, num_layers: 2, initial_parts: 8, sigmas: [0.2]}", *overrides])


def test_metrics_are_exact_iou_and_lambda(tmp_path):
    task = PartSegmentationTask(config(tmp_path))
    task.num_classes, task.class_names = 3, ["a", "b", "c"]
    pos = torch.randn(6, 3)
    batch = Batch.from_data_list([_cloud(pos, [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2])])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 1, 2, 0]), 3).float()
    output = {"logits": logits, "partitions": [torch.tensor([0, 0, 0, 1, 2, 2])], "soft": [torch.ones(6, 1)]}
    m = task.compute_metrics(task.metric_stats(batch, output))
    # class 0: TP 1, FP 1 (point 5), FN 1 (point 1) -> 1/3; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2
    assert m["iou_a"] == pytest.approx(1 / 3) and m["iou_b"] == pytest.approx(2 / 3) and m["iou_c"] == pytest.approx(0.5)
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0.5) / 3) and m["accuracy"] == pytest.approx(4 / 6)
    assert m["lambda_points_l0"] == pytest.approx(3 / 6) and m["parts_per_cloud_l0"] == 3


def _cloud(pos, y, part):
    from geomdl.datasets.data import PartData

    return PartData(pos=pos, y=torch.tensor(y), part=torch.tensor(part), part_rot=torch.eye(3).expand(max(part) + 1, 3, 3))


def test_loss_adds_the_vote_loss_only_when_asked(tmp_path):
    data = PartScenes("shapes", "train", num_scenes=2, num_points=96, objects_per_scene=(2, 3))
    batch = Batch.from_data_list(list(data))
    torch.manual_seed(0)
    model = APEN(12, hidden=8, num_layers=2, initial_parts=8, sigmas=(0.2,))
    out = model(batch)
    with_votes = PartSegmentationTask(config(tmp_path, "task.kwargs.vote_weight=2.0")).loss(batch, out)
    without = PartSegmentationTask(config(tmp_path, "task.kwargs.vote_weight=0.0")).loss(batch, out)
    from geomdl.nn.apen import vote_loss

    torch.testing.assert_close(with_votes - without, 2.0 * vote_loss(out["votes"], batch.pos, batch.part))
    with pytest.raises(ConfigError, match="vote_weight"):
        PartSegmentationTask(config(tmp_path, "task.kwargs.vote_weight=-1"))


@pytest.mark.parametrize("model", ["apen", "apen_global", "dgcnn"])
def test_two_step_run_writes_checkpoint_and_metrics(tmp_path, model):
    from geomdl.pipelines.runs import load_trained, train

    extra = {"apen_global": ["model.name=apen_global", "model.kwargs={hidden: 8, num_layers: 2}"],
             "dgcnn": ["model.name=dgcnn", "model.kwargs={task: node, k: 4, conv_channels: [8], emb_channels: 16, head_channels: [8]}"]}
    summary = train(config(tmp_path, *extra.get(model, [])), overwrite=True)
    assert summary["step"] == 2
    for name in ("last.pt", "best.pt", "metrics.csv", "test_metrics.json", "confusion_test.png"):
        assert (tmp_path / name).is_file(), name
    test = json.loads((tmp_path / "test_metrics.json").read_text())
    assert 0 <= test["miou"] <= 1 and test["num_points"] == 2 * 96
    assert ("lambda_points_l1" in test) == (model == "apen")
    net, task, _ = load_trained(tmp_path / "last.pt")
    assert task.num_classes == 4 and task.class_names == ["sphere", "cuboid", "cylinder", "torus"]
    batch = Batch.from_data_list(list(task.dataset_for("test"))[:2])
    assert task.forward(net, batch, train=False)["logits"].shape == (batch.pos.shape[0], 4)


def test_graph_level_model_is_refused_with_a_hint(tmp_path):
    task = PartSegmentationTask(config(tmp_path))
    batch = Batch.from_data_list(list(PartScenes("shapes", num_scenes=2, num_points=96, objects_per_scene=(2, 3))))
    with pytest.raises(ValueError, match="task: node"):
        task.forward(lambda b: torch.zeros(2, 12), batch, train=False)


# ---- piecewise equivariance: exact with the true parts, measured error grows with straddling --------

def _scene64(seed=0):
    data = PartScenes("shapes", "test", num_scenes=2, num_points=160, objects_per_scene=(4, 4), seed=seed)
    batch = Batch.from_data_list(list(data))
    return batch.pos.double(), batch.batch, batch.part


def test_measured_error_is_zero_for_refinements_and_grows_with_straddling_parts():
    pos, batch, part = _scene64()
    torch.manual_seed(0)
    model = APEN(12, hidden=16, num_layers=2, initial_parts=8, sigmas=(0.2,)).double()
    fine = part * 2 + (torch.arange(part.numel()) % 2)  # a refinement of the true parts
    assert piecewise_equivariance_error(model, pos, batch, part, partition="gt", n_samples=2)["equivariance_error_max"] < 1e-10
    ref = piecewise_equivariance_error(model, pos, batch, part, partition=fine, n_samples=2,
                                       generator=torch.Generator().manual_seed(1))
    assert ref["equivariance_error_max"] < 1e-10 and ref["lambda_points_per_layer"] == [0.0, 0.0]
    errors, lambdas = [], []
    merged = part.clone()
    for a, b in ((0, 1), (2, 3), (4, 5), (6, 7)):  # merge one more pair of true parts each time
        merged = torch.where(merged == b, torch.full_like(merged, a), merged)
        res = piecewise_equivariance_error(model, pos, batch, part, partition=merged, n_samples=3,
                                           generator=torch.Generator().manual_seed(1))
        errors.append(res["equivariance_error"])
        lambdas.append(res["lambda_points_per_layer"][0])
    assert all(e2 > e1 for e1, e2 in zip(errors, errors[1:])), errors
    assert all(l2 > l1 for l1, l2 in zip(lambdas, lambdas[1:])), lambdas
    assert errors[0] > 1e-3


def test_predicted_partitions_report_error_lambda_delta_per_layer():
    pos, batch, part = _scene64(1)
    torch.manual_seed(0)
    model = APEN(12, hidden=8, num_layers=3, initial_parts=16, sigmas=(0.1, 0.3)).double()
    res = piecewise_equivariance_error(model, pos, batch, part, n_samples=2, generator=torch.Generator().manual_seed(0))
    for key in ("equivariance_error_per_layer", "lambda_points_per_layer", "delta_points_per_layer", "parts_per_layer"):
        assert len(res[key]) == 3, key
    assert res["delta_points_per_layer"][0] == 0.0 and res["parts_per_layer"][0] == 32
    assert res["equivariance_error"] >= 0


def test_apen_with_predicted_partitions_is_globally_e3_invariant_and_permutation_equivariant():
    pos, batch, _ = _scene64(2)
    torch.manual_seed(0)
    model = APEN(5, hidden=8, num_layers=3, initial_parts=8, sigmas=(0.1, 0.3)).double()
    assert_equivariant(lambda pos, batch: model(pos, batch)["logits"], {"pos": pos, "batch": batch},
                       {"pos": "position", "batch": "batch"}, "scalar")


def test_piecewise_motion_moves_each_true_part_rigidly():
    pos, batch, part = _scene64(3)
    moved, rot, trans = random_piecewise_motion(pos, part, torch.Generator().manual_seed(0))
    for p in range(int(part.max()) + 1):
        torch.testing.assert_close(pairwise(pos[part == p]), pairwise(moved[part == p]))
    with pytest.raises(ValueError, match="partition"):
        piecewise_equivariance_error(None, pos, batch, part, partition=torch.zeros(3, dtype=torch.long))


def test_demo_stage_writes_the_picture_and_shows_exactness(tmp_path, capsys):
    from geomdl.pipelines.demo_segmentation import run

    result = run(tmp_path, quick=True)
    assert (tmp_path / "segmentation" / "apen_segmentation.png").stat().st_size > 10_000
    errors = result["exactness_errors"]
    assert errors["true parts"] < 1e-10 and errors["refinement"] < 1e-10 and errors["two objects merged"] > 1e-3
    assert len(result["lambda_points_per_layer"]) == 3 and "measured error" in capsys.readouterr().out


def test_carried_first_cells_that_refine_the_parts_give_exact_equivariance_recomputed_ones_do_not():
    data = PartScenes("shapes", "test", num_scenes=2, num_points=160, objects_per_scene=(2, 2), seed=4)
    batch = Batch.from_data_list(list(data))
    pos, part = batch.pos.double(), batch.part
    torch.manual_seed(0)
    model = APEN(4, hidden=8, num_layers=1, initial_parts=24).double()
    kw = {"n_samples": 2, "translation_scale": 0.0}
    carried = piecewise_equivariance_error(model, pos, batch.batch, part, generator=torch.Generator().manual_seed(0), **kw)
    assert carried["lambda_points_per_layer"] == [0.0] and carried["initial_partition"] == "carried"
    assert carried["equivariance_error_max"] < 1e-10
    recomputed = piecewise_equivariance_error(model, pos, batch.batch, part, carry_initial=False,
                                              generator=torch.Generator().manual_seed(0), **kw)
    assert recomputed["equivariance_error"] > 1e-4
