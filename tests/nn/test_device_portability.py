"""Every public layer and model gives the same numbers on every device: CPU against CUDA.

Each case builds a small module in float64 on the CPU with a fixed seed, runs a deep copy of it on the CPU
(the reference) and another on ``device`` (forward, then backward of the sum of the outputs; forces where the
model is a potential) and checks that (a) every output and every parameter (and input) gradient lies on
``device`` and (b) it matches the CPU result within float64 tolerances. On a machine without a GPU the
comparison is CPU against CPU (cheap; it proves the harness runs every case); with a GPU it is the real check
of the layers' device handling (tensors created without ``device=``, buffers not moved by ``.to``, caches
keyed without the device, CPU generators) and of the CUDA kernels inside them (``benchmarks/gpu_session.sh``
runs this file).

Tolerances: ``rtol=1e-9, atol=1e-10`` everywhere. The CUDA scatter/index_add kernels add with atomics in any
order and cuSOLVER/cuBLAS round differently from LAPACK/BLAS, which moves float64 results by a few ulps per
operation; these small networks stay far inside the tolerance (a device bug gives O(1) differences or an error).
"""
from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace

import pytest
import torch
from torch import nn

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
RTOL, ATOL = 1e-9, 1e-10


# ---------------------------------------------------------------------------------------------------------------
# harness
# ---------------------------------------------------------------------------------------------------------------


class Fn(nn.Module):
    """A plain function as a module without parameters (so that functions run through the same harness)."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


def to_device(obj, device):
    """``obj`` with every tensor on ``device``; leaf tensors that require grad stay leaves that require grad."""
    if isinstance(obj, torch.Tensor):
        out = obj.detach().to(device)
        return out.requires_grad_(True) if obj.requires_grad else out
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    if isinstance(obj, SimpleNamespace):
        return SimpleNamespace(**{k: to_device(v, device) for k, v in vars(obj).items()})
    return obj


def tensors_of(obj) -> list[torch.Tensor]:
    """The tensors of an output (tensor, dict, list/tuple, named tuple or dataclass), in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors_of(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors_of(v)]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return [t for f in dataclasses.fields(obj) for t in tensors_of(getattr(obj, f.name))]
    return []


def input_leaves(obj) -> list[torch.Tensor]:
    return [t for t in tensors_of(list(obj) if isinstance(obj, tuple) else obj) if t.requires_grad and t.is_leaf]


def run_on(module: nn.Module, call, inputs: tuple, device: str, backward: bool):
    """Forward (and backward of the sum of all outputs that require grad) of a copy of ``module`` on ``device``.
    Returns ``(outputs, gradients)`` with gradients keyed by parameter name (and ``input<k>`` for inputs)."""
    m = copy.deepcopy(module).to(device)
    args = to_device(inputs, device)
    outs = tensors_of(call(m, *args))
    grads = {}
    if backward:
        loss = sum(t.sum() for t in outs if t.is_floating_point() and t.requires_grad)
        assert isinstance(loss, torch.Tensor), "nothing to differentiate: the case is wrong"
        loss.backward()
        grads = {name: p.grad for name, p in m.named_parameters() if p.grad is not None}
        grads.update({f"input{k}": t.grad for k, t in enumerate(input_leaves(args)) if t.grad is not None})
    return outs, grads


