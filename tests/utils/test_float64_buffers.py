"""geomdl.utils.devices.Float64Buffers: the constants of PONITA (grid, energy shifts) and of the CG product stay
float64 through casts, and a cast back gives the exact original (not a rounded copy)."""
import pytest
import torch

from geomdl.nn.ponita import Ponita, PonitaPotential
from geomdl.nn.tensor_products import ClebschGordanTensorProduct


def _cases():
    potential = PonitaPotential([1, 6, 8], hidden=8, layers=1, num_ori=4, radius=2.0)
    potential.energy_shift.copy_(torch.tensor([-13.6056931, -1029.863, -2042.6112], dtype=torch.float64))
    return [(Ponita(1, 1, hidden=8, layers=1, num_ori=6), ["grid"]),
            (potential, ["energy_shift", "net.grid"]),
            (ClebschGordanTensorProduct("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o", mode="uvw"), ["cg_0", "cg_1"])]


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("cast", ["float", "half", "bfloat16"])
def test_constants_stay_float64_and_exact_through_casts(case, cast):
    module, names = _cases()[case]
    before = {n: module.get_buffer(n).clone() for n in names}
    getattr(module, cast)()
    assert all(module.get_buffer(n).dtype == torch.float64 for n in names)
    assert next(module.parameters()).dtype == getattr(torch, {"float": "float32"}.get(cast, cast))  # the rest is cast
    module.double()
    for n in names:
        assert torch.equal(module.get_buffer(n), before[n]), n


def test_a_module_on_meta_keeps_float64_constants_when_cast():
    """On the meta device there is no float64 data to copy: the cast buffer is re-typed in place."""
    module = Ponita(1, 1, hidden=8, layers=1, num_ori=6).to("meta").float()
    assert module.grid.is_meta and module.grid.dtype == torch.float64
    assert module.embed.weight.is_meta and module.embed.weight.dtype == torch.float32
