"""Dataset defects found by an audit: NaN/infinite values and wrong dtypes accepted silently (MD17 npz, extended
XYZ, QM9 CSV, ModelNet HDF5), errors without the file's name (MD17 npz dtypes, QM9's uncharacterized.txt), a byte-order
mark in an extended XYZ file, one 3DMatch scene given as a string, a cache file holding another object and 0-d bool or
complex indices read as item 0 or 1, and arguments (seeds, split sizes, synthetic options) checked late, by the wrong
name or not at all."""
import logging

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from geomdl.datasets import MD17, QM9, ExtXYZ
from geomdl.datasets.base import GeometricDataset
from geomdl.datasets.modelnet import MODELNET40_CLASSES, ModelNet
from geomdl.datasets.synthetic import SyntheticParts, SyntheticRegistrationPairs, SyntheticShapes
from geomdl.datasets.threedmatch import ThreeDMatch

FRAME = '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc="F F F"\nH 0 0 0 0.1 0 0\nH 0.74 0 0 -0.1 0 0\n'


def _md17(path, **override):
    rng = np.random.default_rng(0)
    arrays = {"R": rng.normal(size=(4, 3, 3)), "E": rng.normal(size=(4, 1)), "F": rng.normal(size=(4, 3, 3)),
              "z": np.array([6, 1, 8])}
    arrays.update(override)
    np.savez(path, **arrays)


def _nan_at(shape, index):
    arr = np.random.default_rng(1).normal(size=shape)
    arr[index] = np.nan
    return arr


@pytest.mark.parametrize("override, message", [
    ({"R": _nan_at((4, 3, 3), (2, 1, 0))}, r"positions contain NaN or infinite values in 1 of 4 frames \(first: frame 2\)"),
    ({"E": np.full((4, 1), np.inf)}, r"energies contain NaN or infinite values in 4 of 4 frames \(first: frame 0\)"),
    ({"F": _nan_at((4, 3, 3), (3, 0, 2))}, r"forces contain NaN or infinite values in 1 of 4 frames \(first: frame 3\)"),
    ({"z": np.array(["C", "H", "O"])}, r"nuclear charges must be integers, got dtype <U1"),  # was a bare int() error
    ({"z": np.array([6.7, 1.0, 8.0])}, r"nuclear charges must be integers, got dtype float64"),  # was truncated to 6
    ({"z": np.array([6, 0, 8])}, r"nuclear charges must be atomic numbers in \[1, 118\], got min 0"),
    ({"R": np.ones((4, 3, 3), dtype=bool)}, r"positions must be real numbers .* got dtype bool"),
    ({"F": np.ones((4, 3, 3), dtype=complex)}, r"forces must be real numbers .* got dtype complex128"),
])
def test_md17_npz_non_finite_values_and_wrong_dtypes_name_the_file(tmp_path, override, message):
    _md17(tmp_path / "md17_bad.npz", **override)
    with pytest.raises(ValueError, match=r"md17_bad.npz: " + message):
        MD17(path=tmp_path / "md17_bad.npz", processed_dir=tmp_path / "c")
    _md17(tmp_path / "md17_ok.npz", z=np.array([6.0, 1.0, 8.0]))  # whole-number float charges are fine
    assert MD17(path=tmp_path / "md17_ok.npz", processed_dir=tmp_path / "c")[0].z.tolist() == [6, 1, 8]


@pytest.mark.parametrize("old, new, message", [
    ("H 0.74", "H nan", "positions contain NaN"), ("energy=-1.0", "energy=inf", "energy is inf"),
    ("-0.1 0 0", "nan 0 0", "forces contain NaN"),
])
def test_extxyz_non_finite_values_name_the_file_and_frame(tmp_path, old, new, message):
    path = tmp_path / "traj.xyz"
    path.write_text(FRAME + FRAME.replace(old, new))  # frames were stored with NaN (every loss NaN)
    with pytest.raises(ValueError, match=rf"traj.xyz: frame 1: {message}"):
        ExtXYZ(path, processed_dir=tmp_path / "c")


def test_extxyz_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.xyz"
    path.write_text("\ufeff" + FRAME, encoding="utf-8")  # was "unreadable by ase.io (... '\ufeff2')"
    ds = ExtXYZ(path, processed_dir=tmp_path / "c")
    assert len(ds) == 1 and float(ds[0].energy) == -1.0 and ds[0].pos[1].tolist() == pytest.approx([0.74, 0, 0])


