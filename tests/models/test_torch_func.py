"""torch.func transforms (grad, jacrev, jvp, vmap) through geomdl's models: the same derivatives as autograd.

The compiled ops' autograd formulas and geomdl's autograd.Function classes do not run under torch.func's
transforms; inside them the ops take their references and the layers their plain-PyTorch paths
(``geomdl.ops._extension.transform_active``). Each test fails on a model that raises there or differs."""
import importlib
import warnings

import pytest
import torch

from geomdl.models import MODELS

F64 = torch.float64


def _model(name, **kwargs):
    module, attr = MODELS[name].split(":")
    torch.manual_seed(0)
    return getattr(importlib.import_module(module), attr)(**kwargs).double().eval()


def _molecule():
    return torch.tensor([1, 6, 7, 8, 1, 6, 8]), torch.randn(7, 3, generator=torch.Generator().manual_seed(1), dtype=F64)


def _cases():
    z, pos = _molecule()
    cloud = torch.randn(48, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    yield "painn", lambda: _model("painn", hidden_channels=8, num_layers=2), lambda m, p: m(z, p).sum(), pos
    yield "egnn", lambda: _model("egnn", hidden_channels=8, num_layers=2), lambda m, p: m(z, p).sum(), pos
    yield "nequip", lambda: _model("nequip"), lambda m, p: m(z, p).sum(), pos
    yield "ponita_energy", lambda: _model("ponita_energy"), lambda m, p: m(z, p, forces=False)["energy"].sum(), pos
    yield "pointnet", lambda: _model("pointnet", out_channels=3), lambda m, p: m(p).pow(2).sum(), cloud
    yield "dgcnn", lambda: _model("dgcnn", out_channels=3, k=4), lambda m, p: m(p).pow(2).sum(), cloud
    yield "apen", lambda: _model("apen", num_classes=3), lambda m, p: m(p)["logits"].pow(2).sum(), cloud


CASES = list(_cases())


@pytest.mark.parametrize("name, make, fn, pos", CASES, ids=[c[0] for c in CASES])
def test_torch_func_grad_equals_autograd(name, make, fn, pos):
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference ops' one-time warnings, if any
        got = torch.func.grad(lambda p: fn(model, p))(pos)
        leaf = pos.clone().requires_grad_(True)
        want = torch.autograd.grad(fn(model, leaf), leaf)[0]
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)


def test_ponita_forces_inside_torch_func_give_the_hessian_and_jvp():
    z, pos = _molecule()
    model = _model("ponita_energy")
    hessian = torch.func.jacrev(lambda p: -model(z, p)["forces"])(pos).reshape(21, 21)
    torch.testing.assert_close(hessian, hessian.T, atol=1e-10, rtol=0)
    leaf = pos.clone().requires_grad_(True)
    forces = model(z, leaf, create_graph=True)["forces"]
    row = torch.autograd.grad(-forces[2, 1], leaf)[0].reshape(-1)  # d^2 E / d pos[2, 1] d pos
    torch.testing.assert_close(hessian[2 * 3 + 1], row, atol=1e-10, rtol=1e-10)
    tangent = torch.randn_like(pos)
    _, jvp = torch.func.jvp(lambda p: model(z, p, forces=False)["energy"].sum(), (pos,), (tangent,))
    torch.testing.assert_close(jvp, (-forces.detach() * tangent).sum(), atol=1e-12, rtol=1e-10)
    batched = torch.func.vmap(lambda p: model(z, p)["forces"])(pos[None])
    torch.testing.assert_close(batched[0], forces.detach(), atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ["painn", "egnn", "nequip"])
