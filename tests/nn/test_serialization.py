"""Copies of layers (``copy.deepcopy``, ``pickle``, ``torch.save`` of the whole module, in this process or a
fresh one) compute what the original computes, and dtype round trips keep float64 constants exact.

The Clebsch-Gordan product's sparse kernel reaches its plan by an integer id of a per-process registry: a
copy must register its own plan, never run under its original's id (which may no longer exist, or in another
process belong to another layer's plan). A state_dict of a PONITA model for other elements is an error, not a
silent load (every shape fits)."""
import copy
import gc
import pickle
import subprocess
import sys

import pytest
import torch

from geomdl import ops
from geomdl.models.ponita import PonitaEnergy, PonitaGraph
from geomdl.nn import ClebschGordanTensorProduct
from geomdl.nn.ponita import PonitaPotential
from geomdl.ops.trilinear import TrilinearPlan, _plan, plan_op_id, sparse_trilinear

compiled = pytest.mark.skipif(not ops.has_kernel("sparse_trilinear"), reason="geomdl._C not built (reference mode)")

IRREPS = ("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o")
OTHER = ("2x0e+2x1e", "1x0e+1x1o", "2x0e+2x1o")  # same widths (8, 4, 8), other paths: another plan


def _inputs(dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, 8, generator=g, dtype=dtype), torch.randn(5, 4, generator=g, dtype=dtype)


def _layer(irreps=IRREPS, mode="uvu"):
    torch.manual_seed(0)
    return ClebschGordanTensorProduct(*irreps, mode=mode).double()


def test_copied_plan_registers_under_its_own_id():
    plan = TrilinearPlan(torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0]]), torch.tensor([1.0, 2.0]), (2, 2, 1, 1))
    a, b = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    w = torch.ones(1, 1, dtype=torch.float64)
    ref = sparse_trilinear(plan, a, b, w)
    for clone in (copy.deepcopy(plan), pickle.loads(pickle.dumps(plan))):
        pid = plan_op_id(clone)
        assert pid != plan_op_id(plan) and _plan(pid) is clone
        torch.testing.assert_close(sparse_trilinear(clone, a, b, w), ref, rtol=0, atol=0)


@compiled
@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_copy_of_cg_product_works_after_the_original_is_gone(how, tmp_path):
    x, y = _inputs()
    tp = _layer()
    with torch.no_grad():  # no autograd graph keeps the original's plan alive
        ref = tp(x, y)
        if how == "deepcopy":
            clone = copy.deepcopy(tp)
        elif how == "pickle":
            clone = pickle.dumps(tp)
        else:
            torch.save(tp, tmp_path / "tp.pt")
        del tp
        gc.collect()
        if how == "pickle":
            clone = pickle.loads(clone)
        elif how == "torch.save":
            clone = torch.load(tmp_path / "tp.pt", weights_only=False)
        torch.testing.assert_close(clone(x, y), ref, rtol=0, atol=0)


