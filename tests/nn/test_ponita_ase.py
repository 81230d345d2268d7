"""Molecular pipeline pieces around PONITA: frame reading (extxyz/ASE, property-based round trip),
checkpoints, the ASE calculator running MD, and a short training run."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.nn.ponita import PonitaPotential
from geomdl.pipelines.molecular import (collate, evaluate_potential, load_potential, prepare_potential, read_frames,
                                        save_potential, train_potential)

SMALL = dict(hidden=8, layers=2, basis_dim=8)


def _write_extxyz(path, frames):
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    images = []
    for z, pos, e, f in frames:
        atoms = Atoms(numbers=z, positions=pos)
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        images.append(atoms)
    ase.io.write(path, images, format="extxyz")


@settings(max_examples=10, deadline=None)
@given(n_frames=st.integers(1, 3), n_atoms=st.integers(1, 6), seed=st.integers(0, 1000))
def test_read_frames_round_trips_extxyz(tmp_path_factory, n_frames, n_atoms, seed):
    rng = np.random.default_rng(seed)
    frames = [(rng.choice([1, 6, 7, 8], n_atoms), rng.normal(size=(n_atoms, 3)), float(rng.normal() * 100),
               rng.normal(size=(n_atoms, 3))) for _ in range(n_frames)]
    path = tmp_path_factory.mktemp("xyz") / "f.extxyz"
    _write_extxyz(path, frames)
    got = read_frames(path)
    assert len(got) == n_frames
    for g, (z, pos, e, f) in zip(got, frames):
        assert g.z.tolist() == list(z)
        assert np.allclose(g.pos.numpy(), pos, atol=1e-6) and np.allclose(g.forces.numpy(), f, atol=1e-6)
        assert abs(g.energy - e) < 1e-6 * max(1, abs(e))


def test_read_frames_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.xyz"
    bad.write_text("3\nnot a comment line\nC 0 0\n")
    with pytest.raises(ValueError, match="broken.xyz"):
        read_frames(bad)
    with pytest.raises(FileNotFoundError, match="missing.xyz"):
        read_frames(tmp_path / "missing.xyz")
    noenergy = tmp_path / "noenergy.xyz"
    noenergy.write_text("1\nProperties=species:S:1:pos:R:3\nH 0 0 0\n")
    with pytest.raises(ValueError, match="noenergy.xyz.*no energy"):
        read_frames(noenergy)


def test_read_3bpa_sample(shared_data):
    frames = read_frames(shared_data / "3bpa" / "dataset_3BPA" / "train_300K.xyz", index=":5")
    assert len(frames) == 5 and frames[0].z.numel() == 27 and frames[0].forces.shape == (27, 3)
    assert -17700 < frames[0].energy < -17600  # eV, C12H12N2O


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = PonitaPotential([1, 6, 8], num_ori=4, grid="repulsion", grid_seed=3, **SMALL)
    model.energy_shift.copy_(torch.tensor([-13.6, -1029.5, -2041.8], dtype=torch.float64))
    save_potential(model, tmp_path / "p.pt")
    again = load_potential(tmp_path / "p.pt")
    z, pos = torch.tensor([6, 1, 8]), torch.randn(3, 3)
    assert torch.allclose(again(z, pos)["forces"], model.eval()(z, pos)["forces"])
    assert torch.equal(again.net.grid, model.net.grid)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_potential(tmp_path / "junk.pt")


def test_ase_calculator_runs_md_and_conserves_energy(tmp_path):
    import ase.units
    from ase.build import molecule
    from ase.md.verlet import VelocityVerlet

    import geomdl.ase

    model = PonitaPotential([1, 6, 8], num_ori=0, radius=4.0, **SMALL)
    save_potential(model, tmp_path / "p.pt")
    atoms = molecule("CH3OH")
    atoms.calc = geomdl.ase.Calculator(str(tmp_path / "p.pt"))
    ref = model.double().eval()(torch.tensor(atoms.numbers), torch.tensor(atoms.positions))
    assert np.allclose(atoms.get_forces(), ref["forces"].detach().numpy(), atol=1e-10)
    atoms.set_velocities(np.random.default_rng(0).normal(scale=0.01, size=(len(atoms), 3)))
    e0 = atoms.get_total_energy()
    VelocityVerlet(atoms, timestep=0.1 * ase.units.fs).run(5)
    assert abs(atoms.get_total_energy() - e0) < 1e-4
    assert not np.allclose(atoms.positions, molecule("CH3OH").positions)


def test_short_training_fits_shifts_and_reduces_the_loss():
    gen = torch.Generator().manual_seed(0)
    from geomdl.pipelines.molecular import Frame

    # a toy potential: harmonic bonds to the centroid, E = sum k |x - c|^2 + shifts
    frames = []
    for _ in range(8):
        pos = torch.randn(4, 3, generator=gen, dtype=torch.float64)
        c = pos.mean(0)
        e = float(0.5 * (pos - c).pow(2).sum()) - 13.6 * 3 - 1029.5
        frames.append(Frame(torch.tensor([1, 1, 1, 6]), pos, e, -(pos - c)))
    model = PonitaPotential([1, 6], num_ori=0, **SMALL)
    prepare_potential(model, frames)
    b = collate(frames)
    assert abs(float(model.energy_shift @ torch.tensor([3.0, 1.0], dtype=torch.float64)) - float(b.energy.mean())) < 2.0
    result = train_potential(model, frames, frames[:4], epochs=4, batch_size=4, lr=1e-2, eval_every=2, log=None)
    losses = [h["loss"] for h in result["history"]]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    metrics = evaluate_potential(result["model"], frames[:4])
    assert set(metrics) == {"energy_mae", "energy_rmse", "forces_mae", "forces_rmse"}
    # the returned (EMA) model is an ordinary trainable module: a warm restart trains it further
    assert all(p.requires_grad for p in result["model"].parameters())
    again = train_potential(result["model"], frames, epochs=1, batch_size=4, lr=1e-3, log=None)
    assert np.isfinite(again["history"][0]["loss"])


def test_load_potential_reads_engine_checkpoints(tmp_path):
    from geomdl.models.ponita import PonitaEnergy

    kwargs = {"atomic_numbers": [1, 6], "energy_shifts": [-13.6, -1029.5], "energy_scale": 0.7, "num_ori": 0, **SMALL}
    model = PonitaEnergy(**kwargs)
    torch.save({"model_name": "ponita_energy", "model_kwargs": kwargs, "model": model.state_dict(),
                "ema": {"decay": 0.99, "module": model.state_dict()}}, tmp_path / "best.pt")
    loaded = load_potential(tmp_path / "best.pt")
    z, pos = torch.tensor([6, 1]), torch.randn(2, 3)
    assert torch.allclose(loaded(z, pos)["energy"], model.eval()(z, pos)["energy"])
    assert float(loaded.energy_scale) == pytest.approx(0.7)


def test_ase_calculator_leaves_the_callers_model_unchanged():
    """The calculator casts its model to float64 and eval mode: on its own copy, not on the caller's module
    (a float32 model in training, say, would otherwise go on training in float64 without dropout)."""
    from ase.build import molecule

    import geomdl.ase

    model = PonitaPotential([1, 6, 8], num_ori=0, radius=4.0, **SMALL).train()
    calc = geomdl.ase.Calculator(model)
    assert next(model.parameters()).dtype == torch.float32 and model.training
    atoms = molecule("CH3OH")
    atoms.calc = calc
    ref = PonitaPotential([1, 6, 8], num_ori=0, radius=4.0, **SMALL)
    ref.load_state_dict(model.state_dict())
    ref = ref.double().eval()(torch.tensor(atoms.numbers), torch.tensor(atoms.positions))
    assert np.allclose(atoms.get_forces(), ref["forces"].detach().numpy(), atol=1e-10)


def test_ase_calculator_wraps_molecular_models():
    """EGNN / PaiNN / NequIP energy models: energy and forces from their ``energy_and_forces`` (they have no
    ``create_graph`` argument in forward); a model that does not predict an energy is refused by name."""
    import copy

    from ase.build import molecule

    import geomdl.ase
    from geomdl.models.painn import PaiNN

    torch.manual_seed(0)
    model = PaiNN(1, 8, 2, cutoff=3.0, atomref=torch.randn(100))
    atoms = molecule("CH3OH")
    atoms.calc = geomdl.ase.Calculator(model)
    e, f = copy.deepcopy(model).double().energy_and_forces(torch.tensor(atoms.numbers), torch.tensor(atoms.positions))
    assert atoms.get_potential_energy() == pytest.approx(float(e[0]), abs=1e-10)
    assert np.allclose(atoms.get_forces(), f.detach().numpy(), atol=1e-10)
    with pytest.raises(ValueError, match="model: .*task='graph', out_channels=1"):
        geomdl.ase.Calculator(PaiNN(1, 8, 1, cutoff=3.0, task="node"))


def test_ase_calculator_no_atoms_and_bad_rotations():
    """No atoms: energy 0 and forces [0, 3] (was an IndexError); ``rotations`` must be an int, not a bool."""
    from ase import Atoms

    import geomdl.ase

    model = PonitaPotential([1, 6, 8], num_ori=0, radius=4.0, **SMALL)
    atoms = Atoms()
    atoms.calc = geomdl.ase.Calculator(model, rotations=2)
    assert atoms.get_potential_energy() == 0.0 and atoms.get_forces().shape == (0, 3)
    with pytest.raises(ValueError, match="rotations must be an int >= 0"):
        geomdl.ase.Calculator(model, rotations=True)


def test_geomdl_ase_without_ase_names_the_extra(monkeypatch):
    """Without ASE, ``import geomdl.ase`` said only "No module named 'ase'"."""
    import sys

    for name in [n for n in sys.modules if n == "ase" or n.startswith("ase.") or n in ("geomdl.ase", "geomdl.ase_calculator")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ase", None)  # import ase -> ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match=r"geomdl.ase needs ASE: pip install 'geomdl\[data\]'"):
        import geomdl.ase  # noqa: F401


def test_evaluating_no_frames_is_an_error():
    # torch.cat of an empty list ("expected a non-empty list of Tensors")
    with pytest.raises(ValueError, match="frames is empty"):
        evaluate_potential(PonitaPotential([1, 6, 8], num_ori=0, radius=4.0, **SMALL), [])