def check_portable(module: nn.Module, call, inputs: tuple, device: str, backward: bool = True, rtol: float = RTOL,
                   atol: float = ATOL) -> None:
    """Outputs and gradients on ``device`` lie there and equal the CPU ones (see the module docstring)."""
    ref_out, ref_grad = run_on(module, call, inputs, "cpu", backward)
    out, grad = run_on(module, call, inputs, device, backward)
    assert len(out) == len(ref_out) and out, "the outputs differ in number (or there are none)"
    for k, (a, b) in enumerate(zip(out, ref_out)):
        assert a.device.type == device, f"output {k} is on {a.device}, expected {device}"
        assert a.shape == b.shape and a.dtype == b.dtype, f"output {k}: {a.dtype} {tuple(a.shape)} vs {b.dtype} {tuple(b.shape)}"
        torch.testing.assert_close(a.detach().cpu(), b.detach(), rtol=rtol, atol=atol, equal_nan=True,
                                   msg=lambda m, k=k: f"output {k}: {m}")
    if backward:
        assert grad.keys() == ref_grad.keys(), f"gradients of {sorted(grad)} on {device}, of {sorted(ref_grad)} on cpu"
        assert ref_grad, "no gradient at all: the case is wrong"
        for name, g in grad.items():
            assert g.device.type == device, f"gradient of {name} is on {g.device}, expected {device}"
            torch.testing.assert_close(g.cpu(), ref_grad[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"grad {n}: {m}")


def cloud(n: int, seed: int = 0, scale: float = 1.0, dim: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g, dtype=torch.float64) * scale


def features(*shape, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


def full_graph(n: int) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    return torch.stack([j[keep], i[keep]])


def two_clouds(n1: int, n2: int, seed: int = 0, scale: float = 1.0):
    pos = cloud(n1 + n2, seed, scale)
    batch = torch.cat([torch.zeros(n1, dtype=torch.long), torch.ones(n2, dtype=torch.long)])
    return pos, batch


def unit_rows(t: torch.Tensor) -> torch.Tensor:
    return t / t.norm(dim=-1, keepdim=True)


# ---------------------------------------------------------------------------------------------------------------
# cases: name -> () -> (module, call, inputs[, options])
# ---------------------------------------------------------------------------------------------------------------


def _mlp():
    from geomdl.nn import MLP

    return MLP([5, 8, 3]), lambda m, x: m(x), (features(7, 5),)


def _egnn_layer():
    from geomdl.nn import EGNNLayer

    n = 8
    ei = full_graph(n)
    return (EGNNLayer(4, edge_channels=2, attention=True, normalize=True, tanh=True), lambda m, *a: m(*a),
            (features(n, 4), cloud(n), ei, features(ei.shape[1], 2, seed=3)))


def _painn_layer():
    from geomdl.nn import PaiNNLayer

    n = 8
    return (PaiNNLayer(4, num_rbf=6, cutoff=4.0), lambda m, *a: m(*a),
            (features(n, 4), features(n, 4, 3, seed=2), cloud(n), full_graph(n)))


def _equivariant_conv(product):
    def make():
        from geomdl.nn import EquivariantConv

        irreps = "4x0e+2x1o" if product == "cg" else "4x0e+4x1o+4x2e"
        out = "4x0e+2x1o+2x2e" if product == "cg" else "4x0e+4x1o+4x2e"
        conv = EquivariantConv(irreps, out, lmax_sh=2, num_basis=4, cutoff=4.0, radial_hidden=8, product=product)
        n = 8
        return conv, lambda m, *a: m(*a), (features(n, conv.irreps_in.dim), cloud(n), full_graph(n))
    return make


def _cg_product(mode, external):
    def make():
        from geomdl.nn import ClebschGordanTensorProduct

        # CPU: the compiled sparse kernel; CUDA: the per-path einsums (KERNEL_DEVICES): two code paths compared
        out = "2x0e+2x1o+2x1e+2x2e" if mode == "uvw" else "2x0e+2x1o+2x1e+2x2e+2x0o"
        tp = ClebschGordanTensorProduct("2x0e+2x1o", "1x0e+1x1o+1x2e", out, mode=mode, internal_weights=not external)
        x, y = features(6, tp.irreps_in1.dim), features(6, tp.irreps_in2.dim, seed=2)
        if external:
            return tp, lambda m, *a: m(*a), (x, y, features(6, tp.weight_numel, seed=3).requires_grad_())
        return tp, lambda m, *a: m(*a), (x.requires_grad_(), y)
    return make


def _gaunt_product(parity="natural", method="auto"):
    def make():
        from geomdl.nn import GauntTensorProduct

        if parity == "full":
            tp = GauntTensorProduct("2x0e+2x1o", "1x0e+1x1o+1x1e", "2x0e+2x1o+2x1e+2x0o", parity="full", method=method)
        else:
            tp = GauntTensorProduct("3x0e+3x1o+3x2e", "1x0e+1x1o+1x2e", "3x0e+3x1o+3x2e", method=method)
        x = features(5, tp.irreps_in1.dim).requires_grad_()
        y = features(5, tp.irreps_in2.dim, seed=2)
        w2 = features(5, tp.channels, tp.lmax2 + 1, seed=3)
        return tp, lambda m, *a: m(a[0], a[1], weight2=a[2]), (x, y, w2)
    return make


def _gaunt_self_interaction():
    from geomdl.nn import GauntSelfInteraction

    layer = GauntSelfInteraction("3x0e+3x1o+3x2e")
    return layer, lambda m, x: m(x), (features(5, layer.irreps.dim),)


def _gaunt_convolution():
    from geomdl.nn import GauntConvolution

    conv = GauntConvolution("3x0e+3x1o", "3x0e+3x1o+3x2e", num_basis=4, cutoff=4.0, radial_hidden=8)
    n = 7
    return conv, lambda m, *a: m(*a), (features(n, conv.irreps_in.dim), cloud(n).requires_grad_(), full_graph(n))


def _gaunt_many_body():
    from geomdl.nn import GauntManyBody

    layer = GauntManyBody("3x0e+3x1o+3x2e", correlation=3, num_elements=2)
    return layer, lambda m, *a: m(*a), (features(6, layer.irreps_in.dim), torch.tensor([0, 1, 1, 0, 1, 0]))


def _gate():
    from geomdl.nn import Gate

    gate = Gate("3x0e+2x0o", "2x1o+1x2e")
    return gate, lambda m, x: m(x), (features(6, gate.irreps_in.dim).requires_grad_(),)


def _layer_norm():
    from geomdl.nn import EquivariantLayerNorm

    norm = EquivariantLayerNorm("3x0e+2x1o+1x2e")
    return norm, lambda m, x: m(x), (features(6, norm.irreps.dim),)


def _point_net_conv():
    from geomdl.nn import PointNetConv

    pos, dst = cloud(9), cloud(4, seed=5)
    src, tgt = torch.meshgrid(torch.arange(9), torch.arange(4), indexing="ij")
    ei = torch.stack([src.reshape(-1), tgt.reshape(-1)])
    return (PointNetConv(3, 5, hidden_channels=(8,)), lambda m, *a: m(a[0], a[1], a[2], pos_dst=a[3]),
            (features(9, 3), pos, ei, dst))


def _set_abstraction():
    from geomdl.nn import SetAbstraction

    pos, batch = two_clouds(12, 9)
    return (SetAbstraction(3, 6, ratio=0.5, r=1.5, hidden_channels=(8,)), lambda m, *a: m(*a),
            (features(21, 3), pos, batch))


def _global_set_abstraction():
    from geomdl.nn import GlobalSetAbstraction

    pos, batch = two_clouds(10, 7, scale=2.0)
    return GlobalSetAbstraction(3, 6, hidden_channels=(8,)), lambda m, *a: m(*a), (features(17, 3), pos, batch)


def _feature_propagation():
    from geomdl.nn import FeaturePropagation

    pos_c, batch_c = two_clouds(4, 3, seed=4)
    pos_f, batch_f = two_clouds(10, 8)
    return (FeaturePropagation(4, 3, 6, hidden_channels=(8,), k=3), lambda m, *a: m(*a),
            (features(7, 4), pos_c, batch_c, features(18, 3, seed=2), pos_f, batch_f))


def _knn_interpolate():
    from geomdl.nn import knn_interpolate

    pos_c, batch_c = two_clouds(5, 4, seed=4)
    pos_f, batch_f = two_clouds(10, 8)
    return Fn(knn_interpolate), lambda m, *a: m(*a, k=3), (features(9, 4).requires_grad_(), pos_c, pos_f, batch_c, batch_f)


def _edge_conv():
    from geomdl.nn import EdgeConv

    return EdgeConv(3, 5, hidden_channels=(8,)), lambda m, *a: m(*a), (features(8, 3), full_graph(8))


def _dynamic_edge_conv():
    from geomdl.nn import DynamicEdgeConv

    _, batch = two_clouds(10, 8)
    return DynamicEdgeConv(3, 5, k=4, hidden_channels=(8,)), lambda m, *a: m(*a), (features(18, 3), batch)


def _molecule(n1=6, n2=5, scale=1.2):
    pos, batch = two_clouds(n1, n2, seed=7, scale=scale)
    z = torch.tensor([1, 6, 8, 1, 6, 1, 8, 6, 1, 1, 6][: n1 + n2])
    return z, pos, batch


def _energy_and_forces(m, z, pos, batch):
    return m.energy_and_forces(z, pos, batch, create_graph=True)  # forces differentiable: backward of E and F


def _egnn_model():
    from geomdl.models.egnn import EGNN

    return EGNN(hidden_channels=8, num_layers=2, cutoff=3.0, num_rbf=4, num_elements=10), _energy_and_forces, _molecule()


def _painn_model():
    from geomdl.models.painn import PaiNN

    model = PaiNN(out_channels=2, hidden_channels=8, num_layers=2, cutoff=3.0, num_rbf=6, num_elements=10, target_mean=0.5)
    return model, lambda m, *a: m(*a), _molecule()


def _nequip(product):
    def make():
        from geomdl.models.nequip import NequIP

        model = NequIP(hidden_channels=4, num_layers=2, lmax=1, cutoff=3.0, num_basis=4, radial_hidden=8,
                       num_elements=10, product=product)
        return model, _energy_and_forces, _molecule()
    return make


def _point_model(name):
    def make():
        from geomdl.models.dgcnn import DGCNN
        from geomdl.models.pointnet import PointNet
        from geomdl.models.pointnet2 import PointNet2

        pos, batch = two_clouds(14, 12)
        model = {"pointnet": lambda: PointNet(3, in_channels=2, local_channels=(8,), global_channels=(16,), head_channels=(8,)),
                 "pointnet2": lambda: PointNet2(3, in_channels=2, ratios=(0.5,), radii=(1.5,), sa_channels=((8, 8),),
                                                global_channels=(16,), head_channels=(8,)),
                 "pointnet2_node": lambda: PointNet2(3, in_channels=2, ratios=(0.5,), radii=(1.5,), sa_channels=((8, 8),),
                                                     global_channels=(16,), fp_channels=(8, 8), head_channels=(8,),
                                                     task="node"),
                 "dgcnn": lambda: DGCNN(3, in_channels=2, k=4, conv_channels=(8, 8), emb_channels=16, head_channels=(8,))}[name]()
        return model.eval(), lambda m, *a: m(a[0], a[1], a[2]), (pos, features(26, 2), batch)
    return make


def _tiny_pointnet():
    from geomdl.models.tiny_pointnet import TinyPointNet

    pos, batch = two_clouds(9, 6)
    return TinyPointNet(out_channels=3, in_channels=2, hidden_channels=8), lambda m, d: m(d), \
        (SimpleNamespace(pos=pos, x=features(15, 2), batch=batch),)


def _ponita(mode, dim=3, radius=None):
    def make():
        from geomdl.nn.ponita import Ponita

        pos, batch = two_clouds(6, 5, scale=1.3)
        pos = pos[:, :dim].contiguous()
        x, vec = features(11, 2), features(11, 1, dim, seed=2)
        num_ori = {"positions": 0, "point_cloud": -1, "lifted": -1, "grid": 6 if dim == 3 else 4}[mode]
        model = Ponita(2, out_scalars=2, out_vectors=1, in_vectors=0 if mode == "positions" else 1, hidden=8, layers=2,
                       num_ori=num_ori, dim=dim, radius=radius, basis_dim=6, widening=2)
        if mode == "point_cloud":  # given orientations
            ori = unit_rows(features(11, dim, seed=3))
            return model, lambda m, *a: m(a[0], a[1], a[2], batch=a[3], ori=a[4]), (pos.requires_grad_(), x, vec, batch, ori)
        if mode == "positions":
            return model, lambda m, *a: m(a[0], a[1], batch=a[2]), (pos.requires_grad_(), x, batch)
        return model, lambda m, *a: m(a[0], a[1], a[2], batch=a[3]), (pos.requires_grad_(), x, vec, batch)
    return make


def _ponita_potential():
    # covers the float64 energy_shift buffer kept by PonitaPotential._apply and the float64 grid kept by
    # Ponita._apply after .to(device), and the shift sum allocated on pos.device in energy()
    from geomdl.nn.ponita import PonitaPotential

    model = PonitaPotential([1, 6, 8], hidden=8, layers=2, num_ori=4, radius=3.0, basis_dim=6, widening=2)
    model.energy_shift.copy_(torch.tensor([-13.6, -1029.5, -2042.1], dtype=torch.float64))
    model.energy_scale.fill_(0.7)
    z, pos, batch = _molecule()
    return model, lambda m, *a: m(*a, create_graph=True), (z, pos, batch)


def _ponita_graph_model():
    from geomdl.models.ponita import PonitaGraph

    z, pos, batch = _molecule()
    data = SimpleNamespace(z=z, pos=pos, batch=batch, num_graphs=2)
    model = PonitaGraph(out_channels=2, atomic_numbers=(1, 6, 8), hidden=8, layers=1, num_ori=0, basis_dim=6)
    return model, lambda m, d: m(d), (data,)


def _ponita_energy_model():
    from geomdl.models.ponita import PonitaEnergy

    z, pos, batch = _molecule()
    data = SimpleNamespace(z=z, pos=pos, batch=batch, num_graphs=2)
    model = PonitaEnergy(atomic_numbers=(1, 6, 8), energy_shifts=[-0.5, -37.8, -75.0], energy_scale=0.3, hidden=8,
                         layers=1, num_ori=4, basis_dim=6)
    return model, lambda m, d: m(d), (data,)


def _cube_and_cloud():
    corners = torch.tensor([[x, y, z] for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)], dtype=torch.float64)
    pos = torch.cat([corners * 0.8 + 0.3, cloud(9, seed=2) * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)])
    return pos, torch.cat([torch.zeros(8, dtype=torch.long), torch.ones(9, dtype=torch.long)])


