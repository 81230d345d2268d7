"""TinvNN: transformation-invariant initial representations by modified MDS, and :class:`TinvNet`."""
from geomdl.nn.tinv.embedding import geodesic_distances, mds_embedding
from geomdl.nn.tinv.frames import ambiguous_frames, eigen_clusters
from geomdl.nn.tinv.net import TinvNet
from geomdl.nn.tinv.result import MDSResult

__all__ = ["MDSResult", "TinvNet", "ambiguous_frames", "eigen_clusters", "geodesic_distances", "mds_embedding"]
