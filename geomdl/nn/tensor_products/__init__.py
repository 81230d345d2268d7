"""Tensor products: exact Clebsch-Gordan (all paths) and the Gaunt tensor product, plus the three uses
of the Gaunt product as layers (feature interaction, convolution, many-body interaction)."""
from geomdl.nn.tensor_products.clebsch_gordan import ClebschGordanTensorProduct, allowed_paths
from geomdl.nn.tensor_products.convolution import GauntConvolution
from geomdl.nn.tensor_products.gaunt import GauntTensorProduct
from geomdl.nn.tensor_products.interaction import GauntSelfInteraction
from geomdl.nn.tensor_products.many_body import GauntManyBody

__all__ = ["ClebschGordanTensorProduct", "GauntConvolution", "GauntManyBody", "GauntSelfInteraction",
           "GauntTensorProduct", "allowed_paths"]