def _tinv_net(degenerate):
    def make():
        from geomdl.models.tiny_pointnet import TinyPointNet
        from geomdl.nn.tinv import TinvNet

        if degenerate == "average":  # a cube (3-fold eigenvalue: frames on the device) and a generic cloud
            pos, batch = _cube_and_cloud()
        else:
            pos, batch = two_clouds(10, 8)
            pos = pos * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
        net = TinvNet(TinyPointNet(out_channels=3, hidden_channels=8), degenerate=degenerate)
        return net, lambda m, d: m(d), (SimpleNamespace(pos=pos, batch=batch),)
    return make


def _mds(route):
    def make():
        from geomdl.nn.tinv import mds_embedding

        if route == "positions":
            pos, batch = two_clouds(10, 8)
            pos = (pos * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)).requires_grad_()
            return Fn(mds_embedding), lambda m, p, b: m(p, 3, b), (pos, batch)
        mats = [torch.cdist(p, p) for p in (cloud(7, seed=1) * 2, cloud(9, seed=2))]
        return Fn(mds_embedding), lambda m, *d: m(distances=list(d), dim=2), tuple(mats)
    return make


def _apen(kind):
    def make():
        from geomdl.nn.apen import APEN, GlobalFrameAveragedNet

        pos, batch = two_clouds(14, 12)
        if kind == "global":
            model = GlobalFrameAveragedNet(3, hidden=8, num_layers=2)
        else:
            model = APEN(3, hidden=8, num_layers=2, initial_parts=4, sigmas=(0.5,), reflections=kind != "proper",
                         task="classification" if kind == "classification" else "segmentation")
        return model, lambda m, *a: m(*a), (pos, batch)
    return make


