import pytest
import torch
from e3nn import o3
from layer_checks import state_dict_roundtrip

from geomdl.nn.gate import Gate
from geomdl.nn.norm import EquivariantLayerNorm
from geomdl.testing import assert_equivariant, equivariance_error


def test_gate_equivariant_with_odd_scalars_and_all_parities():
    gate = Gate("4x0e+2x0o", "3x1o+2x1e+1x2e+1x2o")
    x = gate.irreps_in.randn(5, -1, dtype=torch.float64)
    assert gate.irreps_out == o3.Irreps("4x0e+2x0o+3x1o+2x1e+1x2e+1x2o")
    assert_equivariant(gate, x, f"irreps:{gate.irreps_in}", f"irreps:{gate.irreps_out}")


def test_gate_values():
    gate = Gate("1x0e", "1x1o")
    x = torch.tensor([[-1.0, 2.0, 1.0, 2.0, 3.0]], dtype=torch.float64)
    out = gate(x)
    torch.testing.assert_close(out[0, 0], torch.nn.functional.silu(x[0, 0]))
    torch.testing.assert_close(out[0, 1:], torch.sigmoid(x[0, 1]) * x[0, 2:])


def test_gate_negative_control_even_activation_on_odd_scalars_breaks_parity():
    gate = Gate("2x0o", "")
    gate.act_odd = torch.nn.functional.silu  # not odd: must break the reflection case
    x = gate.irreps_in.randn(4, -1, dtype=torch.float64)
    errs = equivariance_error(gate, x, f"irreps:{gate.irreps_in}", f"irreps:{gate.irreps_out}")
    assert errs["rotation"] < 1e-12 and errs["reflection"] > 1e-3


def test_gate_gradcheck_and_errors():
    gate = Gate("2x0e", "2x1o")
    x = gate.irreps_in.randn(3, -1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(gate, (x,))
    with pytest.raises(ValueError, match="act_odd"):
        Gate("1x0o", "", act_odd="silu")
    with pytest.raises(ValueError, match="only l=0"):
        Gate("1x1o", "")
    with pytest.raises(ValueError, match="irreps_gated"):
        Gate("1x0e", "not irreps")
    with pytest.raises(ValueError, match=r"shape \[\.\.\., 10\]"):
        gate(torch.randn(3, 4))
    with pytest.raises(TypeError, match="x must be a floating tensor.*torch.int64"):
        gate(torch.zeros(3, 10, dtype=torch.long))


def test_layer_norm_equivariant_and_normalises():
    irreps = "4x0e+2x0o+3x1o+2x2e"
    norm = EquivariantLayerNorm(irreps)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
        norm.bias.normal_()
    x = o3.Irreps(irreps).randn(6, -1, dtype=torch.float64) * 7.0
    assert_equivariant(norm, x, f"irreps:{irreps}", f"irreps:{irreps}")
    plain = EquivariantLayerNorm(irreps, affine=False).double()
    y = plain(x)
    vec = y[:, 4 + 2:4 + 2 + 9].reshape(6, 3, 3)
    torch.testing.assert_close(vec.pow(2).mean(dim=(1, 2)), torch.ones(6, dtype=torch.float64), atol=1e-4, rtol=0)
    torch.testing.assert_close(y[:, :4].mean(1), torch.zeros(6, dtype=torch.float64), atol=1e-12, rtol=0)


def test_layer_norm_gradcheck_roundtrip():
    irreps = "2x0e+1x1o"
    x = o3.Irreps(irreps).randn(3, -1, dtype=torch.float64, requires_grad=True)
    norm = EquivariantLayerNorm(irreps).double()
    assert torch.autograd.gradcheck(norm, (x,))

    def make():
        m = EquivariantLayerNorm(irreps).double()
        with torch.no_grad():
            m.weight.normal_()
            m.bias.normal_()
        return m

    state_dict_roundtrip(make, lambda m: m(x.detach()))
    with pytest.raises(ValueError, match="eps"):
        EquivariantLayerNorm(irreps, eps=0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(eps=float("inf")), r"eps must be a finite number > 0, got inf"),  # every output was 0 (or the bias)
    (dict(eps="a"), r"eps must be a finite number > 0, got 'a'"),            # was a bare TypeError from '>'
    (dict(affine="no"), r"affine must be a bool \(True or False\), got 'no'"),  # read as True
    (dict(center_scalars=2), r"center_scalars must be a bool \(True or False\), got 2"),
])
def test_layer_norm_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EquivariantLayerNorm("2x0e+1x1o", **kwargs)
