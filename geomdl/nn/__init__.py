"""geomdl.nn"""
from geomdl.nn.tensor_products import ClebschGordanTensorProduct, GauntTensorProduct
