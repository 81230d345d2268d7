"""The torch 2.4 code paths of geomdl.utils.torch_compat and of the custom operators, exercised on the torch at hand:
each test removes or restricts the newer API (monkeypatching) so that the older branch runs."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from geomdl.datasets.formats import read_array
from geomdl.utils import torch_compat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _FlagModule(torch.nn.Module):
    def forward(self, x):
        return x + 1 if torch_compat._is_exporting_flag() else x - 1


@pytest.mark.parametrize("strict", [False, True])
def test_is_exporting_flag_is_true_only_while_torch_export_traces(strict):
    assert torch_compat._is_exporting_flag() is False
    program = torch.export.export(_FlagModule(), (torch.zeros(2),), strict=strict)
    assert torch.equal(program.module()(torch.zeros(2)), torch.ones(2))  # traced with the flag set
    assert torch_compat._is_exporting_flag() is False  # and reset afterwards
    torch._dynamo.reset()
    compiled = torch.compile(_FlagModule(), fullgraph=True, backend="eager")
    assert torch.equal(compiled(torch.zeros(2)), -torch.ones(2))  # torch.compile is not an export


def test_is_exporting_falls_back_to_the_flag_without_torch_compiler_is_exporting(monkeypatch):
    try:
        if hasattr(torch.compiler, "is_exporting"):
            assert importlib.reload(torch_compat).is_exporting is torch.compiler.is_exporting
            monkeypatch.delattr(torch.compiler, "is_exporting")
        assert importlib.reload(torch_compat).is_exporting is torch_compat._is_exporting_flag
    finally:
        monkeypatch.undo()
        importlib.reload(torch_compat)


def test_safe_globals_without_the_context_manager_restores_the_allowlist(tmp_path, monkeypatch):
    monkeypatch.delattr(torch.serialization, "safe_globals", raising=False)  # torch 2.4
    path = tmp_path / "a.pth"
    torch.save(np.arange(6.0).reshape(2, 3), path)
    before = set(torch.serialization.get_safe_globals())  # (a set on newer torch: no order)
    np.testing.assert_array_equal(read_array(path), np.arange(6.0).reshape(2, 3))
    assert set(torch.serialization.get_safe_globals()) == before
    with pytest.raises(RuntimeError, match="inside"):
        with torch_compat.safe_globals([np.ndarray]):
            assert np.ndarray in torch.serialization.get_safe_globals()
            raise RuntimeError("inside")
    assert set(torch.serialization.get_safe_globals()) == before


def test_safe_globals_fallback_restores_a_torch24_style_allowlist(monkeypatch):
    """torch 2.4's get_safe_globals returns its own list, which add_safe_globals extends in place (+=) and
    clear_safe_globals replaces: the fallback must keep a copy."""
    state = {"list": [np.dtype]}

    def add(globs):
        state["list"] += globs

    def clear():
        state["list"] = []

    monkeypatch.setattr(torch.serialization, "add_safe_globals", add)
    monkeypatch.setattr(torch.serialization, "get_safe_globals", lambda: state["list"])
    monkeypatch.setattr(torch.serialization, "clear_safe_globals", clear)
    with torch_compat._safe_globals_torch24([np.ndarray]):
        assert state["list"] == [np.dtype, np.ndarray]
    assert state["list"] == [np.dtype]


def test_numpy_array_pth_loads_when_bytes_are_not_allowed_by_default(tmp_path, monkeypatch):
    """torch.save pickles an array's bytes as ``_codecs.encode(...)`` (protocol 2); torch < 2.5's weights-only
    unpickler does not allow that global by default, so read_array must allow it itself."""
    from torch import _weights_only_unpickler as wou

    allowed = {k: v for k, v in wou._get_allowed_globals().items() if k != "_codecs.encode"}
    monkeypatch.setattr(wou, "_get_allowed_globals", lambda: allowed)
    path = tmp_path / "a.pth"
    torch.save(np.arange(4.0, dtype=np.float32).reshape(1, 4), path)
    np.testing.assert_array_equal(read_array(path), np.arange(4.0, dtype=np.float32).reshape(1, 4))


SCHEMA_SCRIPT = r"""
import torch
import torch._library.infer_schema as mod
import torch._custom_op.impl as impl  # where torch 2.4's custom_op takes infer_schema from
real = mod.infer_schema
def refuse(fn, *args, **kwargs):  # torch 2.4 cannot infer geomdl's schemas (string annotations): none may rely on it
    if getattr(fn, "__module__", "").startswith("geomdl"):
        raise AssertionError(f"{fn.__qualname__}: a geomdl custom_op relied on schema inference")
    return real(fn, *args, **kwargs)
