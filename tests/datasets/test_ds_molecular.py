"""QM9 (CSV subset, raw xyz), MD17/rMD17 npz (written here), 3BPA / ethanol extxyz, ASE databases."""
import ase
import ase.db
import numpy as np
import pytest
import torch

from geomdl.datasets.molecular import KCAL_MOL_TO_EV, MD17, ASEDatabase, ExtXYZ, ThreeBPA, atomic_energies
from geomdl.datasets.qm9 import ATOMREF, HARTREE_TO_EV, QM9, TARGET_NAMES, read_qm9_csv

DB_KEYS = {"mu": "dipole_moment", "alpha": "isotropic_polarizability", "homo": "homo", "lumo": "lumo", "gap": "gap",
           "r2": "electronic_spatial_extent", "zpve": "zpve", "U0": "energy_U0", "U": "energy_U", "H": "enthalpy_H",
           "G": "free_energy", "cv": "heat_capacity", "A": "rotational_constant_A", "B": "rotational_constant_B",
           "C": "rotational_constant_C"}


@pytest.fixture(scope="module")
def qm9_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("qm9cache")


def test_qm9_csv_subset_against_readme_and_db(shared_data, qm9_cache):
    ds = QM9(shared_data / "qm9", processed_dir=qm9_cache)
    assert ds.source == "csv" and len(ds) == 2000  # README: 2,000 molecules, QM9 index 1..2053
    assert len(TARGET_NAMES) == 19 and ds[0].y.shape == (1, 19)
    assert int(ds[0].idx) == 1 and int(ds[len(ds) - 1].idx) == 2053
    ch4 = ds[0]
    assert ch4.smiles == "C" and ch4.z.tolist() == [6, 1, 1, 1, 1] and ch4.pos.shape == (5, 3)
    assert float(ch4.y[0, 7]) == pytest.approx(-40.47893, abs=1e-4)  # U0 of CH4, Ha
    u0_atom = -40.47893 - (ATOMREF[6][0] + 4 * ATOMREF[1][0])
    assert float(ch4.y[0, 12]) == pytest.approx(u0_atom, abs=1e-5)
    # the SchNetPack test db holds the first QM9 molecules with units in its metadata: same values
    db = ase.db.connect(str(shared_data / "qm9/test_qm9.db"))
    assert db.metadata["_property_unit_dict"]["energy_U0"] == "Ha" == ds.units["U0"]
    for k, row in enumerate(db.select(limit=5)):
        mol = ds[k]
        assert mol.z.tolist() == row.numbers.tolist()
        for name, key in DB_KEYS.items():
            assert float(mol.y[0, TARGET_NAMES.index(name)]) == pytest.approx(float(row.data[key][0]), rel=1e-5, abs=1e-4), name
    again = QM9(shared_data / "qm9", "train", processed_dir=qm9_cache)
    assert again.from_cache and len(again) == 1600
    ev = QM9(shared_data / "qm9", energy_unit="eV", processed_dir=qm9_cache)
    assert not ev.from_cache and float(ev[0].y[0, 7]) == pytest.approx(-40.47893 * HARTREE_TO_EV, rel=1e-6)
    assert float(ev[0].y[0, 0]) == float(ch4.y[0, 0]) and ev.units["U0"] == "eV"


def test_qm9_splits_are_disjoint_and_seeded(shared_data, qm9_cache):
    parts = {s: QM9(shared_data / "qm9", s, processed_dir=qm9_cache, split_sizes=(1500, 250, None)) for s in ("train", "val", "test")}
    ids = {s: {int(d.idx) for d in ds} for s, ds in parts.items()}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [1500, 250, 250]
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    other = QM9(shared_data / "qm9", "val", processed_dir=qm9_cache, split_sizes=(1500, 250, None), split_seed=1)
    assert {int(d.idx) for d in other} != ids["val"]


