"""Task-level code on every device: metrics, the evaluation statistics, and the training/evaluation loops that
build batches themselves (n-body, potentials, learned registration descriptor, TSP).

Parametrised like tests/nn/test_device_portability.py: ``device`` is the CPU, and CUDA when there is one. Each
test runs the code with the model (or the tensors) on ``device`` and compares with the CPU run; on the CPU it
checks that the device-aware code paths change nothing, on a GPU it checks that they work. Random draws come
from CPU generators in both runs, so the numbers agree up to float64 rounding (``rtol=1e-9``).
"""
from __future__ import annotations

import copy

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RTOL, ATOL = 1e-9, 1e-10


def _close(out, ref, rtol=RTOL, atol=ATOL):
    torch.testing.assert_close(torch.as_tensor(out).cpu(), torch.as_tensor(ref).cpu(), rtol=rtol, atol=atol)


# ---- metrics and evaluation statistics ---------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_error_sums_are_on_the_device_of_pred(device):
    """Covers the fix in geomdl/pipelines/metrics.py: ``count`` was a CPU tensor next to CUDA sums (a
    ``torch.stack`` of the statistics, or an all-reduce of them without the evaluation loop's copy, failed)."""
    from geomdl.pipelines import metrics

    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(7, 3, generator=g, dtype=torch.float64), torch.randn(7, 3, generator=g, dtype=torch.float64)
    ref = metrics.error_sums(pred, target, "forces")
    out = metrics.error_sums(pred.to(device), target.to(device), "forces")
    assert out.keys() == ref.keys()
    for key, value in out.items():
        assert value.device.type == device, f"{key} is on {value.device}"
        _close(value, ref[key])
    stacked = torch.stack(list(out.values()))  # one device for all statistics
    assert stacked.device.type == device
    assert metrics.mae_rmse_from_sums(out, "forces") == pytest.approx(metrics.mae_rmse_from_sums(ref, "forces"), rel=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_classification_and_registration_metrics_on_device(device):
    from geomdl.o3 import rand_matrix
    from geomdl.pipelines import metrics

    g = torch.Generator().manual_seed(1)
    pred, target = torch.randint(0, 4, (40,), generator=g), torch.randint(0, 4, (40,), generator=g)
    conf = metrics.confusion_matrix(pred.to(device), target.to(device), 4)
    assert conf.device.type == device
    _close(conf, metrics.confusion_matrix(pred, target, 4), rtol=0, atol=0)
    assert metrics.accuracy(pred.to(device), target.to(device)) == metrics.accuracy(pred, target)
    miou, iou = metrics.mean_iou(pred.to(device), target.to(device), 4)
    ref_miou, ref_iou = metrics.mean_iou(pred, target, 4)
    assert miou == pytest.approx(ref_miou, rel=1e-12) and iou.device.type == device
    torch.manual_seed(2)
    poses = torch.eye(4, dtype=torch.float64).repeat(5, 1, 1)
    poses[:, :3, :3] = rand_matrix(5).double()
    truth = poses.clone()
    truth[:, :3, 3] = torch.randn(5, 3, generator=g, dtype=torch.float64) * 0.1
    rre = metrics.rotation_error_deg(poses.to(device), truth.to(device))
    assert rre.device.type == device
    _close(rre, metrics.rotation_error_deg(poses, truth), rtol=1e-9, atol=1e-9)
    out, ref = metrics.registration_metrics(poses.to(device), truth.to(device)), metrics.registration_metrics(poses, truth)
    assert out.keys() == ref.keys() and all(out[k] == pytest.approx(ref[k], rel=1e-9, abs=1e-9) for k in ref)


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_statistics_are_gathered_on_the_cpu(device):
    """The evaluation loop sums statistics of any device into CPU float64 tensors (then all-reduced on the
    process device by :func:`~geomdl.pipelines.distributed.all_reduce_sum`)."""
    from geomdl.pipelines import metrics
    from geomdl.pipelines.evaluation import add_stats

    stats: dict = {}
    for seed in range(2):
        g = torch.Generator().manual_seed(seed)
        pred = torch.randn(4, generator=g, dtype=torch.float64).to(device)
        add_stats(stats, {**metrics.error_sums(pred, torch.zeros_like(pred), "energy"),
                          "confusion": metrics.confusion_matrix(torch.tensor([0, 1]).to(device), torch.tensor([0, 0]).to(device), 2)})
    assert all(v.device.type == "cpu" for v in stats.values())
    assert float(stats["energy/count"]) == 8 and int(stats["confusion"].sum()) == 4


def test_python_float_statistics_are_summed_in_float64():
    """A task's ``metric_stats`` may return Python floats: they are float64, not rounded to float32 on the way."""
    from geomdl.pipelines.evaluation import add_stats

    stats = add_stats(add_stats({}, {"err": 0.1, "n": 3}), {"err": 0.2, "n": 4})
    assert stats["err"].dtype == torch.float64 and float(stats["err"]) == 0.1 + 0.2
    assert stats["n"].dtype == torch.int64 and int(stats["n"]) == 7


def test_move_to_rebuilds_named_tuples():
    """A batch that is a named tuple keeps its type and fields (``type(batch)(generator)`` raised a TypeError)."""
    from collections import namedtuple

    from geomdl.pipelines.evaluation import move_to

    Pair = namedtuple("Pair", "pos label")
    moved = move_to([Pair(torch.zeros(2, 3), 5)], torch.device("cpu"))
    assert isinstance(moved[0], Pair) and moved[0].label == 5 and moved[0].pos.shape == (2, 3)


def test_parity_plot_of_an_empty_split(tmp_path):
    """No samples (``[0, T]``): an empty plot with one panel per target column, no reshape error."""
    pytest.importorskip("matplotlib")
    from geomdl.pipelines.plots import parity_plot

    assert parity_plot(torch.zeros(0, 3), torch.zeros(0, 3), tmp_path / "parity.png").is_file()


def test_plots_accept_tensors_that_require_grad():
    """Covers the fix in geomdl/pipelines/plots.py: ``.numpy()`` of a tensor that requires grad (a model output
    passed straight in) raised; CUDA tensors are copied to the CPU first as well."""
    pytest.importorskip("matplotlib")
    import tempfile
    from pathlib import Path

    from geomdl.pipelines.plots import confusion_matrix_plot, energy_force_parity_plot, parity_plot

    pred = torch.randn(10, 2, dtype=torch.float64, requires_grad=True)
    with tempfile.TemporaryDirectory() as tmp:
        assert parity_plot(pred * 2, pred.detach(), Path(tmp) / "parity.png").is_file()
        assert confusion_matrix_plot(torch.ones(3, 3, requires_grad=True), Path(tmp) / "conf.png").is_file()
        e, f = pred[:, 0] * 2, pred * 3
        assert energy_force_parity_plot(e, e.detach(), f, f.detach(), Path(tmp) / "ef.png").is_file()


# ---- training / evaluation loops that build their own batches ----------------------------------------------------


def _nbody_model():
    from geomdl.nn.ponita import Ponita

    torch.manual_seed(0)
    return Ponita(2, out_scalars=0, out_vectors=1, in_vectors=1, hidden=8, layers=1, num_ori=4, basis_dim=8, widening=1,
                  task_level="node").double()


@pytest.mark.parametrize("device", DEVICES)
def test_nbody_pipeline_runs_on_the_model_device(device):
    """Covers the fixes in geomdl/pipelines/nbody.py: the batch vector, the charge-flip signs and the rotations
    (drawn on the CPU) now follow the data/model device, and train/evaluate move each batch to the model's device.
    Before, a model on CUDA met CPU batches (and CPU rotations met CUDA positions)."""
    from geomdl.datasets.nbody import nbody_split
    from geomdl.pipelines.nbody import evaluate_nbody, flip_charge_signs, nbody_inputs, train_nbody

    data = {k: v.double() for k, v in nbody_split("val", 6, None, progress=False).items()}
    parts = nbody_inputs(data, torch.arange(3), device)
    assert all(t.device.type == device for t in parts)
    flipped = flip_charge_signs(parts[1], parts[3], torch.Generator().manual_seed(0))
    ref_flipped = flip_charge_signs(nbody_inputs(data, torch.arange(3))[1], nbody_inputs(data, torch.arange(3))[3],
                                    torch.Generator().manual_seed(0))
    assert flipped.device.type == device
    _close(flipped, ref_flipped, rtol=0, atol=0)
    ref_model, model = _nbody_model(), _nbody_model().to(device)
    _close(evaluate_nbody(model, data, rotations=2, seed=3), evaluate_nbody(ref_model, data, rotations=2, seed=3))
    ref = train_nbody(ref_model, data, data, epochs=2, batch_size=3, eval_every=1, log=None)
    out = train_nbody(model, data, data, epochs=2, batch_size=3, eval_every=1, log=None)
    assert next(out["model"].parameters()).device.type == device
    for a, b in zip(out["history"], ref["history"]):
        # Adam divides by sqrt(v): rounding differences of the gradients grow a little over the steps
        assert a["train_mse"] == pytest.approx(b["train_mse"], rel=1e-7) and a["val_mse"] == pytest.approx(b["val_mse"], rel=1e-7)


def _frames(num=4):
    from geomdl.pipelines.molecular import Frame

    g = torch.Generator().manual_seed(5)
    frames = []
    for k in range(num):
        n = 4 + k % 2
        z = torch.tensor([6, 1, 8, 1, 1][:n])
        pos = torch.randn(n, 3, generator=g, dtype=torch.float64) * 1.1
        frames.append(Frame(z, pos, float(-10.0 * n + torch.randn((), generator=g)), torch.randn(n, 3, generator=g, dtype=torch.float64)))
    return frames


def _potential():
    from geomdl.nn.ponita import PonitaPotential

    torch.manual_seed(0)
    return PonitaPotential([1, 6, 8], hidden=8, layers=1, num_ori=4, radius=3.0, basis_dim=6, widening=1)


@pytest.mark.parametrize("device", DEVICES)
def test_potential_training_and_evaluation_run_on_the_model_device(device):
    """Covers the fixes in geomdl/pipelines/molecular.py: ``collate`` builds CPU batches and the rotations come
    from a CPU generator; train/evaluate now move each batch to the model's device (``MoleculeBatch.to``) and
    the rotations to the batch's device. Before, a model on CUDA got CPU positions."""
    from geomdl.pipelines.molecular import evaluate_potential, train_potential

    frames = _frames()
    kwargs = dict(epochs=2, batch_size=2, eval_every=1, ema_decay=0.9, dtype=torch.float64, log=None, keep_freed_memory=False)
    ref = train_potential(_potential(), frames, frames, **kwargs)
    out = train_potential(_potential().to(device), frames, frames, **kwargs)
    assert next(out["model"].parameters()).device.type == device
    for a, b in zip(out["history"], ref["history"]):
        for key in ("loss", "val_energy_mae", "val_forces_rmse"):  # Adam: see test_nbody_pipeline_runs_on_the_model_device
            assert a[key] == pytest.approx(b[key], rel=1e-7), key
    ev = evaluate_potential(out["model"], frames, dtype=torch.float64, rotations=2)
    ev_ref = evaluate_potential(ref["model"], frames, dtype=torch.float64, rotations=2)
    assert ev == pytest.approx(ev_ref, rel=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_molecule_batch_to_device(device):
    from geomdl.pipelines.molecular import collate

    batch = collate(_frames(), torch.float64)
    moved = batch.to(device)
    assert moved.num_graphs == batch.num_graphs
    for name in ("z", "pos", "batch", "energy", "forces", "num_atoms"):
        assert getattr(moved, name).device.type == device
        _close(getattr(moved, name), getattr(batch, name), rtol=0, atol=0)


def _descriptor():
    from geomdl.pipelines.registration.learned import PatchDescriptor

    torch.manual_seed(0)
    return PatchDescriptor(dim=8, width=8, degree=2, radius_voxels=4.0, num_neighbors=8)  # float32, as train_descriptor's patches


def _training_pair():
    from geomdl.pipelines.registration.geometry import transform
    from geomdl.pipelines.registration.training import TrainingPair, _oriented_normals

    g = torch.Generator().manual_seed(0)
    src = torch.rand(300, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 1.0, 0.3], dtype=torch.float64)
    src[:, 2] += 0.1 * torch.sin(6 * src[:, 0])  # a wavy slab: normals and patches vary
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, 3] = torch.tensor([0.05, -0.02, 0.01], dtype=torch.float64)
    tgt = transform(src, pose)
    return TrainingPair(src, _oriented_normals(src), tgt, _oriented_normals(tgt), pose, "test")


