"""The N-body forecasting pipeline: simulation facts, batching, rotation-averaged evaluation, a short fit."""
import numpy as np
import pytest
import torch

from geomdl.datasets.functional import random_rotation_matrix
from geomdl.datasets.nbody import nbody_split, simulate_charged_systems
from geomdl.nn.ponita import Ponita
from geomdl.pipelines.nbody import evaluate_nbody, flip_charge_signs, nbody_inputs, predict_rotation_averaged, train_nbody


def test_simulation_conserves_momentum_and_is_seeded():
    a = simulate_charged_systems(4, frames=3, sample_every=10, seed=1)
    b = simulate_charged_systems(4, frames=3, sample_every=10, seed=1)
    np.testing.assert_array_equal(a["loc"], b["loc"])
    # pairwise forces cancel (no clipping at these distances): total momentum of unit masses is constant
    p = a["vel"].sum(axis=2)
    np.testing.assert_allclose(p[:, 0], p[:, -1], atol=1e-9)
    assert set(np.unique(a["charges"])) <= {-1.0, 1.0}


def test_flipping_all_charges_leaves_the_trajectory_unchanged(monkeypatch):
    """The symmetry behind the charge-flip augmentation: forces depend on q_i q_j only."""
    import geomdl.datasets.nbody as nb

    real = np.random.default_rng

    class FlippedCharges:  # the same generator, but every drawn charge negated
        def __init__(self, seed):
            self._rng = real(seed)

        def choice(self, *args, **kwargs):
            return -self._rng.choice(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self._rng, name)

    a = simulate_charged_systems(4, frames=3, sample_every=50, seed=3)
    monkeypatch.setattr(nb.np.random, "default_rng", FlippedCharges)
    b = simulate_charged_systems(4, frames=3, sample_every=50, seed=3)
    np.testing.assert_array_equal(b["charges"], -a["charges"])
    np.testing.assert_array_equal(a["loc"], b["loc"])
    np.testing.assert_array_equal(a["vel"], b["vel"])


def test_flip_charge_signs_flips_whole_systems_only():
    data = nbody_split("val", 40, None, progress=False)
    _, sc, _, batch, _ = nbody_inputs(data, torch.arange(40))
    out = flip_charge_signs(sc, batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[:, 1:], sc[:, 1:])  # speeds untouched
    ratio = (out[:, 0] / sc[:, 0]).reshape(40, 5)
    assert set(ratio.unique().tolist()) == {-1.0, 1.0}
    assert (ratio == ratio[:, :1]).all()  # one sign per system
    assert 5 < int((ratio[:, 0] < 0).sum()) < 35
    assert flip_charge_signs(sc[:0], batch[:0]).shape == (0, 2)


def test_split_cache_roundtrip_and_corrupt_file(tmp_path):
    data = nbody_split("val", 3, tmp_path, progress=False)
    assert data["pos"].shape == (3, 5, 3) and data["target"].shape == (3, 5, 3)
    again = nbody_split("val", 3, tmp_path, progress=False)
    torch.testing.assert_close(again["target"], data["target"])
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="corrupt n-body cache"):
        nbody_split("val", 3, tmp_path, progress=False)


def _tiny_model(num_ori=4):
    torch.manual_seed(0)
    return Ponita(2, out_scalars=0, out_vectors=1, in_vectors=1, hidden=8, layers=1, num_ori=num_ori, basis_dim=8,
                  widening=1, task_level="node", layer_scale=None)


def test_rotation_average_of_an_equivariant_predictor_is_the_predictor():
    class Linear(torch.nn.Module):  # x + 0.7 v: exactly equivariant
        def forward(self, pos, scalars, vel, batch=None):
            return None, 0.7 * vel

    data = nbody_split("val", 4, None, progress=False)
    pos, sc, vel, batch, _ = nbody_inputs(data, torch.arange(4))
    gen = torch.Generator().manual_seed(0)
    rots = [random_rotation_matrix("SO3", gen, torch.float64) for _ in range(3)]
    torch.testing.assert_close(predict_rotation_averaged(Linear(), pos, sc, vel, batch, rots), pos + 0.7 * vel[:, 0])


def test_rotation_average_changes_a_grid_model_and_is_seeded():
    model = _tiny_model(num_ori=4).double()
    data = {k: v.double() for k, v in nbody_split("val", 6, None, progress=False).items()}
    plain = evaluate_nbody(model, data)
    avg1, avg2 = evaluate_nbody(model, data, rotations=3, seed=5), evaluate_nbody(model, data, rotations=3, seed=5)
    assert avg1 == avg2 and avg1 != plain  # a 4-point grid is far from equivariant: averaging must act
    with pytest.raises(ValueError, match="rotations"):
        evaluate_nbody(model, data, rotations=-1)


def test_short_training_beats_the_untrained_model():
    train = nbody_split("train", 32, None, progress=False)
    model = _tiny_model()
    before = evaluate_nbody(model, train)
    out = train_nbody(model, train, train, epochs=6, batch_size=8, lr=3e-3, eval_every=3, log=None)
    assert len(out["history"]) == 6 and "val_mse" in out["history"][2]
    assert evaluate_nbody(out["model"], train) < before


def test_charge_flip_changes_training():
    train = nbody_split("train", 32, None, progress=False)
    plain = train_nbody(_tiny_model(), train, None, epochs=1, batch_size=8, flip_charges=False, log=None)
    flipped = train_nbody(_tiny_model(), train, None, epochs=1, batch_size=8, flip_charges=True, log=None)
    assert plain["history"][0]["train_mse"] != flipped["history"][0]["train_mse"]  # the augmentation acts


def test_ema_weights_are_validated_and_returned():
    train = nbody_split("train", 16, None, progress=False)
    raw = train_nbody(_tiny_model(), train, None, epochs=2, batch_size=8, lr=1e-2, log=None)["model"]
    averaged = train_nbody(_tiny_model(), train, None, epochs=2, batch_size=8, lr=1e-2, ema_decay=0.9, log=None)["model"]
    # same seed, same steps: only the returned weights differ; the EMA after 4 steps is not the raw model
    assert any(not torch.equal(a, b) for a, b in zip(raw.parameters(), averaged.parameters()))
    with pytest.raises(ValueError, match="ema_decay"):
        train_nbody(_tiny_model(), train, None, epochs=1, ema_decay=1.5, log=None)


def test_evaluating_an_empty_split_is_an_error_and_the_mode_is_restored():
    # an empty split ended in ZeroDivisionError; the model was left in eval mode
    model = _tiny_model().train()
    data = nbody_split("val", 2, None, progress=False)
    evaluate_nbody(model, data)
    assert model.training
    with pytest.raises(ValueError, match="data holds no systems"):
        evaluate_nbody(model, {k: v[:0] for k, v in data.items()})
