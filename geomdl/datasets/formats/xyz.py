"""XYZ files: the QM9 raw ``dsgdb9nsd_*.xyz`` format (own parser) and extended XYZ / any
ASE-readable trajectory (through :mod:`ase.io`), converted to arrays.

QM9 raw layout (Ramakrishnan et al., Sci. Data 2014), ``na`` = number of atoms::

    na
    gdb <index> A B C mu alpha homo lumo gap r2 zpve U0 U H G Cv
    <element> x y z <mulliken charge>        (na lines; numbers may use Mathematica's '*^' exponent)
    <harmonic frequencies>
    <SMILES GDB>  <SMILES relaxed>
    <InChI GDB>   <InChI relaxed>
"""
from __future__ import annotations

import codecs
import io
import math
import os

import numpy as np

from geomdl.utils.io import read_text

QM9_XYZ_PROPERTIES = ("A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")
ELEMENTS = {"H": 1, "He": 2, "Li": 3, "Be": 4, "B": 5, "C": 6, "N": 7, "O": 8, "F": 9, "Ne": 10, "Na": 11,
            "Mg": 12, "Al": 13, "Si": 14, "P": 15, "S": 16, "Cl": 17, "Ar": 18, "K": 19, "Ca": 20, "Ni": 28,
            "Cu": 29, "Br": 35, "Pd": 46, "Ag": 47, "I": 53, "Pt": 78, "Au": 79}


def _float(token: str) -> float:
    return float(token.replace("*^", "e"))


def _is_number(token: str) -> bool:
    try:
        _float(token)
        return True
    except ValueError:
        return False


def parse_qm9_xyz(text: str, name: str = "<string>") -> dict:
    """Parse one QM9 raw xyz file.

    Returns:
        dict with ``index`` (int), ``z [na] int64``, ``pos [na, 3] float64`` (Å), ``charges [na]``
        (Mulliken, e), ``properties`` (dict of the 15 header values, QM9 units), ``smiles`` (relaxed).
    """
    lines = text.splitlines()
    try:
        na = int(lines[0].strip())
    except (IndexError, ValueError):
        raise ValueError(f"{name}: first line must be the number of atoms") from None
    if na < 1:
        raise ValueError(f"{name}: number of atoms on the first line must be >= 1, got {na}")
    if len(lines) < na + 5:
        raise ValueError(f"{name}: expected {na + 5} lines for {na} atoms, found {len(lines)} (truncated file?)")
    head = lines[1].split()
    if len(head) != 17 or head[0] != "gdb":
        raise ValueError(f"{name}: line 2 must be 'gdb <index>' and 15 properties, got {len(head)} fields")
    try:
        index = int(head[1])
        props = dict(zip(QM9_XYZ_PROPERTIES, (_float(t) for t in head[2:])))
    except ValueError:
        raise ValueError(f"{name}: line 2 has a non-numeric property: {lines[1]!r}") from None
    bad = [k for k, v in props.items() if not math.isfinite(v)]
    if bad:  # a 'nan' or 'inf' parses as a float: it became a NaN training target
        raise ValueError(f"{name}: line 2: properties {bad} are NaN or infinite")
    z, pos, charges = [], [], []
    for k in range(na):
        parts = lines[2 + k].split()
        if len(parts) != 5 or parts[0] not in ELEMENTS:
            raise ValueError(f"{name}: atom line {k + 1} must be 'element x y z charge', got {lines[2 + k]!r}")
        try:
            pos.append([_float(t) for t in parts[1:4]])
            charges.append(_float(parts[4]))
        except ValueError:
            raise ValueError(f"{name}: atom line {k + 1} has a non-numeric value: {lines[2 + k]!r}") from None
        z.append(ELEMENTS[parts[0]])
    # a wrong atom count must not shift the sections: the line after the atoms holds only frequencies
    # (an atom line there means na is too small) and nothing but blank lines may follow the InChI line
    freq = lines[na + 2].split()
    if not all(_is_number(t) for t in freq):
        raise ValueError(f"{name}: line {na + 3} should hold the harmonic frequencies after {na} atoms, got "
                         f"{lines[na + 2]!r} (atom count on line 1 too small?)")
    extra = [k for k in range(na + 5, len(lines)) if lines[k].strip()]
    if extra:
        raise ValueError(f"{name}: {na} atoms need {na + 5} lines but line {extra[0] + 1} follows the InChI line: "
                         f"{lines[extra[0]]!r} (wrong atom count on line 1?)")
    pos = np.asarray(pos, dtype=np.float64).reshape(na, 3)
    if not np.isfinite(pos).all():
        raise ValueError(f"{name}: atom coordinates contain NaN or infinite values")
    smiles = lines[na + 3].split()
    return {"index": index, "z": np.asarray(z, dtype=np.int64), "pos": pos,
            "charges": np.asarray(charges), "properties": props, "smiles": smiles[-1] if smiles else ""}


def read_qm9_xyz(path) -> dict:
    """:func:`parse_qm9_xyz` of a file."""
    path = os.fspath(path)
    return parse_qm9_xyz(read_text(path, "a QM9 xyz file"), name=path)