@pytest.mark.parametrize("device", DEVICES)
def test_learned_descriptor_trains_and_describes_on_the_model_device(device):
    """Covers the fixes in geomdl/pipelines/registration/training.py (``info_nce``'s class targets were a CPU
    ``arange`` next to CUDA logits; ``train_descriptor`` fed CPU patches to the model) and learned.py
    (``describe`` fed CPU patches to the model; it now runs the network on its device and returns the
    descriptors on the device of the points, the registration pipeline's CPU)."""
    from geomdl.pipelines.registration.training import info_nce, train_descriptor

    pair = _training_pair()
    ref_model, model = _descriptor(), _descriptor().to(device)
    ref = train_descriptor(ref_model, [pair], steps=2, voxel=0.05, per_pair=16)
    out = train_descriptor(model, [pair], steps=2, voxel=0.05, per_pair=16)
    # float32 (the training patches are float32): the device's matmuls and reductions round differently
    assert out == pytest.approx(ref, rel=1e-4)
    keypoints = torch.arange(0, 300, 37)
    desc = model.describe(pair.source, pair.source_normals, keypoints, 0.05)
    assert desc.device == pair.source.device
    _close(desc, ref_model.describe(pair.source, pair.source_normals, keypoints, 0.05), rtol=1e-4, atol=1e-5)
    g = torch.Generator().manual_seed(1)
    a, b = (torch.nn.functional.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1) for _ in range(2))
    pos, grp = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.tensor([0, 0, 0, 1, 1, 1])
    loss = info_nce(a.to(device), b.to(device), pos.to(device), grp.to(device), 0.5)
    assert loss.device.type == device
    _close(loss, info_nce(a, b, pos, grp, 0.5))


@pytest.mark.parametrize("device", DEVICES)
def test_tsp_predict_uses_the_model_device(device):
    """Covers the fix in geomdl/pipelines/tsp/experiment.py: ``predict`` fed CPU cities to the model and called
    ``.numpy()`` on its (possibly CUDA) output."""
    from geomdl.models.tinv_tsp import TSPEdgeNet
    from geomdl.pipelines.tsp.experiment import predict

    torch.manual_seed(0)
    model = TSPEdgeNet(hidden_channels=8, num_layers=2).eval()
    pos = torch.rand(3, 7, 2, generator=torch.Generator().manual_seed(0)).numpy()
    ref = predict(model, pos)
    out = predict(copy.deepcopy(model).to(device), pos)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    # float32 model: the device's matmuls and reductions round differently
    torch.testing.assert_close(torch.from_numpy(out), torch.from_numpy(ref), rtol=1e-4, atol=1e-4)
