"""XYZ parsers: QM9 raw format (own parser) and extended XYZ through ase; property round trips and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.datasets.formats.xyz import ELEMENTS, QM9_XYZ_PROPERTIES, parse_qm9_xyz, read_ase
from geomdl.datasets.molecular import ExtXYZ

SYMBOLS = ["H", "C", "N", "O", "F"]
finite = st.floats(-50, 50, allow_nan=False, width=32)


def _qm9_text(index, atoms, props, mathematica):
    def fmt(v):
        s = f"{v:.6e}"
        return s.replace("e", "*^") if mathematica else s

    lines = [str(len(atoms)), "gdb " + str(index) + " " + " ".join(fmt(p) for p in props)]
    lines += [f"{s} {fmt(x)} {fmt(y)} {fmt(z)} {fmt(q)}" for s, x, y, z, q in atoms]
    lines += ["100.0 200.0", "C C", "InChI=1S/CH4/h1H4 InChI=1S/CH4/h1H4"]
    return "\n".join(lines) + "\n"


@settings(max_examples=40, deadline=None)
@given(index=st.integers(1, 133885),
       atoms=st.lists(st.tuples(st.sampled_from(SYMBOLS), finite, finite, finite, finite), min_size=1, max_size=9),
       props=st.lists(finite, min_size=15, max_size=15), mathematica=st.booleans())
def test_qm9_xyz_roundtrip_property(index, atoms, props, mathematica):
    rec = parse_qm9_xyz(_qm9_text(index, atoms, props, mathematica))
    assert rec["index"] == index
    assert rec["z"].tolist() == [ELEMENTS[a[0]] for a in atoms]
    np.testing.assert_allclose(rec["pos"], np.array([a[1:4] for a in atoms]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([rec["properties"][k] for k in QM9_XYZ_PROPERTIES], props, rtol=1e-6, atol=1e-6)


def test_qm9_xyz_errors():
    good = _qm9_text(1, [("C", 0, 0, 0, 0)], [0.0] * 15, True)
    with pytest.raises(ValueError, match="m.xyz: expected 6 lines for 1 atoms"):
        parse_qm9_xyz("\n".join(good.splitlines()[:3]), name="m.xyz")
    with pytest.raises(ValueError, match="atom line 1"):
        parse_qm9_xyz(good.replace("C 0.000000*^+00", "Xx 0.0"), name="m.xyz")
    with pytest.raises(ValueError, match="line 2"):
        parse_qm9_xyz(good.replace("gdb 1", "gdb"), name="m.xyz")


@settings(max_examples=15, deadline=None)
@given(frames=st.lists(st.tuples(st.lists(st.sampled_from(SYMBOLS), min_size=1, max_size=6), st.integers(0, 2**31 - 1)),
                       min_size=1, max_size=4))
def test_extxyz_roundtrip_property(tmp_path_factory, frames):
    import ase
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    folder = tmp_path_factory.mktemp("xyz")
    written = []
    for symbols, seed in frames:
        rng = np.random.default_rng(seed)
        atoms = ase.Atoms(symbols, positions=rng.normal(size=(len(symbols), 3)))
        atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal() * 100), forces=rng.normal(size=(len(symbols), 3)))
        written.append(atoms)
    ase.io.write(folder / "t.xyz", written, format="extxyz")
    ds = ExtXYZ(folder / "t.xyz", processed_dir=folder / "cache")
    assert len(ds) == len(frames)
    for data, atoms in zip(ds, written):
        assert data.z.tolist() == atoms.numbers.tolist()
        np.testing.assert_allclose(data.pos.numpy(), atoms.positions, rtol=1e-6, atol=1e-6)
        assert float(data.energy) == pytest.approx(atoms.get_potential_energy(), rel=1e-9)
        np.testing.assert_allclose(data.forces.numpy(), atoms.get_forces(), rtol=1e-6, atol=1e-6)


def test_corrupt_extxyz_names_file(tmp_path):
    path = tmp_path / "bad.xyz"
    path.write_text("3\nenergy=1.0 Properties=species:S:1:pos:R:3\nC 0 0 0\nH 1 0 0\n")  # one atom line short
    with pytest.raises(ValueError, match="bad.xyz"):
        read_ase(path)
    unlabelled = tmp_path / "nolabel.xyz"
    unlabelled.write_text("1\nProperties=species:S:1:pos:R:3\nC 0 0 0\n")
    with pytest.raises(ValueError, match="nolabel.xyz: frame 0 has no"):
        ExtXYZ(unlabelled, processed_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.pt"))  # nothing half-written in the cache


@pytest.mark.parametrize("value, shown", [("abc", "'abc'"), ('"-1.5 2.0 3.0"', r"array\(\[-1.5"), ("T", "True")])
def test_extxyz_energy_that_is_not_one_number_names_the_file_and_frame(tmp_path, value, shown):
    # a string energy gave float()'s "could not convert string to float" without the file; a vector or a boolean
    # energy was read silently as its first value (-1.5) or 1.0
    from geomdl.datasets.molecular import atomic_energies

    path = tmp_path / "e.xyz"
    path.write_text(f"1\nProperties=species:S:1:pos:R:3:forces:R:3 REF_energy={value} pbc=\"F F F\"\nH 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=rf"e.xyz: frame 0: 'REF_energy' must be one real number, got {shown}"):
        ExtXYZ(path, energy_key="REF_energy", processed_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"e.xyz: frame 0: 'REF_energy' must be one real number"):
        atomic_energies(path, energy_key="REF_energy")


def test_extxyz_forces_of_the_wrong_shape_name_the_file_and_frame(tmp_path):
    # one force column for two atoms reached torch's reshape error, which named neither the file nor the frame
    path = tmp_path / "f.xyz"
    path.write_text("2\nProperties=species:S:1:pos:R:3:REF_forces:R:1 energy=1.0 pbc=\"F F F\"\nH 0 0 0 0.5\nH 1 0 0 0.5\n")
    with pytest.raises(ValueError, match=r"f.xyz: frame 0: 'REF_forces' must be real numbers of shape \[2, 3\]"):
        ExtXYZ(path, forces_key="REF_forces", processed_dir=tmp_path / "cache")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_qm9_xyz_non_finite_property_names_the_file(value):
    """Regression: a 'nan' or 'inf' property parsed as a float and became a NaN/infinite QM9 target."""
    text = _qm9_text(1, [("C", 0, 0, 0, 0)], [0.5] * 15, False)
    head = text.splitlines()[1].split()
    head[12] = value  # U0
    with pytest.raises(ValueError, match=r"m\.xyz: line 2: properties \['U0'\] are NaN or infinite"):
        parse_qm9_xyz(text.replace(text.splitlines()[1], " ".join(head)), name="m.xyz")


@pytest.mark.parametrize("gap", ["\n", "   \n", "\n\n"])
def test_extxyz_frames_after_a_blank_line_are_not_dropped(tmp_path, gap):
    """Regression: ase.io's extxyz reader stops at a blank line between frames: every later frame was silently
    dropped (2 frames read of 3). Now an error names the file and the first unread line; blank lines at the end
    of the file stay allowed."""
    frame = '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"\nH 0 0 0 0 0 0\nO 1 0 0 0 0 0\n'
    path = tmp_path / "gap.xyz"
    path.write_text(frame * 2 + gap + frame)
    with pytest.raises(ValueError, match=r"gap\.xyz: line \d+ follows the 2 frame\(s\) ase.io read"):
        read_ase(path)
    with pytest.raises(ValueError, match=r"gap\.xyz: line"):
        ExtXYZ(path, processed_dir=tmp_path / "cache")
    path.write_text(frame * 3 + gap)
    assert len(read_ase(path)) == 3


def test_extxyz_atom_lines_with_more_columns_than_properties_name_the_file(tmp_path):
    """Regression: ase.io ignores the columns beyond Properties, so a property missing from it (here charge:R:1)
    shifted the columns: the forces were read from the charge column and two force components, without an error."""
    path = tmp_path / "shift.xyz"
    path.write_text('2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"\n'
                    "H 0 0 0 0.9 0.1 0.2 0.3\nO 1 0 0 -0.9 -0.1 -0.2 -0.3\n")
    with pytest.raises(ValueError, match=r"shift\.xyz: line 3 \(frame 0\) has 8 columns but "
                                         r"Properties=species:S:1:pos:R:3:forces:R:3 declares 7"):
        ExtXYZ(path, processed_dir=tmp_path / "cache")
    path.write_text(path.read_text().replace("pos:R:3:", "pos:R:3:charge:R:1:"))
    np.testing.assert_allclose(ExtXYZ(path, processed_dir=tmp_path / "cache")[0].forces.numpy(), [[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]])


@pytest.mark.parametrize("suffix", [".xyz.gz", ".extxyz.bz2", ".xyz.xz"])
def test_compressed_extxyz_is_read_whole(tmp_path, suffix):
    """Regression: ase.io reads .gz/.bz2/.xz extended XYZ files, but the check that every frame was read opened the
    compressed bytes as text and failed with a bare IndexError ('list index out of range') naming no file."""
    import ase.io

    frame = '2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.5 pbc="F F F"\nH 0 0 0 0 0 0\nO 1 0 0 0 0 0\n'
    plain = tmp_path / "f.xyz"
    plain.write_text(frame * 3)
    path = tmp_path / f"f{suffix}"
    ase.io.write(path, ase.io.read(plain, ":"), format="extxyz")
    assert len(read_ase(path)) == 3
    path = tmp_path / f"gap{suffix}"
    ase.io.write(path, ase.io.read(plain, ":"), format="extxyz")
    from ase.io.formats import open_with_compression

    with open_with_compression(str(path), "a") as fh:  # a blank line, then a frame ase.io stops before
        fh.write("\n" + frame)
    with pytest.raises(ValueError, match=rf"gap{suffix.replace('.', '[.]')}: line \d+ follows the 3 frame\(s\)"):
        read_ase(path)
