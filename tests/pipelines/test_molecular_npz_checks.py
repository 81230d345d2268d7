"""``read_frames`` of an MD17-style npz checks the file as the MD17 dataset does (one reader, the same errors)."""
import numpy as np
import pytest

from geomdl.pipelines.molecular import read_frames


def _npz(path, **change):
    rng = np.random.default_rng(0)
    arrays = {"R": rng.normal(size=(3, 2, 3)), "E": rng.normal(size=(3, 1)), "F": rng.normal(size=(3, 2, 3)),
              "z": np.array([1, 8])}
    arrays.update(change)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


@pytest.mark.parametrize("change, match", [
    ({"R": np.full((3, 2, 3), np.nan)}, r"positions contain NaN or infinite values in 3 of 3 frames"),
    ({"E": np.array([[1.0], [np.inf], [2.0]])}, r"energies contain NaN or infinite values in 1 of 3 frames \(first: frame 1\)"),
    ({"F": np.full((3, 2, 3), np.nan)}, r"forces contain NaN or infinite values"),
    ({"z": np.array(["H", "O"])}, r"nuclear charges must be integers, got dtype <U1"),
    ({"z": np.array([1.5, 8.0])}, r"nuclear charges must be integers"),
    ({"R": np.zeros((3, 2, 3), dtype=complex)}, r"positions must be real numbers"),
    ({"E": np.zeros((2, 1))}, r"inconsistent shapes"),
])
def test_bad_npz_values_are_errors_naming_the_file(tmp_path, change, match):
    # NaNs were read as training frames (a NaN loss), strings failed in torch without the file's name,
    # fractional charges were truncated to another element
    _npz(tmp_path / "bad.npz", **change)
    with pytest.raises(ValueError, match=rf"bad.npz: {match}"):
        read_frames(tmp_path / "bad.npz")


def test_npz_without_forces_and_both_key_conventions(tmp_path):
    arr = _npz(tmp_path / "noforces.npz", F=None)
    frames = read_frames(tmp_path / "noforces.npz", index="1:", unit_energy=2.0)
    assert len(frames) == 2 and frames[0].forces is None and frames[0].energy == pytest.approx(2 * arr["E"][1, 0])
    np.savez(tmp_path / "r.npz", coords=arr["R"], energies=arr["E"][:, 0], forces=arr["R"], nuclear_charges=arr["z"])
    frames = read_frames(tmp_path / "r.npz", unit_length=0.5)
    assert len(frames) == 3 and frames[2].z.tolist() == [1, 8]
    assert np.allclose(frames[2].pos.numpy(), 0.5 * arr["R"][2]) and np.allclose(frames[2].forces.numpy(), 2 * arr["R"][2])
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz: missing keys"):
        read_frames(tmp_path / "other.npz")


@pytest.mark.parametrize("index, picked", [(-1, [2]), ("-1", [2]), ("1", [1]), (0, [0]), ("-2:", [1, 2]), ("::2", [0, 2])])
def test_npz_index_picks_the_frames_ase_would(tmp_path, index, picked):
    # an int -1 gave no frame (slice(-1, 0)) and a string "1" the first frame (slice(1)), unlike ase.io.read
    arr = _npz(tmp_path / "f.npz")
    frames = read_frames(tmp_path / "f.npz", index=index)
    assert [f.energy for f in frames] == pytest.approx([arr["E"][i, 0] for i in picked])


def test_npz_single_index_out_of_range_names_the_file(tmp_path):
    _npz(tmp_path / "f.npz")
    with pytest.raises(IndexError, match=r"f.npz: frame index 3 out of range for 3 frames"):
        read_frames(tmp_path / "f.npz", index=3)