def _tsp_edge_net():
    from geomdl.models.tinv_tsp import TSPEdgeNet

    g = torch.Generator().manual_seed(3)
    return TSPEdgeNet(hidden_channels=8, num_layers=2), lambda m, p: m(p), (torch.rand(2, 8, 2, generator=g, dtype=torch.float64),)


CASES = {
    "mlp": _mlp,
    "egnn_layer": _egnn_layer,
    "painn_layer": _painn_layer,
    "equivariant_conv_cg": _equivariant_conv("cg"),
    "equivariant_conv_gaunt": _equivariant_conv("gaunt"),
    "cg_product_uvw": _cg_product("uvw", external=False),
    "cg_product_uvu_external_weights": _cg_product("uvu", external=True),
    "gaunt_product": _gaunt_product(),
    "gaunt_product_fft": _gaunt_product(method="fft"),
    "gaunt_product_full_parity": _gaunt_product(parity="full"),
    "gaunt_self_interaction": _gaunt_self_interaction,
    "gaunt_convolution": _gaunt_convolution,
    "gaunt_many_body": _gaunt_many_body,
    "gate": _gate,
    "equivariant_layer_norm": _layer_norm,
    "point_net_conv": _point_net_conv,
    "set_abstraction": _set_abstraction,
    "global_set_abstraction": _global_set_abstraction,
    "feature_propagation": _feature_propagation,
    "knn_interpolate": _knn_interpolate,
    "edge_conv": _edge_conv,
    "dynamic_edge_conv": _dynamic_edge_conv,
    "egnn_model_forces": _egnn_model,
    "painn_model": _painn_model,
    "nequip_cg_forces": _nequip("cg"),
    "nequip_gaunt_forces": _nequip("gaunt"),
    "pointnet": _point_model("pointnet"),
    "pointnet2": _point_model("pointnet2"),
    "pointnet2_segmentation": _point_model("pointnet2_node"),
    "dgcnn": _point_model("dgcnn"),
    "tiny_pointnet": _tiny_pointnet,
    "ponita_positions": _ponita("positions"),
    "ponita_positions_radius": _ponita("positions", radius=2.5),
    "ponita_point_cloud_with_ori": _ponita("point_cloud"),
    "ponita_point_cloud_lifted": _ponita("lifted"),
    "ponita_point_cloud_lifted_radius": _ponita("lifted", radius=2.5),
    "ponita_grid": _ponita("grid"),
    "ponita_grid_radius": _ponita("grid", radius=2.5),
    "ponita_grid_2d": _ponita("grid", dim=2),
    "ponita_potential_forces": _ponita_potential,
    "ponita_graph_model": _ponita_graph_model,
    "ponita_energy_model": _ponita_energy_model,
    "tinv_net": _tinv_net("pick"),
    "tinv_net_frame_average": _tinv_net("average"),
    "mds_positions": _mds("positions"),
    "mds_distances": _mds("distances"),
    "apen": _apen("segmentation"),
    "apen_proper_frames": _apen("proper"),
    "apen_classification": _apen("classification"),
    "apen_global": _apen("global"),
    "tsp_edge_net": _tsp_edge_net,
}