for owner in (torch.library, mod, impl):
    if hasattr(owner, "infer_schema"):
        owner.infer_schema = refuse
from geomdl.ops.trilinear import sparse_trilinear_plan_op
from geomdl.o3.gaunt_ops import gaunt_columns_op, gaunt_features_op
for op in (sparse_trilinear_plan_op, gaunt_features_op, gaunt_columns_op):
    print(op._opoverload._schema)
"""


def test_custom_ops_define_their_schemas_without_inference():
    out = subprocess.run([sys.executable, "-c", SCHEMA_SCRIPT], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:3] == [
        "geomdl::sparse_trilinear_plan_op(Tensor t1, Tensor t2, Tensor t3, SymInt rows, SymInt plan_id, SymInt role, "
        "SymInt bcast) -> Tensor",
        "geomdl::gaunt_features_op(Tensor x, Tensor y, SymInt[] blocks_x, SymInt[] blocks_y, SymInt[] blocks_out) -> Tensor",
        "geomdl::gaunt_columns_op(Tensor x1t, Tensor x2t, SymInt lmax_out, str method) -> Tensor",
    ]


def test_pow2_unit_with_torch24_ldexp(monkeypatch):
    """torch 2.4's ``ldexp(x, e)`` is ``x * torch.pow(2.0, e)``: 2**e in the default dtype (float32) for an int
    exponent, 0 or inf beyond 2**+-127. The MDS scale unit must stay exact at 1e-170 and 1e155 in float64."""
    from geomdl.nn.tinv.mds import _pow2_unit

    monkeypatch.setattr(torch, "ldexp", lambda x, e: x * torch.pow(2.0, e))
    extent = torch.tensor([1e-170, 1e155, 3.0, 0.0], dtype=torch.float64)
    unit = _pow2_unit(extent)
    assert unit.dtype == torch.float64
    assert torch.equal(unit, torch.tensor([2.0**-564, 2.0**515, 4.0, 1.0], dtype=torch.float64))


def test_scatter_jvp_where_tolist_cannot_read_functorch_tensors(monkeypatch):
    """torch 2.4's ``Tensor.tolist`` raises inside ``torch.func.jvp`` (the transform's tensors have no storage); the
    index/batch checks must still read their bounds there."""
    from geomdl import ops

    real = torch.Tensor.tolist

    def tolist_torch24(self):
        if torch._C._functorch.peek_interpreter_stack() is not None:
            raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")
        return real(self)

    src, tangent = torch.randn(5, 2, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 1, 0])
    monkeypatch.setattr(torch.Tensor, "tolist", tolist_torch24)
    out, jvp_out = torch.func.jvp(lambda s: ops.scatter(s, index, dim_size=3), (src,), (tangent,))
    monkeypatch.undo()
    torch.testing.assert_close(out, ops.scatter_reference(src, index, dim_size=3))
    torch.testing.assert_close(jvp_out, ops.scatter_reference(tangent, index, dim_size=3))


def test_gaunt_powers_of_no_rows_with_torch24_pad(monkeypatch):
    """torch 2.4's constant ``pad`` raises on an input whose last dimension is 0 when it pads an earlier one (the
    Gaunt synthesis pads [(L+1)^2, 0] columns of no nodes)."""
    from geomdl import ops
    from geomdl.o3.gaunt_powers import gaunt_powers

    real = torch.nn.functional.pad

    def pad_torch24(x, pad, *args, **kwargs):
        if x.shape[-1] == 0 and any(pad[2:]):
            raise RuntimeError("The input size 0, plus negative padding 0 and 0 resulted in a negative output size")
        return real(x, pad, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "pad", pad_torch24)
    with ops.use_backend("reference"):
        assert [tuple(b.shape) for b in gaunt_powers(torch.zeros(0, 9), 3)] == [(0, 9), (0, 9)]
