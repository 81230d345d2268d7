"""Arguments of the molecular and ModelNet datasets are checked before any file is read or processed, and
their errors name the argument (and its choices)."""
import ase
import ase.db
import numpy as np
import pytest

from geomdl.datasets.modelnet import ModelNet
from geomdl.datasets.molecular import MD17, ASEDatabase, ExtXYZ


def _md17(path):
    rng = np.random.default_rng(0)
    np.savez(path, R=rng.normal(size=(6, 2, 3)), E=rng.normal(size=(6, 1)), F=rng.normal(size=(6, 2, 3)), z=np.array([1, 8]))


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """One file per dataset class, whose processing fails the test: a bad split must be reported first."""
    _md17(tmp_path / "md17_x.npz")
    (tmp_path / "frames.xyz").write_text("1\nenergy=1.0 Properties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\n")
    with ase.db.connect(str(tmp_path / "m.db")) as db:
        db.write(ase.Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]), data={"energy": 1.0})
    for cls in (MD17, ExtXYZ, ASEDatabase):
        monkeypatch.setattr(cls, "process", lambda self: pytest.fail("processed before the split arguments were checked"))
    return {"md17": lambda **kw: MD17(path=tmp_path / "md17_x.npz", processed_dir=tmp_path / "p", **kw),
            "extxyz": lambda **kw: ExtXYZ(tmp_path / "frames.xyz", processed_dir=tmp_path / "p", **kw),
            "ase_db": lambda **kw: ASEDatabase(tmp_path / "m.db", processed_dir=tmp_path / "p", **kw)}


@pytest.mark.parametrize("name", ["md17", "extxyz", "ase_db"])
@pytest.mark.parametrize("kwargs, error, match", [
    ({"split": "trian"}, ValueError, "split must be 'all', 'train', 'val' or 'test', got 'trian'"),
    ({"split_seed": 1.5}, TypeError, "split_seed must be an int, got 1.5"),
    ({"split_sizes": "0.8"}, TypeError, "split_sizes must be a sequence"),
    ({"split_sizes": (0.8, -0.1, 0.1)}, ValueError, "fractional sizes must be >= 0"),
    ({"split_sizes": (1, 2, 3, 4)}, ValueError, "split_sizes gives 4 sizes"),
    ({"split": "test", "split_sizes": (0.5, 0.5)}, ValueError, "split='test' needs a size in split_sizes"),
])
def test_split_arguments_fail_before_processing(sources, tmp_path, name, kwargs, error, match):
    with pytest.raises(error, match=match):
        sources[name](**kwargs)
    assert not (tmp_path / "p").exists()


def test_split_sizes_that_the_dataset_cannot_fill_are_still_reported(tmp_path):
    _md17(tmp_path / "md17_x.npz")
    with pytest.raises(ValueError, match=r"split sizes \[5, 5, 5\] need 15 items but the dataset has 6"):
        MD17(path=tmp_path / "md17_x.npz", split_sizes=(5, 5, 5), processed_dir=tmp_path / "p")
    assert len(MD17(path=tmp_path / "md17_x.npz", split="val", split_sizes=(3, 2, None), processed_dir=tmp_path / "p")) == 2


@pytest.mark.parametrize("molecule", ["*", "eth*", "a/b", "[e]thanol", "", 3])
def test_md17_molecule_must_be_a_name(tmp_path, molecule):
    # "*" gave pathlib's "Invalid pattern: '**' can only be an entire path component"
    with pytest.raises(ValueError, match=r"molecule must be a molecule name such as 'ethanol'"):
        MD17(tmp_path, molecule, processed_dir=tmp_path / "p")


@pytest.mark.parametrize("units, match", [
    ("eV", r"units must be a dict \{property: unit\} with properties from 'energy', 'forces', 'pos' .*got 'eV'"),
    ({"energy": 1}, r"units must be a dict"),
    ({"energy": "eV", "force": "eV/A"}, r"units: unknown property 'force'; choose from 'energy', 'forces', 'pos'"),
])
def test_extxyz_units_name_the_argument_and_the_choices(tmp_path, units, match):
    # units="eV" gave dict()'s "dictionary update sequence element #0 has length 1; 2 is required"
    (tmp_path / "frames.xyz").write_text("1\nenergy=1.0 Properties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=match):
        ExtXYZ(tmp_path / "frames.xyz", units=units, processed_dir=tmp_path / "p")
    ds = ExtXYZ(tmp_path / "frames.xyz", units={"energy": "kcal/mol"}, processed_dir=tmp_path / "p")
    assert ds.units == {"energy": "kcal/mol"} and len(ds) == 1


def test_ase_database_units_name_the_argument(tmp_path):
    with ase.db.connect(str(tmp_path / "m.db")) as db:
        db.write(ase.Atoms("H"), data={"energy": 1.0})
    with pytest.raises(ValueError, match=r"units must be a dict \{property: unit\} \(e.g."):
        ASEDatabase(tmp_path / "m.db", units="eV", processed_dir=tmp_path / "p")
    assert ASEDatabase(tmp_path / "m.db", units={"homo": "Ha"}, processed_dir=tmp_path / "p").units["homo"] == "Ha"


@pytest.mark.parametrize("normalize", ["no", "False", 2, None])
def test_modelnet_normalize_must_be_a_bool(tmp_path, normalize):
    # bool("no") was True: the clouds were normalized although the caller meant no
    with pytest.raises(ValueError, match=f"normalize must be a bool \\(True or False\\), got {normalize!r}"):
        ModelNet(tmp_path, normalize=normalize, processed_dir=tmp_path / "p")
    for ok in (np.bool_(False), 0, 1):  # a bool (NumPy's, or 0 / 1) passes on to the (missing) files
        with pytest.raises(FileNotFoundError):
            ModelNet(tmp_path, normalize=ok, processed_dir=tmp_path / "p")


@pytest.mark.parametrize("value", ["no", None, 2])
def test_require_labels_must_be_a_bool(tmp_path, value):
    frame = "1\nenergy=-1.5 Properties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\n"
    (tmp_path / "f.xyz").write_text(frame)
    with pytest.raises(ValueError, match="require_labels must be a bool"):
        ExtXYZ(tmp_path / "f.xyz", require_labels=value, processed_dir=tmp_path / "p")
    assert len(ExtXYZ(tmp_path / "f.xyz", require_labels=np.bool_(False), processed_dir=tmp_path / "p")) == 1
