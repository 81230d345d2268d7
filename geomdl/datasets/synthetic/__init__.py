"""Built-in data generated deterministically from a seed (no files, no network)."""
from geomdl.datasets.synthetic.molecules import SyntheticMolecules
from geomdl.datasets.synthetic.parts import PART_CLASSES, PART_KINDS, SyntheticParts
from geomdl.datasets.synthetic.registration import SyntheticRegistrationPairs
from geomdl.datasets.synthetic.shapes import SHAPE_CLASSES, SyntheticShapes

__all__ = ["SyntheticMolecules", "SyntheticParts", "SyntheticRegistrationPairs", "SyntheticShapes",
           "PART_CLASSES", "PART_KINDS", "SHAPE_CLASSES"]
