"""geomdl.nn"""
from geomdl.nn.tensor_products import (
    ClebschGordanTensorProduct,
    GauntConvolution,
    GauntManyBody,
    GauntSelfInteraction,
    GauntTensorProduct,
)
