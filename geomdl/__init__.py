"""geomdl: geometric deep learning on point clouds and graphs."""
__version__ = "0.1.0"
