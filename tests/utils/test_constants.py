"""Constants cached on first use inside a torch.func transform stay valid afterwards (they are built as plain
tensors, not the transform's storage-less wrappers)."""
import gc
import importlib

import pytest
import torch

from geomdl.utils.constants import constant_cache, functorch_active, plain_tensors

F64 = torch.float64


def _is_wrapped(t: torch.Tensor) -> bool:
    return torch._C._functorch.is_functorch_wrapped_tensor(t)


def test_constant_cache_builds_plain_tensors_inside_every_transform():
    made = []

    @constant_cache(maxsize=None)
    def table(n: int) -> torch.Tensor:
        made.append(n)
        return torch.arange(n, dtype=F64) * 2

    x = torch.ones(3, dtype=F64)
    for k, transform in enumerate([
        lambda f: torch.func.grad(lambda a: f(a).sum())(x),
        lambda f: torch.func.jvp(f, (x,), (x,)),
        lambda f: torch.func.vmap(f)(x[None]),
    ]):
        transform(lambda a: table(3 + k).sum() * a)
        cached = table(3 + k)
        assert not _is_wrapped(cached), k
        assert cached.data_ptr() and torch.equal(cached, torch.arange(3 + k, dtype=F64) * 2)
    assert made == [3, 4, 5]  # each built once, inside its transform


def test_plain_tensors_is_a_no_op_outside_transforms():
    assert not functorch_active()
    with plain_tensors():
        assert not functorch_active()
    seen = []
    torch.func.grad(lambda a: (seen.append(functorch_active()), a.sum())[1])(torch.ones(2))
    assert seen == [True]


def test_without_the_guard_a_cached_table_dies_with_its_transform():
    """The failure the guard prevents (so the test above can fail): a plain lru_cache keeps a wrapper."""
    import functools

    @functools.lru_cache(maxsize=None)
    def table(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=F64)

    torch.func.jvp(lambda a: table(3) * a, (torch.ones(3, dtype=F64),), (torch.ones(3, dtype=F64),))
    assert _is_wrapped(table(3))


def _wrapped_tensors_alive() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and _is_wrapped(o))


@pytest.mark.parametrize("product", ["gaunt", "cg"])
def test_tensor_products_run_inside_jvp_leave_no_transform_tensors_behind(product):
    """Every Gaunt / CG table of a fresh degree combination is built inside ``jvp``: none of them may be kept
    as the transform's wrapper (eager torch ops unwrap a dead one, but a compiled graph hands it to the kernels
    as is: "Cannot access data pointer of Tensor that doesn't have storage")."""
    from e3nn import o3

    from geomdl.nn import ClebschGordanTensorProduct, GauntTensorProduct

    irreps = o3.Irreps("3x0e+3x1o+3x2e+3x3o+3x5o")  # degrees no other test uses: cache misses under jvp
    torch.manual_seed(0)
    layer = (GauntTensorProduct if product == "gaunt" else ClebschGordanTensorProduct)(irreps, irreps, irreps).double()
    x, y = torch.randn(4, irreps.dim, dtype=F64), torch.randn(4, irreps.dim, dtype=F64)
    before = _wrapped_tensors_alive()
    primal, _ = torch.func.jvp(lambda a: layer(a, y), (x,), (torch.randn_like(x),))
    assert _wrapped_tensors_alive() == before
    torch.testing.assert_close(layer(x, y), primal, atol=1e-12, rtol=1e-10)
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, y), primal, atol=1e-12, rtol=1e-10)


def test_constant_cache_and_plain_tensors_build_normal_tensors_under_inference_mode():
    """A miss under ``torch.inference_mode`` (an evaluation before training) must not cache an inference tensor,
    which autograd refuses to save for backward in every later training step."""

    @constant_cache(maxsize=None)
    def table(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=F64) * 2

    with torch.inference_mode():
        table(3)
        with plain_tensors():
            made = torch.ones(2)
        assert torch.is_inference_mode_enabled()  # restored after the block
    assert not table(3).is_inference() and not made.is_inference()
    x = torch.ones(3, dtype=F64, requires_grad=True)
    (table(3) * x).sum().backward()  # saves the table for backward
    assert torch.equal(x.grad, table(3))


