"""PONITA: SE(n)-equivariant weight-sharing networks on positions and position-orientation space.

Public API: :class:`Ponita` (network, three modes by ``num_ori``), :class:`PonitaPotential` (energy +
forces), the layers (:class:`PointConv`, :class:`FiberBundleConv`, :class:`ConvNextBlock`,
:class:`PolynomialBasis`) and the maths as plain functions (invariants, grids, lifting).
"""
from geomdl.nn.ponita.conv import FiberBundleConv, PointConv, fiber_bundle_conv, point_conv
from geomdl.nn.ponita.convnext import ConvNextBlock
from geomdl.nn.ponita.edges import add_self_loops, build_edges, fully_connected_edges, remove_self_loops
from geomdl.nn.ponita.embedding import (PolynomialBasis, monomial_fold, polynomial_dim, polynomial_features,
                                        polynomial_monomials, smooth_cutoff)
from geomdl.nn.ponita.grids import (circle_grid, fibonacci_sphere, grid_moment_error, orientation_grid,
                                    repulsion_sphere)
from geomdl.nn.ponita.invariants import (invariant_fiber, invariant_fiber_spatial, invariant_point_cloud,
                                         invariant_rn, safe_norm)
from geomdl.nn.ponita.lifting import (LiftedGraph, lift_graph, lift_oriented, lift_to_grid, pool_to_base,
                                      read_out_grid, read_out_oriented)
from geomdl.nn.ponita.model import Ponita, count_parameters
from geomdl.nn.ponita.potential import PonitaPotential, fit_energy_shifts

__all__ = [
    "Ponita", "PonitaPotential", "fit_energy_shifts", "count_parameters",
    "PointConv", "FiberBundleConv", "ConvNextBlock", "PolynomialBasis", "point_conv", "fiber_bundle_conv",
    "polynomial_features", "polynomial_dim", "polynomial_monomials", "monomial_fold", "smooth_cutoff",
    "circle_grid", "fibonacci_sphere", "repulsion_sphere", "orientation_grid", "grid_moment_error",
    "invariant_rn", "invariant_point_cloud", "invariant_fiber_spatial", "invariant_fiber", "safe_norm",
    "lift_to_grid", "read_out_grid", "lift_oriented", "read_out_oriented", "lift_graph", "LiftedGraph",
    "pool_to_base", "fully_connected_edges", "add_self_loops", "remove_self_loops", "build_edges",
]
