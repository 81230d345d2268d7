"""geomdl.nn"""
from geomdl.nn.tensor_products import (
    ClebschGordanTensorProduct,
    GauntConvolution,
    GauntManyBody,
    GauntSelfInteraction,
    GauntTensorProduct,
)
from geomdl.nn.edge_conv import DynamicEdgeConv, EdgeConv
from geomdl.nn.egnn import EGNNLayer
from geomdl.nn.equivariant_conv import EquivariantConv
from geomdl.nn.gate import Gate
from geomdl.nn.message_passing import MessagePassing
from geomdl.nn.mlp import MLP
from geomdl.nn.norm import EquivariantLayerNorm
from geomdl.nn.painn import PaiNNLayer
from geomdl.nn.point_net import FeaturePropagation, GlobalSetAbstraction, PointNetConv, SetAbstraction, knn_interpolate