@compiled
def test_cg_product_saved_whole_runs_in_a_fresh_process(tmp_path):
    """The fresh process first builds another product of the same widths, which takes the ids the saved
    layer had here: the loaded layer must still compute its own product (it used to compute the other)."""
    x, y = _inputs()
    tp = _layer()
    ref = tp(x, y).detach()
    _layer(OTHER)(x, y)  # a second plan in this process too
    torch.save({"tp": tp, "x": x, "y": y, "ref": ref}, tmp_path / "tp.pt")
    code = f"""
import torch
from geomdl.nn import ClebschGordanTensorProduct
other = ClebschGordanTensorProduct(*{OTHER!r}, mode="uvu").double()
blob = torch.load({str(tmp_path / 'tp.pt')!r}, weights_only=False)
other(blob["x"], blob["y"])
torch.testing.assert_close(blob["tp"](blob["x"], blob["y"]), blob["ref"], rtol=0, atol=0)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


@pytest.mark.parametrize("mode", ["uvu", "uvw"])
def test_cg_buffers_stay_float64_through_float_and_back(mode):
    """``.float().double()`` used to round the CG tensors to float32 for good (the per-path einsums, used on
    other devices and with ``GEOMDL_KERNELS=reference``, then lost about 1e-8)."""
    tp = _layer(("4x0e+4x1o+4x2e", "1x0e+1x1o+1x2e", "4x0e+4x1o+4x2e"), mode)
    x, y = torch.randn(5, tp.irreps_in1.dim, dtype=torch.float64), torch.randn(5, tp.irreps_in2.dim, dtype=torch.float64)
    exact = {name: buf.clone() for name, buf in tp.named_buffers()}
    with ops.use_backend("reference"):
        ref = tp(x, y)
        back = copy.deepcopy(tp).float()
        assert back.weight.dtype == torch.float32
        assert back(x.float(), y.float()).dtype == torch.float32
        back = back.double()
        for name, buf in back.named_buffers():
            assert buf.dtype == torch.float64
            torch.testing.assert_close(buf, exact[name], rtol=0, atol=0)
        torch.testing.assert_close(back(x, y), ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("parity", ["natural", "full"])
def test_gaunt_output_scale_stays_float64_when_built_in_float32(parity):
    """The Gaunt layer's output normalisation was a buffer in the default dtype: built under float32 and moved
    with ``.double()`` it stayed float32-rounded (~3e-8 relative off), and a state_dict cannot repair it."""
    from geomdl.nn import GauntTensorProduct

    irreps = ("2x0e+2x1o+2x2e", "2x0e+2x1o+2x2e", "2x0e+2x1o+2x2e")
    assert torch.get_default_dtype() == torch.float32
    built32 = GauntTensorProduct(*irreps, parity=parity).double()
    torch.set_default_dtype(torch.float64)
    try:
        built64 = GauntTensorProduct(*irreps, parity=parity)
    finally:
        torch.set_default_dtype(torch.float32)
    built64.load_state_dict(built32.state_dict())
    assert built32.out_scale.dtype == torch.float64
    torch.testing.assert_close(built32.out_scale, built64.out_scale, rtol=0, atol=0)
    x, y = torch.randn(4, built32.irreps_in1.dim, dtype=torch.float64), torch.randn(4, built32.irreps_in2.dim, dtype=torch.float64)
    torch.testing.assert_close(built32(x, y), built64(x, y), rtol=1e-14, atol=1e-14)
    back = copy.deepcopy(built32).float().double()  # a cast keeps the float64 original
    torch.testing.assert_close(back.out_scale, built64.out_scale, rtol=0, atol=0)
    assert built32.float()(x.float(), y.float()).dtype == torch.float32


PONITA = {"hidden": 8, "layers": 1, "num_ori": 4, "radius": 2.0}
ELEMENT_MODELS = {
    "potential": lambda numbers: PonitaPotential(numbers, **PONITA),
    "energy": lambda numbers: PonitaEnergy(numbers, **PONITA),
    "graph": lambda numbers: PonitaGraph(2, atomic_numbers=numbers, **PONITA),
}


@pytest.mark.parametrize("name", sorted(ELEMENT_MODELS))
def test_state_dict_of_other_elements_is_an_error(name):
    """Same number of elements, so every shape fits: the weights used to load silently, the model then
    one-hot encoding O as the F of its training set and rejecting F."""
    make = ELEMENT_MODELS[name]
    state = make([1, 6, 7, 8]).state_dict()
    other = make([1, 6, 7, 9])
    for strict in (True, False):
        with pytest.raises(RuntimeError, match=r"atomic_numbers: .*elements \[1, 6, 7, 8\], this one .* \[1, 6, 7, 9\]"):
            other.load_state_dict(state, strict=strict)
    same = make([8, 7, 6, 1])  # the same elements in another order: the same model
    same.load_state_dict(state)
    assert torch.equal(same.type_map, state["type_map"])
