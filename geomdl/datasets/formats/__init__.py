"""Readers (and a few writers) for the file formats geomdl datasets read; errors name the file."""
from geomdl.datasets.formats.gtlog import (
    format_gt_log,
    parse_gt_info,
    parse_gt_log,
    parse_gt_overlap,
    read_gt_info,
    read_gt_log,
    read_gt_overlap,
)
from geomdl.datasets.formats.off import parse_off, read_off, triangulate, write_off
from geomdl.datasets.formats.points import read_array, read_ply, read_ply_faces, read_points
from geomdl.datasets.formats.xyz import atoms_energy_forces, parse_qm9_xyz, read_ase, read_qm9_xyz

__all__ = [
    "format_gt_log", "parse_gt_info", "parse_gt_log", "parse_gt_overlap", "read_gt_info", "read_gt_log", "read_gt_overlap",
    "parse_off", "read_off", "triangulate", "write_off", "read_array", "read_ply", "read_ply_faces", "read_points",
    "atoms_energy_forces", "parse_qm9_xyz", "read_ase", "read_qm9_xyz",
]
