"""Built-in data: determinism, classes, rigid parts, registration pairs, EMT trajectories, registry."""
import numpy as np
import pytest
import torch
from torch_geometric.loader import DataLoader

from geomdl.datasets import get_dataset
from geomdl.datasets.functional import apply_rigid, overlap_ratio
from geomdl.datasets.synthetic import (
    PART_CLASSES,
    SHAPE_CLASSES,
    SyntheticMolecules,
    SyntheticParts,
    SyntheticRegistrationPairs,
    SyntheticShapes,
)


def test_shapes_classes_determinism_and_normalisation():
    ds = SyntheticShapes(num_per_class=1, num_points=256, seed=3)
    assert len(SHAPE_CLASSES) >= 10 and len(ds) == len(SHAPE_CLASSES)
    assert [int(d.y) for d in ds] == list(range(len(SHAPE_CLASSES)))
    again = SyntheticShapes(num_per_class=1, num_points=256, seed=3)
    other = SyntheticShapes(num_per_class=1, num_points=256, seed=4)
    test = SyntheticShapes(num_per_class=1, num_points=256, seed=3, split="test")
    for k in range(len(ds)):
        assert torch.equal(ds[k].pos, again[k].pos)
        assert not torch.equal(ds[k].pos, other[k].pos) and not torch.equal(ds[k].pos, test[k].pos)
        assert float(ds[k].pos.norm(dim=1).max()) == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(ds[k].normal.norm(dim=1), torch.ones(256))
    uniform = SyntheticShapes(num_per_class=1, num_points=4000, seed=0, noise=0.0, nonuniform=0.0, classes=["sphere"])[0].pos
    skewed = SyntheticShapes(num_per_class=1, num_points=4000, seed=0, noise=0.0, nonuniform=4.0, classes=["sphere"])[0].pos
    assert float(uniform.mean(0).norm()) < 0.05 < float((skewed - skewed.mean(0)).norm(dim=1).std() - uniform.norm(dim=1).std()) + 0.1
    rotated = SyntheticShapes(num_per_class=1, num_points=256, seed=3, rotation="SO3")
    assert not torch.allclose(rotated[0].pos, ds[0].pos)
    with pytest.raises(ValueError, match="classes must be a non-empty subset"):
        SyntheticShapes(classes=["blob"])


def test_parts_rigid_motions_labels_and_batching():
    ds = SyntheticParts(num_samples=6, num_points=800, seed=1, min_points_per_part=20)
    kinds = set()
    for d in ds:
        moved = torch.einsum("nij,nj->ni", d.part_rot[d.part].double(), d.pos_rest.double()) + d.part_trans[d.part]
        torch.testing.assert_close(moved.float(), d.pos, atol=1e-5, rtol=0)
        rot = d.part_rot.double()
        torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand_as(rot), atol=1e-5, rtol=0)
        assert torch.bincount(d.part).min() >= 20 and d.pos.shape == (800, 3)
        assert torch.equal(d.y, d.part_label[d.part]) and int(d.y.max()) < len(PART_CLASSES)
        kinds.add(int(d.category))
    assert kinds == {0, 1, 2}
    assert any(not torch.allclose(d.pos, d.pos_rest) for d in ds)  # parts actually move
    batch = next(iter(DataLoader(ds, batch_size=3)))
    sizes = [int(ds[k].part_rot.shape[0]) for k in range(3)]
    assert int(batch.part.max()) == sum(sizes) - 1 and batch.part_rot.shape[0] == sum(sizes)
    torch.testing.assert_close(torch.einsum("nij,nj->ni", batch.part_rot[batch.part], batch.pos_rest) + batch.part_trans[batch.part],
                               batch.pos, atol=1e-5, rtol=0)
    assert torch.equal(SyntheticParts(num_samples=2, num_points=800, seed=1, min_points_per_part=20)[1].pos, ds[1].pos)