def test_molecular_forces_inside_torch_func_give_the_hessian(name):
    """``energy_and_forces`` of an eval-mode model under ``jacrev``: the Hessian (was all zeros, silently: the
    forces came from a detached leaf, a constant to the transform)."""
    z, pos = _molecule()
    model = _model(name, hidden_channels=8, num_layers=2)
    hessian = torch.func.jacrev(lambda p: -model.energy_and_forces(z, p)[1])(pos).reshape(21, 21)
    leaf = pos.clone().requires_grad_(True)
    forces = model.energy_and_forces(z, leaf, create_graph=True)[1]
    row = torch.autograd.grad(-forces[2, 1], leaf)[0].reshape(-1)  # d^2 E / d pos[2, 1] d pos
    assert row.abs().max() > 0
    torch.testing.assert_close(hessian[2 * 3 + 1], row, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(hessian, hessian.T, atol=1e-10, rtol=0)


@pytest.mark.parametrize("product", ["gaunt", "cg"])
def test_tensor_product_layers_under_jvp(product):
    from e3nn import o3

    from geomdl.nn import ClebschGordanTensorProduct, GauntTensorProduct

    irreps = o3.Irreps("4x0e+4x1o+4x2e")
    torch.manual_seed(0)
    layer = (GauntTensorProduct if product == "gaunt" else ClebschGordanTensorProduct)(irreps, irreps, irreps).double()
    x, y = torch.randn(5, irreps.dim, dtype=F64), torch.randn(5, irreps.dim, dtype=F64)
    tangent = torch.randn_like(x)
    out, jvp = torch.func.jvp(lambda a: layer(a, y), (x,), (tangent,))
    jac = torch.autograd.functional.jacobian(lambda a: layer(a, y), x)  # [5, D, 5, D]
    torch.testing.assert_close(out, layer(x, y), atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(jvp, torch.einsum("ijkl,kl->ij", jac, tangent), atol=1e-10, rtol=1e-10)


def test_the_repulsion_grid_is_the_same_constant_inside_transforms():
    from geomdl.nn.ponita.grids import repulsion_sphere

    want = repulsion_sphere(12, steps=5)
    ones = torch.ones(12, 3, dtype=F64)
    assert torch.equal(torch.func.grad(lambda x: (repulsion_sphere(12, steps=5) * x).sum())(ones), want)
    assert torch.equal(torch.func.vmap(lambda x: repulsion_sphere(12, steps=5) * x)(ones[None])[0], want)


def test_apen_frames_under_hessian_jvp_and_vmap():
    from geomdl.nn.apen.frames import pca_frames

    gen = torch.Generator().manual_seed(3)
    pos, part = torch.randn(12, 3, generator=gen, dtype=F64), torch.arange(12) % 3

    def f(p):
        return pca_frames(p, part, 3)[0].pow(3).sum()

    hessian = torch.func.hessian(f)(pos).reshape(36, 36)
    torch.testing.assert_close(hessian, hessian.T, atol=1e-8, rtol=1e-8)
    tangent = torch.randn(12, 3, generator=gen, dtype=F64)
    _, jvp = torch.func.jvp(f, (pos,), (tangent,))
    leaf = pos.clone().requires_grad_(True)
    grad = torch.autograd.grad(f(leaf), leaf)[0]
    torch.testing.assert_close(jvp, (grad * tangent).sum(), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(torch.func.vmap(torch.func.grad(f))(pos[None])[0], grad, atol=1e-12, rtol=1e-10)


def test_compiled_ponita_potential_keeps_no_force_graph_in_eval():
    z, pos = _molecule()
    model = _model("ponita_energy")
    compiled = torch.compile(model, backend="aot_eager")
    out = compiled(z, pos)
    assert not out["forces"].requires_grad
    torch.testing.assert_close(out["forces"], model(z, pos)["forces"], atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name, make, fn, pos", CASES, ids=[c[0] for c in CASES])
def test_batched_hessian_vector_products_equal_the_loop(name, make, fn, pos):
    """``torch.autograd.grad(..., is_grads_batched=True)`` (what ``torch.autograd.functional.jacobian`` /
    ``hessian(vectorize=True)`` run) batches the gradients with torch's legacy vmap, which no ``torch.func``
    state marks: PONITA's fused gather-multiply(-scatter) backward raised there (``out=`` / in-place ops on
    batched gradients) before it took its plain path."""
    model = make()
    leaf = pos.clone().requires_grad_(True)
    vs = torch.randn((3,) + tuple(pos.shape), generator=torch.Generator().manual_seed(4), dtype=F64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = torch.autograd.grad(fn(model, leaf), leaf, create_graph=True)[0]
        got = torch.autograd.grad(g, leaf, vs, is_grads_batched=True, retain_graph=True)[0]
        want = torch.stack([torch.autograd.grad(g, leaf, v, retain_graph=True)[0] for v in vs])
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-10)
