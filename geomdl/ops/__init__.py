"""Ops with a compiled kernel and a pure-PyTorch reference (``<op>_reference``).

The backend is chosen by ``GEOMDL_KERNELS=auto|compiled|reference`` (see
:mod:`geomdl.ops._extension`); ``auto`` falls back to the references with one warning.

On x86 the CPU kernels of ``scatter``, ``fps``, ``sparse_trilinear`` and the Gaunt product carry an AVX2 copy
of their hot loops beside the baseline one and run it where the CPU has AVX2 and FMA;
``GEOMDL_SCATTER_ISA`` / ``GEOMDL_FPS_ISA`` / ``GEOMDL_TRILINEAR_ISA`` / ``GEOMDL_GAUNT_ISA`` ``=generic``
force the baseline copy (``geomdl info`` shows which run; README "CPU instruction sets").
"""
from geomdl.ops._extension import (
    GeomdlKernelWarning,
    cuda_kernels_available,
    extension_error,
    extension_loaded,
    get_backend,
    has_kernel,
    set_backend,
    use_backend,
)
from geomdl.ops.fps import fps, fps_reference
from geomdl.ops.painn_message import painn_message, painn_message_reference
from geomdl.ops.neighbors import (
    knn,
    knn_graph,
    knn_graph_reference,
    knn_reference,
    radius,
    radius_graph,
    radius_graph_reference,
    radius_reference,
)
from geomdl.ops.scatter import scatter, scatter_reference
from geomdl.ops.softmax import segment_softmax, segment_softmax_reference
from geomdl.ops.trilinear import TrilinearPlan, sparse_trilinear, sparse_trilinear_reference

__all__ = [
    "GeomdlKernelWarning", "cuda_kernels_available", "extension_error", "extension_loaded", "get_backend",
    "has_kernel", "set_backend", "use_backend",
    "scatter", "scatter_reference", "segment_softmax", "segment_softmax_reference",
    "radius", "radius_reference", "knn", "knn_reference", "radius_graph", "radius_graph_reference",
    "knn_graph", "knn_graph_reference", "fps", "fps_reference",
    "TrilinearPlan", "sparse_trilinear", "sparse_trilinear_reference", "painn_message", "painn_message_reference",
]