def test_qm9_csv_non_finite_coordinates_name_the_line(shared_data, tmp_path):
    lines = (shared_data / "qm9/qm9_part1.csv").read_text().splitlines()[:4]
    first = lines[3].index("[[") + 2
    lines[3] = lines[3][:first] + "nan" + lines[3][lines[3].index(",", first):]  # the first x coordinate
    (tmp_path / "qm9_part1.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"qm9_part1.csv:4: atom coordinates \(XYZ_Ang\) contain NaN or infinite"):
        QM9(tmp_path, source="csv", processed_dir=tmp_path / "c")


def test_qm9_uncharacterized_list_errors_name_the_file(tmp_path):
    props = " ".join(["1.0"] * 15)
    (tmp_path / "dsgdb9nsd_000001.xyz").write_text(
        "\n".join(["1", f"gdb 1 {props}", "C 0.0 0.0 0.0 -0.1", "100.0", "C C", "InChI=1S/C InChI=1S/C"]) + "\n")
    (tmp_path / "uncharacterized.txt").write_text("header\n12a C 1 2\n")  # was a bare int() ValueError
    with pytest.raises(ValueError, match=r"uncharacterized.txt: line 2: expected a molecule index first, got '12a C 1 2'"):
        QM9(tmp_path, source="xyz", processed_dir=tmp_path / "c")
    (tmp_path / "uncharacterized.txt").write_bytes(b"\xff\xfe2\n")  # was a bare UnicodeDecodeError
    with pytest.raises(ValueError, match=r"uncharacterized.txt: not a text file"):
        QM9(tmp_path, source="xyz", processed_dir=tmp_path / "c")


@pytest.mark.parametrize("change, message", [
    ("nan", r"data of 1 of 2 shapes has NaN or infinite values \(first: shape 1\)"),
    ("label", r"labels must be integer class indices, got dtype float64"),  # 1.5 was read as class 1
    ("normal", r"expected normal \(2, 64, 3\) like data, got \(2, 63, 3\)"),
    ("normal_nan", r"normal of 1 of 2 shapes has NaN or infinite values \(first: shape 0\)"),
])
def test_modelnet_hdf5_non_finite_points_fractional_labels_and_normal_shape(tmp_path, change, message):
    h5py = pytest.importorskip("h5py")
    folder = tmp_path / "modelnet40_ply_hdf5_2048"
    folder.mkdir()
    (folder / "shape_names.txt").write_text("\n".join(MODELNET40_CLASSES) + "\n")
    rng = np.random.default_rng(0)
    data, label, normal = rng.normal(size=(2, 64, 3)).astype(np.float32), np.array([[3], [5]]), rng.normal(size=(2, 64, 3))
    if change == "nan":
        data[1, 10, 2] = np.nan
    elif change == "label":
        label = np.array([[3.0], [1.5]])
    elif change == "normal":
        normal = normal[:, :63]
    else:
        normal[0, 0, 0] = np.inf
    with h5py.File(folder / "ply_data_train0.h5", "w") as fh:
        fh["data"], fh["label"], fh["normal"] = data, label, normal
    with pytest.raises(ValueError, match=r"ply_data_train0.h5: " + message):
        ModelNet(tmp_path, split="train", num_points=16, processed_dir=tmp_path / "c")


def test_threedmatch_numpy_voxel_size(shared_data, tmp_path):
    ds = ThreeDMatch(shared_data / "3dmatch", missing="skip", voxel_size=np.float32(0.05), processed_dir=tmp_path / "c")
    assert len(ds) == 1 and ds.voxel_size == pytest.approx(0.05)  # np.float32 was "must be a positive number"
    with pytest.raises(ValueError, match="voxel_size must be a positive finite number, got True"):
        ThreeDMatch(shared_data / "3dmatch", missing="skip", voxel_size=True, processed_dir=tmp_path / "c")


def test_threedmatch_one_scene_given_as_a_string(shared_data, tmp_path):
    kw = dict(missing="skip", voxel_size=0.05, processed_dir=tmp_path)
    ds = ThreeDMatch(shared_data / "3dmatch", scenes="7-scenes-redkitchen", **kw)  # was the scenes '7', '-', 's', ...
    assert ds.scenes == ["7-scenes-redkitchen"] and len(ds) == 1
    with pytest.raises(ValueError, match=r"overlap_range must be \(lo, hi\) with lo < hi, got 0.3"):
        ThreeDMatch(shared_data / "3dmatch", overlap_range=0.3, **kw)  # was "object of type 'float' has no len()"


class _Tiny(GeometricDataset):
    def __init__(self, root):
        super().__init__(root, processed_dir=root / "cache")
        self.load()

    def raw_paths(self):
        return [self.root / "raw.txt"]

    def process(self):
        return [Data(pos=torch.full((2, 3), float(v))) for v in (self.root / "raw.txt").read_text().split()]


@pytest.mark.parametrize("other", [[1, 2, 3], torch.zeros(3), "text", {"fingerprint": None}])
def test_a_cache_file_holding_another_object_is_rebuilt(tmp_path, caplog, other):
    (tmp_path / "raw.txt").write_text("1 2")
    path = _Tiny(tmp_path).cache_path
    torch.save(other, path)  # was AttributeError: 'list' object has no attribute 'get'
    with caplog.at_level(logging.WARNING):
        ds = _Tiny(tmp_path)
    assert not ds.from_cache and len(ds) == 2 and float(ds[1].pos[0, 0]) == 2.0
    assert "not a processed dataset cache" in caplog.text
    blob = torch.load(path, weights_only=True)
    del blob["slices"]  # a matching fingerprint but no data: was KeyError 'slices'
    torch.save(blob, path)
    assert not _Tiny(tmp_path).from_cache and _Tiny(tmp_path).from_cache


@pytest.mark.parametrize("index", [torch.tensor(True), torch.tensor(False), np.True_, torch.tensor(1 + 0j), True, False])
def test_zero_dim_bool_and_complex_indices_are_type_errors(index):
    ds = SyntheticShapes(num_per_class=1, num_points=8)
    with pytest.raises(TypeError, match="index must be an integer"):
        ds[index]  # a 0-d bool/complex tensor or a Python bool was item 1 or 0; np.True_ an IndexError about a 1-entry mask
    assert int(ds[torch.tensor(3, dtype=torch.uint8)].y) == int(ds[3].y)


@pytest.mark.parametrize("seed", ["1", 1.7, None, True])
def test_seeds_that_are_not_ints_are_type_errors_naming_the_argument(tmp_path, shared_data, seed):
    _md17(tmp_path / "md17_toy.npz")
    with pytest.raises(TypeError, match=rf"split_seed must be an int, got {seed!r}"):  # 1.7 was used as 1
        MD17(path=tmp_path / "md17_toy.npz", split_seed=seed, processed_dir=tmp_path / "c")
    with pytest.raises(TypeError, match=rf"split_seed must be an int, got {seed!r}"):
        QM9(shared_data / "qm9", split_seed=seed, processed_dir=tmp_path / "q")
    with pytest.raises(TypeError, match=rf"seed must be an int, got {seed!r}"):
        ModelNet(shared_data / "modelnet40", num_points=16, seed=seed, processed_dir=tmp_path / "m")
    assert MD17(path=tmp_path / "md17_toy.npz", split_seed=np.int64(3), processed_dir=tmp_path / "c").split_seed == 3


@pytest.mark.parametrize("sizes", [5, "0.8", 0.5])
def test_split_sizes_that_are_not_a_sequence_are_type_errors(tmp_path, sizes):
    _md17(tmp_path / "md17_toy.npz")
    with pytest.raises(TypeError, match=r"split_sizes must be a sequence of \(train, val, test\) sizes"):
        MD17(path=tmp_path / "md17_toy.npz", split="train", split_sizes=sizes, processed_dir=tmp_path / "c")


@pytest.mark.parametrize("make, message", [
    (lambda: SyntheticShapes(num_per_class=1, num_points=8, noise=float("nan")), r"noise must be a finite number >= 0, got nan"),
    (lambda: SyntheticShapes(num_per_class=1, num_points=8, noise=float("inf")), r"noise must be a finite number >= 0, got inf"),
    (lambda: SyntheticShapes(num_per_class=1, num_points=8, nonuniform=float("nan")), r"nonuniform must be a finite number"),
    (lambda: SyntheticShapes(num_per_class=0), r"num_per_class must be an int >= 1, got 0"),  # was "num_samples ... got 0"
    (lambda: SyntheticShapes(num_per_class=1, num_points=True), r"num_points must be an int >= 1, got True"),
    (lambda: SyntheticParts(num_samples=1, noise=float("nan")), r"noise must be a finite number >= 0, got nan"),
    (lambda: SyntheticRegistrationPairs(num_samples=1, noise=float("nan")), r"noise must be a finite number >= 0, got nan"),
    (lambda: SyntheticRegistrationPairs(num_samples=1, max_translation=float("nan")), r"max_translation must be a finite"),
    (lambda: SyntheticRegistrationPairs(num_samples=1, overlap_radius=float("nan")), r"overlap_radius must be a positive"),
])
def test_synthetic_datasets_reject_non_finite_options_naming_them(make, message):
    with pytest.raises(ValueError, match=message):  # NaN noise was no noise (shapes, parts) or NaN clouds (pairs)
        make()


def test_synthetic_classes_and_kinds_given_as_one_string():
    assert SyntheticShapes(num_per_class=2, num_points=8, classes="cube").classes == ("cube",)  # was ('c', 'u', 'b', 'e')
    assert SyntheticParts(num_samples=1, num_points=256, kinds="arm").kinds == ("arm",)


def test_threedmatch_benchmark_and_scenes_of_the_wrong_type(shared_data, tmp_path):
    with pytest.raises(ValueError, match=r"benchmark must be one of \['3DMatch', '3DLoMatch'\], got \['3DMatch'\]"):
        ThreeDMatch(shared_data / "3dmatch", benchmark=["3DMatch"], processed_dir=tmp_path)  # was unhashable type
    with pytest.raises(TypeError, match=r"scenes must be a scene name, a sequence of names or None, got 5"):
        ThreeDMatch(shared_data / "3dmatch", scenes=5, processed_dir=tmp_path)  # was 'int' object is not iterable


def test_qm9_elements_without_an_atom_reference_name_the_file(shared_data, tmp_path):
    lines = (shared_data / "qm9/qm9_part1.csv").read_text().splitlines()[:3]
    lines[2] = lines[2].replace("['N','H','H','H']", "['S','H','H','H']")  # NH3 -> SH3
    (tmp_path / "qm9_part1.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"qm9_part1.csv:3: atomic number\(s\) \[16\] are not QM9 elements"):
        QM9(tmp_path, source="csv", processed_dir=tmp_path / "c")  # was a bare KeyError: 16
    raw = tmp_path / "raw"
    raw.mkdir()
    props = " ".join(["1.0"] * 15)
    (raw / "dsgdb9nsd_000001.xyz").write_text(
        "\n".join(["1", f"gdb 1 {props}", "Cl 0.0 0.0 0.0 -0.1", "100.0", "C C", "InChI=1S/C InChI=1S/C"]) + "\n")
    with pytest.raises(ValueError, match=r"dsgdb9nsd_000001.xyz: atomic number\(s\) \[17\] are not QM9 elements"):
        QM9(raw, source="xyz", processed_dir=tmp_path / "c")


@pytest.mark.parametrize("kwargs, message", [
    (dict(frame_in=1.5), r"frame_in must be an int, got 1.5"),  # was numpy's IndexError "only integers, slices ..."
    (dict(frame_out=3.0), r"frame_out must be an int, got 3.0"),  # was "frames must be a positive int, got 4.0"
    (dict(seed_offset="a"), r"seed_offset must be an int, got 'a'"),
])
def test_nbody_split_frame_arguments_must_be_ints(tmp_path, kwargs, message):
    from geomdl.datasets.nbody import nbody_split

    with pytest.raises(TypeError, match=message):
        nbody_split("train", 2, tmp_path, **{"frame_in": 1, "frame_out": 3, "progress": False, **kwargs})


def test_per_frame_finiteness_checks_stay_cheap(monkeypatch):
    """molecule_data runs once per frame (MD17: up to ~1M frames per file): its NaN/inf checks run in NumPy on the
    arrays the tensors share, not as torch.isfinite(t).all() per tensor (~5 us each, a third more processing time
    per frame); non-finite positions, energies and forces are still errors naming the frame."""
    from geomdl.datasets.molecular import molecule_data

    def no_torch_isfinite(*args, **kwargs):
        raise AssertionError("a per-frame torch.isfinite")

    monkeypatch.setattr(torch, "isfinite", no_torch_isfinite)
    z, pos, forces = [6, 1, 8], np.ones((3, 3)), np.zeros((3, 3))
    data = molecule_data(z, pos, -1.5, forces, where="f.npz: frame 0")
    assert data.pos.dtype == torch.float32 and data.energy.dtype == torch.float64 and data.forces.shape == (3, 3)
    for kwargs, match in ((dict(pos=_nan_at((3, 3), (1, 2))), "positions"), (dict(energy=float("inf")), "energy"),
                          (dict(forces=_nan_at((3, 3), (2, 0))), "forces")):
        args = dict(z=z, pos=pos, energy=-1.5, forces=forces)
        args.update(kwargs)
        with pytest.raises(ValueError, match=rf"f\.npz: frame 7: .*{match}"):
            molecule_data(**args, where="f.npz: frame 7")
