"""The rotated-classification task with TinvNN: protocols, invariance inside the task, a smoke run."""
from __future__ import annotations

import torch
from torch_geometric.data import Batch, Data

from geomdl.nn.tinv import TinvNet
from geomdl.pipelines.config import load_config
from geomdl.pipelines.rotated_classification import RotatedClassificationTask, normalize_clouds, rotation_batch
from geomdl.pipelines.runs import load_trained, train

SMOKE = ["train.epochs=2", "data.kwargs.num_per_class=2", "data.kwargs.num_points=48", "model.name=tiny_pointnet",
         "model.kwargs={hidden_channels: 16}", "train.batch_size=8", "train.plots=false", "train.tensorboard=false",
         "train.progress=off"]


def generic_batch(num=4, n=40, seed=0):
    gen = torch.Generator().manual_seed(seed)
    clouds = []
    for i in range(num):
        x = torch.randn(n, 3, generator=gen) * torch.tensor([3.0, 2.0, 1.0])
        clouds.append(Data(pos=x + 0.4 * x.pow(2), y=torch.tensor([i % 2]), sample_id=torch.tensor([i])))
    return Batch.from_data_list(clouds)


def task_and_model(tinvnn: bool, tmp_path):
    cfg = load_config("tinvnn_shapes", SMOKE + [f"task.kwargs.tinvnn={str(tinvnn).lower()}",
                                                            f"train.out_dir={tmp_path}", "task.kwargs.num_classes=2"])
    task = RotatedClassificationTask(cfg)
    torch.manual_seed(0)
    return task, task.build_model({"out_channels": 2, "hidden_channels": 16}).double()


def test_rotations_are_proper_and_fixed_per_sample():
    rots = rotation_batch("so3", 5, torch.Generator().manual_seed(0), torch.float64)
    assert torch.allclose(rots @ rots.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(5, 3, 3), atol=1e-12)
    assert torch.allclose(torch.linalg.det(rots), torch.ones(5, dtype=torch.float64))
    z = rotation_batch("z", 3, torch.Generator().manual_seed(0), torch.float64)
    assert torch.equal(z[:, 2], torch.tensor([[0.0, 0.0, 1.0]] * 3, dtype=torch.float64))


def test_normalize_clouds_centres_and_fits_the_unit_sphere():
    data = generic_batch()
    pos = normalize_clouds(data.pos.double() * 7 + 3, data.batch, 4)
    for b in range(4):
        p = pos[data.batch == b]
        assert float(p.mean(0).abs().max()) < 1e-12 and abs(float(p.norm(dim=1).max()) - 1) < 1e-12


def test_normalize_clouds_in_float32_far_from_the_origin_matches_float64():
    """float32 clouds at ~1e4: a one-pass centring left the ~ulp(1e4) error of the centroid in every point
    (3e-3 of the unit radius); the second pass brings it to float32 rounding."""
    data = generic_batch()
    pos = (data.pos.double() + torch.tensor([1e4, -7e3, 3e3], dtype=torch.float64)).float()
    out = normalize_clouds(pos, data.batch, 4)
    ref = normalize_clouds(pos.double(), data.batch, 4)
    assert float((out.double() - ref).norm() / ref.norm()) < 1e-6


def test_tinvnn_model_gives_the_same_logits_under_every_protocol(tmp_path):
    task, model = task_and_model(True, tmp_path)
    assert isinstance(model, TinvNet)
    batch = generic_batch()
    batch.pos = batch.pos.double()
    model.eval()
    out = task.forward(model, batch, train=False)
    assert set(out) == {"none", "z", "so3"}
    assert torch.allclose(out["z"], out["none"], atol=1e-10) and torch.allclose(out["so3"], out["none"], atol=1e-10)
    again = task.forward(model, batch, train=False)  # fixed evaluation rotations
    assert torch.equal(again["so3"], out["so3"])


def test_raw_baseline_changes_under_rotation(tmp_path):
    task, model = task_and_model(False, tmp_path)
    assert not isinstance(model, TinvNet)
    batch = generic_batch()
    batch.pos = batch.pos.double()
    with torch.no_grad():
        out = task.forward(model.eval(), batch, train=False)
    assert float((out["so3"] - out["none"]).abs().max()) > 1e-4