def _inference_tensors_alive() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor) and o.is_inference())


@pytest.mark.parametrize("product", ["gaunt", "cg"])
def test_tensor_products_first_called_under_inference_mode_train_afterwards(product):
    """The tables a layer builds on its first call (Gaunt weight index, the CG layer's sparse plan) are kept for
    later calls: built under ``torch.inference_mode`` they must still be usable by autograd afterwards."""
    from e3nn import o3

    from geomdl.nn import ClebschGordanTensorProduct, GauntTensorProduct
    from geomdl.ops import sparse_trilinear_reference

    irreps = o3.Irreps("3x0e+3x1o+3x2e")
    torch.manual_seed(0)
    layer = (GauntTensorProduct if product == "gaunt" else ClebschGordanTensorProduct)(irreps, irreps, irreps).double()
    x, y = torch.randn(4, irreps.dim, dtype=F64), torch.randn(4, irreps.dim, dtype=F64)
    before = _inference_tensors_alive()
    with torch.inference_mode():
        want = layer(x, y)
    del want
    assert _inference_tensors_alive() == before
    leaf = x.clone().requires_grad_(True)
    layer(leaf, y).sum().backward()
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0
    if product == "cg":  # the plan's own tables, saved for backward by the reference
        w = layer.weight.detach()[None]
        leaf.grad = None
        sparse_trilinear_reference(layer.plan(), leaf, y, w).sum().backward()
        assert leaf.grad.abs().sum() > 0


def test_constant_cache_builds_on_the_cpu_whatever_the_default_device():
    """A miss under ``with torch.device("meta")`` (a model built without allocating) or ``set_default_device``
    must not cache the constant on that device for every later caller."""

    @constant_cache(maxsize=None)
    def table(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=F64) * 2

    with torch.device("meta"):
        inside = table(3)
        assert torch.empty(1).is_meta  # the default device is left alone outside the cached function
    assert inside is table(3) and table(3).device.type == "cpu"
    assert torch.equal(table(3), torch.arange(3, dtype=F64) * 2)


def test_clebsch_gordan_first_built_on_the_meta_device_stays_usable():
    """Before the fix the first miss under ``torch.device("meta")`` failed (``.item()`` of a meta tensor) and
    left meta tables in the caches: every later CPU layer with those degrees failed too."""
    cg_module = importlib.import_module("geomdl.o3.clebsch_gordan")  # the module (geomdl.o3 exports the function)
    want = cg_module.clebsch_gordan(1, 2, 3, dtype=F64)
    for fn in (cg_module._real_clebsch_gordan, cg_module._su2_table, cg_module._real_to_complex_basis):
        fn.cache_clear()  # the next call is a miss, under the meta device
    with torch.device("meta"):
        cg_module.clebsch_gordan(1, 2, 3, dtype=F64)
    got = cg_module.clebsch_gordan(1, 2, 3, dtype=F64)
    assert got.device.type == "cpu"
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_constant_cache_builds_on_the_cpu_where_torch_reports_no_device_block(monkeypatch):
    """Before torch 2.5 ``torch.get_default_device()`` sees only ``set_default_device``, not a ``with torch.device``
    block (simulated here): a miss inside ``with torch.device("meta")`` must still build on the CPU there."""

    @constant_cache(maxsize=None)
    def table(n: int) -> torch.Tensor:
        return torch.arange(n, dtype=F64) + 1

    monkeypatch.setattr(torch, "get_default_device", lambda: torch.device("cpu"))
    with torch.device("meta"):
        inside = table(4)
    assert inside.device.type == "cpu" and torch.equal(table(4), torch.arange(4, dtype=F64) + 1)