def test_registration_pairs_known_pose():
    ds = SyntheticRegistrationPairs(num_samples=4, num_points=400, seed=2, noise=0.0, outlier_ratio=0.1)
    for d in ds:
        corr = d.correspondences
        assert corr.shape[0] == 2 and corr.shape[1] > 20
        residual = (apply_rigid(d.pos_src, d.transform[0])[corr[1]] - d.pos_ref[corr[0]]).norm(dim=1)
        assert float(residual.max()) <= 0.05 + 1e-5  # overlap_radius, noise 0
        assert 0.05 < float(d.overlap) < 1.0
        assert int(d.outlier_src.sum()) == 40 and int(d.outlier_ref.sum()) == 40
        # outliers (10 % on each side) lower the observed overlap a little below the clean one
        assert overlap_ratio(d.pos_ref, d.pos_src, d.transform[0], 0.05) >= float(d.overlap) * 0.7
        rot = d.transform[0, :3, :3].double()
        torch.testing.assert_close(rot @ rot.T, torch.eye(3, dtype=torch.float64), atol=1e-5, rtol=0)
    small = SyntheticRegistrationPairs(num_samples=4, num_points=400, seed=2, view_angle=0.0, keep_ratio=1.0)
    assert min(float(d.overlap) for d in small) > max(float(d.overlap) for d in SyntheticRegistrationPairs(
        num_samples=4, num_points=400, seed=2, view_angle=150.0, keep_ratio=0.5))
    batch = next(iter(DataLoader(ds, batch_size=2, follow_batch=["pos_ref", "pos_src"])))
    assert batch.transform.shape == (2, 4, 4) and int(batch.correspondences[1].max()) >= 400


def test_emt_molecules_energies_and_forces():
    from ase import Atoms
    from ase.calculators.emt import EMT

    ds = SyntheticMolecules(molecules=["H2O", "CH4"], frames_per_trajectory=3, seed=0)
    assert len(ds) == 6 and ds[0].z.tolist() == [8, 1, 1] and ds[3].z.tolist() == [6, 1, 1, 1, 1]
    again = SyntheticMolecules(molecules=["H2O", "CH4"], frames_per_trajectory=3, seed=0)
    assert all(torch.equal(a.pos, b.pos) and float(a.energy) == float(b.energy) for a, b in zip(ds, again))
    assert not torch.equal(ds[0].pos, ds[1].pos)  # the trajectory moves
    d = ds[4]
    atoms = Atoms(numbers=d.z.numpy(), positions=d.pos.double().numpy())
    atoms.calc = EMT()
    assert atoms.get_potential_energy() == pytest.approx(float(d.energy), abs=1e-4)
    np.testing.assert_allclose(atoms.get_forces(), d.forces.numpy(), atol=1e-3)
    # forces are -dE/dx: central finite difference on one coordinate
    h, pos = 1e-4, atoms.positions.copy()
    atoms.positions = pos + np.eye(len(atoms) * 3)[4].reshape(-1, 3) * h
    e_plus = atoms.get_potential_energy()
    atoms.positions = pos - np.eye(len(atoms) * 3)[4].reshape(-1, 3) * h
    assert -(e_plus - atoms.get_potential_energy()) / (2 * h) == pytest.approx(float(d.forces.reshape(-1)[4]), abs=2e-3)
    with pytest.raises(ValueError, match="EMT does not support"):
        SyntheticMolecules(molecules=["SiH4"])


def test_registry():
    assert len(get_dataset("shapes", num_per_class=1, num_points=64)) == len(SHAPE_CLASSES)
    assert type(get_dataset("Synthetic-Parts", num_samples=1, num_points=400)).__name__ == "SyntheticParts"
    with pytest.raises(ValueError, match="unknown dataset 'nope'; choose from"):
        get_dataset("nope")
    with pytest.raises(ValueError, match="takes no root"):
        get_dataset("synthetic_shapes", "/tmp")
    with pytest.raises(ValueError, match="needs the file to read"):
        get_dataset("extxyz")


def test_registry_real(shared_data, tmp_path):
    ds = get_dataset("modelnet10", shared_data / "modelnet10", num_points=64, processed_dir=tmp_path)
    assert ds.name == "10" and len(ds) == 5
    assert len(get_dataset("extxyz", shared_data / "3bpa/dataset_3BPA/iso_atoms.xyz", require_labels=False, processed_dir=tmp_path)) == 4
    assert len(get_dataset("3DMatch", shared_data / "3dmatch", missing="skip", voxel_size=0.05, processed_dir=tmp_path)) == 1