NO_BACKWARD = {"mds_distances"}  # distances are data here (no input requires grad, no parameters)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_cpu_on_device(name, device, float64):
    torch.manual_seed(0)
    module, call, inputs = CASES[name]()
    check_portable(module, call, inputs, device, backward=name not in NO_BACKWARD)


# ---------------------------------------------------------------------------------------------------------------
# o3 functions and other device-sensitive helpers
# ---------------------------------------------------------------------------------------------------------------


def _o3_cases():
    from geomdl import o3

    grid = o3.sphere_quadrature(6)
    return {
        "spherical_harmonics": (lambda v: o3.spherical_harmonics(4, v), (cloud(6).requires_grad_(),)),
        "gaunt_product_dft": (lambda a, b: o3.gaunt_product(a, b, 3, method="dft"),
                              (features(5, 9).requires_grad_(), features(5, 16, seed=2).requires_grad_())),
        "gaunt_product_fft": (lambda a, b: o3.gaunt_product(a, b, 3, method="fft"),
                              (features(5, 9).requires_grad_(), features(5, 16, seed=2).requires_grad_())),
        "gaunt_product_columns": (lambda a, b: o3.gaunt_product_columns(a, b, 2),
                                  (features(9, 6).requires_grad_(), features(4, 6, seed=2).requires_grad_())),
        "gaunt_powers": (lambda x: o3.gaunt_powers(x, 3, 2), (features(4, 9).requires_grad_(),)),
        "sphere_grid_roundtrip": (lambda c: o3.grid_to_sh(o3.sh_to_grid(c, grid), grid, 2), (features(3, 9).requires_grad_(),)),
        "fourier_roundtrip": (lambda x: o3.fourier_to_sh(o3.sh_to_fourier(x), 2), (features(3, 9).requires_grad_(),)),
        "clebsch_gordan_on_device": (lambda x: x @ o3.clebsch_gordan(1, 1, 2, dtype=x.dtype, device=x.device).reshape(3, 15),
                                     (features(4, 3).requires_grad_(),)),
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["spherical_harmonics", "gaunt_product_dft", "gaunt_product_fft", "gaunt_product_columns",
                                  "gaunt_powers", "sphere_grid_roundtrip", "fourier_roundtrip", "clebsch_gordan_on_device"])