def test_qm9_malformed_csv_row(shared_data, tmp_path):
    lines = (shared_data / "qm9/qm9_part1.csv").read_text().splitlines()[:6]
    lines[3] = lines[3].replace(",157.7", ",abc", 1) if ",157.7" in lines[3] else lines[3][:-30]
    (tmp_path / "qm9_part1.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="qm9_part1.csv:4: (expected 25 fields|malformed row)"):
        QM9(tmp_path, processed_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    good = read_qm9_csv(shared_data / "qm9/qm9_part1.csv")
    assert len(good) == 2000 and good[2]["smiles"] == "O"


def test_qm9_csv_non_finite_target_names_the_file_and_line(tmp_path):
    """Regression: a 'nan' or 'inf' in a target column parsed as a float and became a NaN/infinite QM9 target."""
    from geomdl.datasets.qm9 import _CSV_COLUMNS

    header = ["Index", "SMILES", "N_atoms", "Elements", "XYZ_Ang", *_CSV_COLUMNS.values()]
    row = ["1", "C", "1", "['C']", "[[0.0,0.0,0.0]]", *["0.5"] * len(_CSV_COLUMNS)]
    bad = list(row)
    bad[header.index("HOMO_au")] = "nan"
    path = tmp_path / "qm9_part1.csv"
    path.write_text("\n".join(",".join(f'"{v}"' for v in r) for r in (header, row, bad)) + "\n")
    with pytest.raises(ValueError, match=r"qm9_part1\.csv:3: columns \['HOMO_au'\] are NaN or infinite"):
        read_qm9_csv(path)


def test_qm9_raw_xyz_source(tmp_path):
    text = ("5\ngdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t"
            "-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\n"
            "C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689\n"
            "H\t 0.002150416\t-0.0060313176\t 0.0019761204\t 0.133921\n"
            "H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922\n"
            "H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923\n"
            "H\t-0.5238136345\t 1.4379326443\t 0.9063972942\t 0.133923\n"
            "1341.307\t1341.3284\n C\tC\t\nInChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n")
    (tmp_path / "dsgdb9nsd_000001.xyz").write_text(text)
    (tmp_path / "dsgdb9nsd_000002.xyz").write_text(text.replace("gdb 1", "gdb 2"))
    (tmp_path / "uncharacterized.txt").write_text("header\n  2  bad\n")
    ds = QM9(tmp_path, processed_dir=tmp_path / "cache", split_sizes=(1.0,))
    assert ds.source == "xyz" and len(ds) == 1
    assert float(ds[0].y[0, 7]) == pytest.approx(-40.47893, abs=1e-4) and float(ds[0].y[0, 16]) == pytest.approx(157.7118, rel=1e-6)


def _md17_npz(path, rmd17=False, drop=None, frames=4, atoms=3):
    rng = np.random.default_rng(0)
    arrays = {"R": rng.normal(size=(frames, atoms, 3)), "E": rng.normal(size=(frames, 1)) - 1000,
              "F": rng.normal(size=(frames, atoms, 3)), "z": np.array([6, 1, 8][:atoms])}
    if rmd17:
        arrays = {"coords": arrays["R"], "energies": arrays["E"][:, 0], "forces": arrays["F"], "nuclear_charges": arrays["z"]}
    arrays.pop(drop, None)
    np.savez(path, **arrays)
    return arrays


@pytest.mark.parametrize("rmd17", [False, True])
def test_md17_npz_both_conventions(tmp_path, rmd17):
    arr = _md17_npz(tmp_path / ("rmd17_toy.npz" if rmd17 else "md17_toy.npz"), rmd17=rmd17)
    ds = MD17(tmp_path, "toy", processed_dir=tmp_path / "c", split_sizes=(2, 1, 1))
    full = MD17(tmp_path, "toy", processed_dir=tmp_path / "c")
    assert len(full) == 4 and len(ds) == 4 and MD17(tmp_path, "toy", split="train", split_sizes=(2, 1, 1), processed_dir=tmp_path / "c").__len__() == 2
    pos, energy, forces = (arr["coords"], arr["energies"], arr["forces"]) if rmd17 else (arr["R"], arr["E"][:, 0], arr["F"])
    np.testing.assert_allclose(full[1].pos.numpy(), pos[1], rtol=1e-6)
    assert float(full[1].energy) == pytest.approx(energy[1]) and full.units["energy"] == "kcal/mol"
    np.testing.assert_allclose(full[1].forces.numpy(), forces[1], rtol=1e-6)
    ev = MD17(tmp_path, "toy", energy_unit="eV", processed_dir=tmp_path / "c")
    assert float(ev[1].energy) == pytest.approx(energy[1] * KCAL_MOL_TO_EV)


def test_md17_missing_key_and_bad_shapes(tmp_path):
    _md17_npz(tmp_path / "md17_bad.npz", drop="F")
    with pytest.raises(ValueError, match="md17_bad.npz: missing keys: expected MD17"):
        MD17(path=tmp_path / "md17_bad.npz", processed_dir=tmp_path / "c")
    np.savez(tmp_path / "md17_shape.npz", R=np.zeros((2, 3, 3)), E=np.zeros((3, 1)), F=np.zeros((2, 3, 3)), z=np.ones(3))
    with pytest.raises(ValueError, match="md17_shape.npz: inconsistent shapes"):
        MD17(path=tmp_path / "md17_shape.npz", processed_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
    with pytest.raises(ValueError, match="exactly one of molecule"):
        MD17(tmp_path)


def test_3bpa_and_ethanol_extxyz(shared_data, tmp_path):
    bpa = ThreeBPA(shared_data / "3bpa", processed_dir=tmp_path)
    assert len(bpa) == 500 and bpa.units["energy"] == "eV"  # README: 500 frames, C12H12N2O, 27 atoms
    counts = torch.bincount(bpa[0].z, minlength=9)
    assert bpa[0].z.numel() == 27 and (counts[6], counts[1], counts[7], counts[8]) == (12, 12, 2, 1)
    assert bpa[0].forces.shape == (27, 3) and float(bpa[0].energy) == pytest.approx(-17660.461737861464)
    iso = atomic_energies(shared_data / "3bpa/dataset_3BPA/iso_atoms.xyz")
    assert sorted(iso) == [1, 6, 7, 8] and iso[1] == pytest.approx(-13.587222780835477)
    eth = ExtXYZ(shared_data / "rmd17_ethanol_botnet/dataset_ethanol/train.xyz", processed_dir=tmp_path)
    assert len(eth) == 1000 and eth[0].z.numel() == 9 and sorted(eth[0].z.tolist()) == [1] * 6 + [6, 6, 8]
    assert float(eth[0].energy) == pytest.approx(-4209.4657843064815)


def test_ase_databases(shared_data, tmp_path):
    eth = ASEDatabase(shared_data / "md17/test_ethanol.db", units={"energy": "kcal/mol"}, processed_dir=tmp_path)
    assert len(eth) == 20 and eth[0].forces.shape == (9, 3) and eth.units["energy"] == "kcal/mol"
    assert -97300 < float(eth[0].energy) < -97100  # README: about -97,195 kcal/mol
    qm9 = ASEDatabase(shared_data / "qm9/test_qm9.db", targets=["energy_U0", "homo"], processed_dir=tmp_path)
    assert len(qm9) == 20 and qm9[0].y.shape == (1, 2) and "energy" not in qm9[0]
    assert qm9.units["homo"] == "Ha" and float(qm9[0].y[0, 0]) == pytest.approx(-40.47893, abs=1e-4)
    with pytest.raises(ValueError, match="test_qm9.db: row 1 has no scalar property 'nope'"):
        ASEDatabase(shared_data / "qm9/test_qm9.db", targets=["nope"], processed_dir=tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 10)
    with pytest.raises(ValueError, match="junk.db: not a readable ASE database"):
        ASEDatabase(tmp_path / "junk.db", processed_dir=tmp_path)


def test_qm9_csv_with_a_byte_order_mark(shared_data, tmp_path):
    lines = (shared_data / "qm9/qm9_part1.csv").read_text().splitlines()[:6]
    (tmp_path / "qm9_part1.csv").write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    rows = read_qm9_csv(tmp_path / "qm9_part1.csv")  # was "not a qm9pack CSV (missing columns ['Index'])"
    assert len(rows) == 5 and rows[2]["smiles"] == "O"


@pytest.mark.parametrize("row, kwargs, message", [
    ({"data": {"energy": np.array([1.0, 2.0])}}, {}, r"'energy' must be one real number, got \[1.0, 2.0\]"),
    ({"myE": "abc"}, {"energy_key": "myE"}, r"'myE' must be one real number, got 'abc'"),
    ({"data": {"energy": 1.0, "forces": np.arange(6.0).reshape(3, 2)}}, {}, r"'forces' must be real numbers of shape \[2, 3\]"),
    ({"data": {"energy": 1.0, "forces": np.arange(6.0)}}, {}, r"'forces' must be real numbers of shape \[2, 3\]"),
    ({"flag": True}, {"targets": ["flag"]}, r"'flag' must be one real number, got True"),
    ({"data": {"t": np.array([np.nan])}}, {"targets": ["t"]}, r"'t' is nan \(NaN or infinite\)"),
])
def test_ase_database_labels_that_are_not_real_numbers_name_the_file_and_row(tmp_path, row, kwargs, message):
    """Regression: an energy vector gave its first value, forces [3, N] or [3N] were reshaped to [N, 3], a boolean
    target became 1.0 and a NaN target a NaN label, silently; a string failed without naming the file."""
    path = tmp_path / "labels.db"
    data = row.pop("data", {})
    ase.db.connect(str(path)).write(ase.Atoms("HO", positions=[[0, 0, 0], [1, 0, 0]]), data=data, **row)
    with pytest.raises(ValueError, match=rf"labels\.db: row 1: {message}"):
        ASEDatabase(path, processed_dir=tmp_path / "cache", **kwargs)


def test_md17_name_matching_several_files_is_an_error_listing_them(tmp_path):
    # "<m>*.npz" took the first match in sorted order without a word
    _md17_npz(tmp_path / "toy2017.npz")
    _md17_npz(tmp_path / "toy_dft.npz")
    with pytest.raises(ValueError, match=r"several npz files .*\(toy2017.npz, toy_dft.npz\); give the file as path="):
        MD17(tmp_path, "toy", processed_dir=tmp_path / "c")
    (tmp_path / "toy_dft.npz").unlink()
    assert len(MD17(tmp_path, "toy", processed_dir=tmp_path / "c")) == 4  # one match: that file


def test_md17_exact_npz_name_wins_over_longer_matches(tmp_path):
    """Regression: with ethanol.npz beside ethanol_dft.npz, molecule="ethanol" read ethanol.npz (the first in sorted
    order); the check for several <m>*.npz matches made that exact name an error too."""
    _md17_npz(tmp_path / "toy.npz", frames=4)
    _md17_npz(tmp_path / "toy_dft.npz", frames=6)
    ds = MD17(tmp_path, "toy", processed_dir=tmp_path / "c")
    assert ds.path == tmp_path / "toy.npz" and len(ds) == 4
