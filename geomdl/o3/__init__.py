"""E(3) maths without weights: irreps (from e3nn), real spherical harmonics, Wigner D, real
Clebsch-Gordan and Gaunt coefficients, sphere quadrature, the SH <-> 2D-Fourier change of basis and the
Gaunt product (methods.md section 2). Conventions: e3nn's real basis (y polar axis, ``m = -l..l``)."""
from e3nn.o3 import Irrep, Irreps, rand_matrix

from geomdl.o3.clebsch_gordan import (
    clebsch_gordan,
    natural_irreps,
    real_to_complex_basis,
    su2_clebsch_gordan_coefficient,
    wigner_D,
    wigner_D_from_matrix,
)
from geomdl.o3.fourier import (
    fourier_convolve,
    fourier_to_sh,
    fourier_to_sh_matrix,
    sh_to_fourier,
    sh_to_fourier_matrix,
    torus_points,
)
from geomdl.o3.gaunt import (
    gaunt_cg_constant,
    gaunt_coefficients,
    gaunt_output_normalization,
    gaunt_paths,
    wigner_3j_000,
)
from geomdl.o3.gaunt_plans import fast_fft_size, grid_sizes
from geomdl.o3.gaunt_powers import gaunt_powers, gaunt_powers_columns
from geomdl.o3.gaunt_product import gaunt_product, gaunt_product_columns
from geomdl.o3 import gaunt_ops  # noqa: F401  (registers the operators torch.compile calls)
from geomdl.o3.sphere_grids import SphereGrid, gauss_legendre_grid, grid_to_sh, sh_to_grid, sphere_quadrature
from geomdl.o3.spherical_harmonics import lmax_from_dim, sh_dim, spherical_harmonics, unit_vectors

__all__ = [
    "Irrep", "Irreps", "rand_matrix",
    "clebsch_gordan", "natural_irreps", "real_to_complex_basis", "su2_clebsch_gordan_coefficient",
    "wigner_D", "wigner_D_from_matrix",
    "fourier_convolve", "fourier_to_sh", "fourier_to_sh_matrix", "sh_to_fourier", "sh_to_fourier_matrix",
    "torus_points",
    "gaunt_cg_constant", "gaunt_coefficients", "gaunt_output_normalization", "gaunt_paths", "wigner_3j_000",
    "fast_fft_size", "grid_sizes", "gaunt_powers", "gaunt_powers_columns", "gaunt_product", "gaunt_product_columns",
    "SphereGrid", "gauss_legendre_grid", "grid_to_sh", "sh_to_grid", "sphere_quadrature",
    "lmax_from_dim", "sh_dim", "spherical_harmonics", "unit_vectors",
]
