import pytest
import torch
from e3nn import o3
from layer_checks import state_dict_roundtrip

from geomdl.nn.equivariant_conv import EquivariantConv
from geomdl.testing import assert_equivariant

CASES = [
    ("cg", "4x0e+2x1o+2x1e", "3x0e+2x1o+1x2e+1x1e+1x0o"),  # pseudo-tensors only reachable with CG
    ("gaunt", "3x0e+3x1o+3x2e", "2x0e+2x1o+2x2e"),
    ("gaunt", "2x0e+2x1o", "2x0e+1x1o+1x3o"),
]


def _full(n):
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return torch.stack([j[i != j], i[i != j]])


@pytest.mark.parametrize("product,irreps_in,irreps_out", CASES)
def test_o3_equivariance(float64, product, irreps_in, irreps_out):
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(6, 3, generator=g)
    conv = EquivariantConv(irreps_in, irreps_out, product=product, cutoff=4.0)
    x = torch.randn(6, o3.Irreps(irreps_in).dim, generator=g)
    out = conv(x, pos, _full(6))
    assert out.shape == (6, o3.Irreps(irreps_out).dim) and out.abs().sum() > 0
    assert_equivariant(conv, (x, pos, _full(6)), (f"irreps:{irreps_in}", "position", "edge_index"), f"irreps:{irreps_out}")


def test_messages_vanish_beyond_cutoff(float64):
    conv = EquivariantConv("2x0e+1x1o", "2x0e+1x1o", cutoff=1.0, self_connection=False)
    x = o3.Irreps("2x0e+1x1o").randn(2, -1)
    pos = torch.tensor([[0.0, 0, 0], [0.0, 0, 1.5]])
    assert conv(x, pos, _full(2)).abs().max() == 0


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_single_edge_vector_message_points_along_the_edge(float64, product):
    # a scalar source sends R(r) Y_1(r_hat) x_j: the l=1 output at the target is parallel to r_ij = p_j - p_i
    conv = EquivariantConv("1x0e", "1x0e+1x1o", product=product, self_connection=False, cutoff=3.0)
    pos = torch.tensor([[0.1, -0.2, 0.3], [0.9, 0.4, -0.5]])
    out = conv(torch.tensor([[1.3], [0.0]]), pos, torch.tensor([[0], [1]]))
    v = out[1, 1:4]
    r = pos[0] - pos[1]
    assert v.norm() > 1e-6
    torch.testing.assert_close(torch.cross(v, r, dim=0), torch.zeros(3), atol=1e-12, rtol=0)
    assert out[0].abs().max() == 0  # node 0 receives nothing


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_gradcheck_double_backward_and_roundtrip(float64, product):
    g = torch.Generator().manual_seed(2)
    pos = torch.randn(3, 3, generator=g)
    irreps = "1x0e+1x1o"
    x = torch.randn(3, o3.Irreps(irreps).dim, generator=g)
    conv = EquivariantConv(irreps, irreps, product=product, num_basis=4, radial_hidden=8, cutoff=3.0)
    e = _full(3)
    assert torch.autograd.gradcheck(lambda a, p: conv(a, p, e), (x.clone().requires_grad_(), pos.clone().requires_grad_()))
    assert torch.autograd.gradgradcheck(lambda p: conv(x, p, e).pow(2).sum(), (pos.clone().requires_grad_(),), fast_mode=True)
    state_dict_roundtrip(lambda: EquivariantConv(irreps, irreps, product=product, num_basis=4, radial_hidden=8, cutoff=3.0),
                         lambda m: m(x, pos, e))


def test_errors():
    with pytest.raises(ValueError, match="natural-parity"):
        EquivariantConv("2x0e+2x1e", "2x0e", product="gaunt")
    with pytest.raises(ValueError, match="natural-parity"):
        EquivariantConv("2x0e+2x1o", "2x1e", product="gaunt")
    with pytest.raises(ValueError, match="one multiplicity"):
        EquivariantConv("2x0e+3x1o", "2x0e", product="gaunt")
    with pytest.raises(ValueError, match="product"):
        EquivariantConv("2x0e", "2x0e", product="fft")
    with pytest.raises(ValueError, match="no tensor-product path"):
        EquivariantConv("2x0e", "2x3o", lmax_sh=1)
    conv = EquivariantConv("2x0e", "2x0e")
    with pytest.raises(ValueError, match=r"x must have shape \[N, 2\]"):
        conv(torch.randn(3, 5), torch.randn(3, 3), _full(3))


@pytest.mark.parametrize("product", ["cg", "gaunt"])
def test_runs_under_autocast(product):
    """Under autocast (train.amp) the radial weights come out of a Linear in bfloat16 while the features and
    spherical harmonics are float32; the CG product used to reject the mixed dtypes (ValueError)."""
    g = torch.Generator().manual_seed(0)
    irreps_in, irreps_out = "3x0e+3x1o+3x2e", "2x0e+2x1o+2x2e"
    conv = EquivariantConv(irreps_in, irreps_out, product=product, cutoff=4.0)
    pos, x = torch.randn(6, 3, generator=g), torch.randn(6, o3.Irreps(irreps_in).dim, generator=g)
    ref = conv(x, pos, _full(6))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x, pos, _full(6))
    assert torch.isfinite(out).all()
    assert float((out.float() - ref).detach().norm() / ref.detach().norm()) < 3e-2  # bfloat16 rounding of the radial weights


@pytest.mark.parametrize("kwargs, message", [
    (dict(avg_num_neighbors=float("inf")), r"avg_num_neighbors must be a finite number > 0, got inf"),  # zeroed every message
    (dict(avg_num_neighbors="a"), r"avg_num_neighbors must be a finite number > 0, got 'a'"),  # bare TypeError from '>'
    (dict(self_connection=2), r"self_connection must be a bool \(True or False\), got 2"),
])
def test_bad_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EquivariantConv("2x0e", "2x0e", **kwargs)


def test_avg_num_neighbors_may_be_a_zero_dim_tensor():
    assert EquivariantConv("2x0e", "2x0e", avg_num_neighbors=torch.tensor(12.5)).avg_num_neighbors == 12.5
