"""Demo stage ``molecular``: train a small PONITA potential on built-in EMT ethanol dynamics, save
it, then run a few steps of ASE molecular dynamics with :class:`geomdl.ase.Calculator`."""
from __future__ import annotations

import pathlib


def run(out_dir: pathlib.Path, quick: bool, seed: int = 0) -> dict:
    import ase.units
    import numpy as np
    from ase.md.verlet import VelocityVerlet
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from geomdl.ase import Calculator
    from geomdl.datasets.synthetic.molecules import SyntheticMolecules, build_system
    from geomdl.nn.ponita import PonitaPotential
    from geomdl.pipelines.molecular import evaluate_potential, frames_from_dataset, save_potential, train_potential

    n_train, n_test, epochs = (24, 8, 3) if quick else (120, 40, 30)
    train = frames_from_dataset(SyntheticMolecules("CH3CH2OH", frames_per_trajectory=n_train, split="train", seed=seed))
    test = frames_from_dataset(SyntheticMolecules("CH3CH2OH", frames_per_trajectory=n_test, split="test", seed=seed))
    model = PonitaPotential([1, 6, 8], hidden=16, layers=2, num_ori=6, basis_dim=16, widening=2, radius=4.0)
    before = evaluate_potential(model, test, batch_size=8)
    result = train_potential(model, train, epochs=epochs, batch_size=4, lr=5e-3, eval_every=epochs, seed=seed, log=None)
    after = evaluate_potential(result["model"], test, batch_size=8)
    ckpt = pathlib.Path(out_dir) / "ponita_ethanol_emt.pt"
    save_potential(result["model"], ckpt)

    atoms = build_system("CH3CH2OH")
    atoms.calc = Calculator(str(ckpt))
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.RandomState(seed))
    e0 = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    steps = 5 if quick else 50
    VelocityVerlet(atoms, timestep=0.25 * ase.units.fs).run(steps)
    e1 = atoms.get_potential_energy() + atoms.get_kinetic_energy()
    out = {"train_frames": len(train), "test_frames": len(test), "epochs": epochs,
           "forces_mae_before_meV_A": before["forces_mae"], "forces_mae_after_meV_A": after["forces_mae"],
           "energy_mae_after_meV": after["energy_mae"], "md_steps": steps, "md_total_energy_drift_meV": float(1000 * (e1 - e0)),
           "checkpoint": str(ckpt)}
    print(f"   PONITA on EMT ethanol: force MAE {before['forces_mae']:.0f} -> {after['forces_mae']:.0f} meV/A "
          f"({len(train)} frames, {epochs} epochs); ASE MD {steps} steps, total-energy drift {round(out['md_total_energy_drift_meV'], 2) + 0.0:+.2f} meV")  # (no '-0.00')
    return out
