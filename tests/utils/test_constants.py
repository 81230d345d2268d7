"""Constants cached on first use inside a torch.func transform stay valid afterwards (they are built as plain
tensors, not the transform's storage-less wrappers)."""
import gc

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
