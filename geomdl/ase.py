"""``geomdl.ase``: ASE integration (``geomdl.ase.Calculator``), see :mod:`geomdl.ase_calculator`."""
from geomdl.ase_calculator import Calculator

__all__ = ["Calculator"]