def test_metrics_report_every_protocol(tmp_path):
    task, model = task_and_model(True, tmp_path)
    task.num_classes = 2
    batch = generic_batch()
    batch.pos = batch.pos.double()
    out = task.forward(model.eval(), batch, train=False)
    metrics = task.compute_metrics(task.metric_stats(batch, out))
    for key in ("accuracy", "accuracy_none", "accuracy_z", "accuracy_so3", "class_mean_accuracy_so3"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["num_samples"] == 4
    assert float(task.loss(batch, out).detach()) > 0


def test_two_epoch_training_run_writes_a_checkpoint_that_reloads(tmp_path):
    summary = train("tinvnn_shapes", SMOKE + [f"train.out_dir={tmp_path}"])
    assert (tmp_path / "last.pt").exists() and (tmp_path / "test_metrics.json").exists()
    test = summary["metrics"]["test"]
    assert {"accuracy_z", "accuracy_so3", "accuracy_none"} <= set(test)
    model, task, _ = load_trained(tmp_path / "last.pt")
    assert isinstance(model, TinvNet) and isinstance(task, RotatedClassificationTask)
    from geomdl.pipelines.runs import evaluate_checkpoint

    again = evaluate_checkpoint(tmp_path / "last.pt", out_dir=tmp_path / "eval", plots=False)["test"]
    assert again["accuracy_so3"] == test["accuracy_so3"]  # the same fixed evaluation rotations


def test_demo_stage_prints_accuracy_on_rotated_shapes(tmp_path, capsys):
    from geomdl.pipelines.demo_tinvnn import run

    result = run(tmp_path, quick=True)
    printed = capsys.readouterr().out
    assert "SO3-rotated" in printed
    for key in ("accuracy_unrotated", "accuracy_z", "accuracy_so3"):
        assert 0.0 <= result[key] <= 1.0
    assert result["max_relative_logit_change_so3"] < 1e-3  # invariant up to float32 rounding


def test_modelnet_config_runs_on_the_real_sample(shared_data, tmp_path):
    """One epoch on the 72 real ModelNet40 shapes (52 train / 20 test): a smoke run of the config."""
    summary = train("tinvnn_modelnet40", [
        f"data.root={shared_data / 'modelnet40'}", f"data.kwargs.processed_dir={tmp_path / 'processed'}",
        "data.kwargs.num_points=128", "data.num_workers=0", "train.epochs=1", "train.batch_size=16",
        "model.kwargs={local_channels: [32], global_channels: [64], head_channels: [32]}", f"train.out_dir={tmp_path / 'run'}",
        "train.plots=false", "train.tensorboard=false", "train.progress=off"])
    test = summary["metrics"]["test"]
    assert test["num_samples"] == 20 and 0.0 <= test["accuracy_so3"] <= 1.0


def test_average_mode_runs_inside_the_task_on_a_pyg_batch_with_a_cube(tmp_path):
    import itertools

    cfg = load_config("tinvnn_shapes", SMOKE + ["task.kwargs.tinvnn_degenerate=average",
                                                            f"train.out_dir={tmp_path}", "task.kwargs.num_classes=2"])
    task = RotatedClassificationTask(cfg)
    torch.manual_seed(0)
    model = task.build_model({"out_channels": 2, "hidden_channels": 16}).double().eval()
    cube = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=3)), dtype=torch.float64)
    batch = generic_batch(num=2)
    batch = Batch.from_data_list([*batch.to_data_list(), Data(pos=cube.float(), y=torch.tensor([1]), sample_id=torch.tensor([2]))])
    batch.pos = batch.pos.double()
    batch.normal = torch.randn(batch.pos.shape[0], 3, dtype=torch.float64)  # a node attribute that must follow the frames
    with torch.no_grad():
        out = task.forward(model, batch, train=False)
    assert model.last_embedding.num_frames.tolist() == [1, 1, 96]
    assert torch.allclose(out["so3"], out["none"], atol=1e-10) and torch.allclose(out["z"], out["none"], atol=1e-10)