def test_o3_function_matches_cpu_on_device(name, device):
    fn, inputs = _o3_cases()[name]
    check_portable(Fn(fn), lambda m, *a: m(*a), inputs, device)


@pytest.mark.parametrize("device", DEVICES)
def test_fit_energy_shifts_on_device(device):
    """Covers the fix in geomdl/nn/ponita/potential.py: ``torch.linalg.lstsq(driver="gelsd")`` has no CUDA
    implementation; the shifts are solved on the CPU and returned on the device of ``counts`` (also for the
    rank-deficient case, a single composition, where CUDA's ``gels`` would not give the minimum-norm solution)."""
    from geomdl.nn.ponita import fit_energy_shifts

    counts = torch.tensor([[2.0, 1.0, 0.0], [4.0, 2.0, 1.0], [6.0, 2.0, 1.0], [2.0, 1.0, 1.0]], dtype=torch.float64)
    energies = counts @ torch.tensor([-0.5, -37.8, -75.0], dtype=torch.float64)
    for c, e in ((counts, energies), (counts[:1], energies[:1])):
        ref = fit_energy_shifts(c, e)
        out = fit_energy_shifts(c.to(device), e.to(device))
        assert out.device.type == device and out.dtype == torch.float64
        torch.testing.assert_close(out.cpu(), ref, rtol=0, atol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_piecewise_motion_from_a_cpu_generator_on_device(device, float64):
    """APEN's measure draws its motions from a CPU generator and applies them on the points' device: the same
    seed gives the same motion on every device."""
    from geomdl.nn.apen import random_piecewise_motion

    pos, part = cloud(12), torch.tensor([0] * 5 + [1] * 4 + [2] * 3)
    ref = random_piecewise_motion(pos, part, torch.Generator().manual_seed(4))
    out = random_piecewise_motion(pos.to(device), part.to(device), torch.Generator().manual_seed(4))
    for a, b in zip(out, ref):
        assert a.device.type == device
        torch.testing.assert_close(a.cpu(), b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("device", DEVICES)
def test_ponita_grid_override_from_the_cpu_on_device(device, float64):
    """A co-rotated grid override ``grid = G R^T`` built on the CPU (e.g. from ``model.grid.cpu()``) is moved to
    the points' device by the grid forward, as the model's own buffer is."""
    from geomdl.nn.ponita import Ponita

    torch.manual_seed(0)
    model = Ponita(2, out_scalars=2, out_vectors=1, hidden=8, layers=1, num_ori=6, basis_dim=6, widening=2)
    pos, batch = two_clouds(6, 5, scale=1.3)
    x = features(11, 2)
    grid = model.grid.flip(0).clone()  # a CPU float64 grid, different from the buffer
    ref = model(pos, x, batch=batch, grid=grid)
    out = copy.deepcopy(model).to(device)(pos.to(device), x.to(device), batch=batch.to(device), grid=grid)
    for a, b in zip(out, ref):
        assert a.device.type == device
        torch.testing.assert_close(a.cpu(), b, rtol=RTOL, atol=ATOL)