def read_ase(path, index=":", format: str | None = None) -> list:
    """Read frames (``ase.Atoms``) with :func:`ase.io.read` (a leading UTF-8 byte-order mark dropped); errors name the file."""
    import ase.io

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as fh:
        bom = fh.read(3) == codecs.BOM_UTF8
    # a Windows editor's byte-order mark: ase.io reads it as part of the first line; it is dropped as read_text does
    text = read_text(path, "a text trajectory") if bom else None
    kind = format or filetype_of(path)  # from the name (ase.io.read also looks at the content when format is None)
    try:
        if text is not None:
            frames = ase.io.read(io.StringIO(text), index=index, format=kind)
        else:
            frames = ase.io.read(path, index=index, format=format)
    except Exception as exc:
        raise ValueError(f"{path}: unreadable by ase.io ({type(exc).__name__}: {exc}); truncated or corrupt?") from None
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise ValueError(f"{path}: no frames")
    if index == ":" and kind in ("extxyz", "xyz"):
        _check_xyz_read_to_end(path, frames)
    return frames


def filetype_of(path: str) -> str | None:
    """ase's format name for ``path`` from its name only (``None`` when it cannot tell)."""
    from ase.io.formats import filetype

    try:
        return filetype(path, read=False)
    except Exception:
        return None


def _check_xyz_read_to_end(path: str, frames: list) -> None:
    """``ValueError`` naming ``path`` and the line when an (extended) XYZ file holds more than ``frames`` or an atom
    line has another number of columns than its frame's ``Properties`` declare.

    ase.io's extxyz reader stops at the first blank line where a frame header should be, so a blank line between
    two frames silently dropped every frame after it; and it ignores columns beyond ``Properties``, so a property
    missing from that string (``charge:R:1`` before ``forces:R:3``) shifted the columns: forces were read from the
    charge column and the first two force components. ``VEC`` lattice lines (read by ase) are skipped."""
    from ase.io.formats import open_with_compression

    # through ase's opener: a .gz/.bz2/.xz file is read decompressed, as ase.io.read does (its raw bytes gave an
    # IndexError naming no file)
    with open_with_compression(path, "rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace") as fh:
        lines = fh.read().split("\n")  # ase reads lines as Python's text mode splits them ("\r\n" included)
    pos = 0
    for k, atoms in enumerate(frames):
        _check_columns(path, lines, pos, len(atoms), k)
        pos += len(atoms) + 2
        while pos < len(lines) and lines[pos].lstrip().startswith("VEC"):
            pos += 1
    extra = next((i for i in range(pos, len(lines)) if lines[i].strip()), None)
    if extra is not None:
        raise ValueError(f"{path}: line {extra + 1} follows the {len(frames)} frame(s) ase.io read (lines 1-{pos}) "
                         f"and was not read: {lines[extra].strip()[:60]!r}; remove blank lines between frames")


def _check_columns(path: str, lines: list[str], pos: int, natoms: int, frame: int) -> None:
    """The atom lines of the frame starting at line index ``pos`` have the columns of its ``Properties=`` (frames
    without one, or whose comment line cannot be split simply, are left to ase)."""
    props = next((t.split("=", 1)[1].strip("\"'") for t in lines[pos + 1].split() if t.startswith("Properties=")), None)
    if props is None:
        return
    try:
        ncols = sum(int(c) for c in props.split(":")[2::3])
    except ValueError:
        return
    for i in range(pos + 2, pos + 2 + natoms):
        got = len(lines[i].split())
        if got != ncols:
            raise ValueError(f"{path}: line {i + 1} (frame {frame}) has {got} columns but Properties={props} declares "
                             f"{ncols}: a property missing from (or extra in) Properties shifts the columns")


def atoms_energy_forces(atoms, energy_key: str = "energy", forces_key: str = "forces", where: str | None = None):
    """``(energy or None, forces [N, 3] or None)`` of one frame from ``atoms.info``/``arrays`` or its calculator.

    Raises:
        ValueError: prefixed with ``where`` (the file and frame, when given), for an energy that is not one real
            number (a string, a boolean, a vector: its first value was taken before) or forces that are not real
            numbers of shape ``[N, 3]``.
    """
    energy = atoms.info.get(energy_key)
    forces = atoms.arrays.get(forces_key)
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", {}) if calc is not None else {}
    if energy is None:
        energy = results.get(energy_key, results.get("energy") if energy_key == "energy" else None)
    if forces is None:
        forces = results.get(forces_key, results.get("forces") if forces_key == "forces" else None)
    prefix = f"{where}: " if where is not None else ""
    if energy is not None:
        value = np.asarray(energy)
        if value.size != 1 or value.dtype.kind not in "iuf":
            raise ValueError(f"{prefix}{energy_key!r} must be one real number, got {energy!r}")
        energy = float(value.reshape(-1)[0])
    if forces is not None:
        value = np.asarray(forces)
        if value.dtype.kind not in "iuf" or value.shape != (len(atoms), 3):
            raise ValueError(f"{prefix}{forces_key!r} must be real numbers of shape [{len(atoms)}, 3] (one row per atom), "
                             f"got {value.shape} {value.dtype}")
        forces = value.astype(np.float64)
    return energy, forces
