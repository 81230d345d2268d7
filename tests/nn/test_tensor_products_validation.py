"""Input validation of the tensor-product layers (errors that name the argument)."""
import pytest
import torch

from geomdl.nn.tensor_products import GauntTensorProduct


def test_gaunt_tensor_product_rejects_integer_and_mixed_dtype_inputs():
    tp = GauntTensorProduct("2x0e+2x1o", "2x0e+2x1o", "2x0e+2x1o")
    x = torch.randn(3, 8)
    with pytest.raises(TypeError, match="x must have a floating dtype"):
        tp(x.long(), x)
    with pytest.raises(TypeError, match="y has dtype torch.float64 but x has dtype torch.float32"):
        tp(x, x.double())
    with pytest.raises(TypeError, match="y has dtype torch.float32 but x has dtype torch.float64"):
        tp(x.double(), x)  # was silently accepted (computed in float64), asymmetric with the case above


@pytest.mark.parametrize("irreps", [("1x0e", "1x0e", "1x1o"), ("1x1o", "1x1o", "1x1o"), ("1x0e", "1x0e", "1x2e"),
                                    ("2x1o", "1x1o", "2x3o")])
def test_gaunt_product_without_any_path_is_an_error(irreps):
    """Natural-parity irreps whose every (l1, l2, l3) breaks the triangle rule or has l1 + l2 + l3 odd: the
    product is identically zero, which is a wiring mistake (as for ClebschGordanTensorProduct); it built and
    returned zeros."""
    from geomdl.nn.tensor_products import ClebschGordanTensorProduct

    with pytest.raises(ValueError, match="no path from .* reaches"):
        GauntTensorProduct(*irreps)
    with pytest.raises(ValueError):  # the same rule as the CG product's
        ClebschGordanTensorProduct(*irreps, mode="uvu")
    GauntTensorProduct("2x0e+2x1o", "1x0e+1x1o", "2x1o")  # one reachable output block is enough


@pytest.mark.parametrize("parity", ["natural", "full"])
def test_gaunt_half_inputs_are_named_and_the_cg_part_names_its_weights(parity):
    irreps = ("2x0e+2x1o+2x1e", "2x0e+2x1o", "2x0e+2x1o+2x1e") if parity == "full" else ("2x0e+2x1o",) * 3
    tp = GauntTensorProduct(*irreps, parity=parity)  # float32 parameters
    x, y = torch.randn(3, tp.irreps_in1.dim), torch.randn(3, tp.irreps_in2.dim)
    with pytest.raises(TypeError, match="x and y must be float32 or float64 .* got torch.bfloat16"):
        tp(x.bfloat16(), y.bfloat16())  # named internal variables (x1t, x2t) before
    if parity == "natural":  # the per-degree weights are used in x's dtype (GauntConvolution relies on it)
        assert tp(x.double(), y.double()).dtype == torch.float64
    else:  # the CG part needs x in its weights' dtype: it names them (it blamed an unnamed "weight")
        with pytest.raises(ValueError, match="x and y have dtype torch.float64 but the layer's weights are torch.float32"):
            tp(x.double(), y.double())


def test_cg_inputs_of_another_dtype_than_its_weights_name_the_layer_weights():
    from geomdl.nn import ClebschGordanTensorProduct

    tp = ClebschGordanTensorProduct("2x0e+2x1o", "0e+1o", "2x0e+2x1o", mode="uvu")
    x, y = torch.randn(3, tp.irreps_in1.dim, dtype=torch.float64), torch.randn(3, tp.irreps_in2.dim, dtype=torch.float64)
    with pytest.raises(ValueError, match="x and y have dtype torch.float64 but the layer's weights are torch.float32"):
        tp(x, y)


@pytest.mark.parametrize("kind", ["gaunt", "gaunt_full", "cg"])
def test_tensor_products_run_half_inputs_in_float32_under_autocast(kind):
    from geomdl.nn import ClebschGordanTensorProduct

    if kind == "cg":
        tp = ClebschGordanTensorProduct("2x0e+2x1o+2x2e", "0e+1o+2e", "2x0e+2x1o+2x2e", mode="uvu")
    else:
        irreps = "2x0e+2x1o+2x1e+2x2e" if kind == "gaunt_full" else "2x0e+2x1o+2x2e"
        tp = GauntTensorProduct(irreps, irreps, irreps, parity="full" if kind == "gaunt_full" else "natural")
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, tp.irreps_in1.dim, generator=gen), torch.randn(4, tp.irreps_in2.dim, generator=gen)
    x, y = x.bfloat16().float(), y.bfloat16().float()  # exactly representable in bfloat16
    expected = tp(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tp(x.bfloat16(), y.bfloat16())  # e.g. the outputs of Linear layers under autocast
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises((TypeError, ValueError), match="float32"):
        tp(x.bfloat16(), y.bfloat16())  # outside autocast: an error naming the dtypes


def test_gaunt_convolution_keeps_running_float64_features_through_float32_parameters():
    from geomdl.nn import GauntConvolution

    conv = GauntConvolution("4x0e+4x1o+4x2e", "4x0e+4x1o+4x2e", lmax_filter=2, cutoff=3.0)  # float32 parameters
    x, pos = torch.randn(5, conv.irreps_in.dim, dtype=torch.float64), torch.randn(5, 3)
    edges = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    assert conv(x, pos, edges).dtype == torch.float64  # its docstring: x may differ (the filter is cast)


@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_gaunt_output_has_the_inputs_dtype_on_every_backend(backend):
    from geomdl.ops import use_backend

    tp = GauntTensorProduct("4x0e+4x1o+4x2e", "4x0e+4x1o+4x2e", "4x0e+4x1o+4x2e").double()
    x = torch.randn(3, tp.irreps_in1.dim)
    with use_backend(backend):
        assert tp(x, x).dtype == torch.float32  # the reference path gave float64 (float64 weights times the product)


def test_gaunt_self_interaction_names_a_dtype_mismatch():
    from geomdl.nn.tensor_products import GauntSelfInteraction

    layer = GauntSelfInteraction("4x0e+4x1o+4x2e")
    with pytest.raises(TypeError, match="x has dtype torch.float64 but the layer's parameters are torch.float32"):
        layer(torch.randn(3, 36, dtype=torch.float64))  # e3nn's Linear: "both inputs should have same dtype"


@pytest.mark.parametrize("mode,i1,i2,io", [
    ("uvw", "2x0e+0x1o", "2x0e+0x1o", "2x0e+0x1o+0x2e"),
    ("uvw", "2x0e+3x1o", "0x0e+2x1o", "2x0e+0x1o+2x2e+1x1e"),
    ("uvu", "2x0e+0x1o", "2x0e+0x1o", "2x0e+0x1o"),
])
@pytest.mark.parametrize("backend", ["auto", "reference"])
def test_cg_product_with_multiplicity_zero_blocks_matches_e3nn(mode, i1, i2, io, backend):
    """A ``0x`` block gives paths with no elements: the "element" fan-in of its output is 0, which raised
    ZeroDivisionError (e3nn skips the division, as the layer now does)."""
    from e3nn import o3

    from geomdl.nn import ClebschGordanTensorProduct
    from geomdl.ops import use_backend

    tp = ClebschGordanTensorProduct(i1, i2, io, mode=mode).double()
    ref = o3.TensorProduct(tp.irreps_in1, tp.irreps_in2, tp.irreps_out, [(*p, mode, True) for p in tp.paths]).double()
    assert ref.weight_numel == tp.weight_numel
    with torch.no_grad():
        ref.weight.copy_(tp.weight)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, tp.irreps_in1.dim, dtype=torch.float64, generator=gen)
    y = torch.randn(4, tp.irreps_in2.dim, dtype=torch.float64, generator=gen)
    with use_backend(backend):
        torch.testing.assert_close(tp(x, y), ref(x, y), rtol=1e-6, atol=1e-6)  # e3nn's tables are float32 here


@pytest.mark.parametrize("parity,with_zero,without_zero", [
    ("natural", ("0x3o+2x0e+0x1o+2x1o", "2x0e+0x2e+2x1o", "0x0e+2x1o+2x2e+0x4e"), ("2x0e+2x1o", "2x0e+2x1o", "2x1o+2x2e")),
    ("full", ("0x1e+2x0e+2x1o+0x0o", "1x0e+1x1e+0x1o", "2x1e+0x0e+2x0e+2x1o+0x2o"), ("2x0e+2x1o", "1x0e+1x1e", "2x1e+2x0e+2x1o")),
])
@pytest.mark.parametrize("method", ["auto", "fft"])
def test_gaunt_layers_ignore_multiplicity_zero_blocks(parity, with_zero, without_zero, method):
    """``0x`` blocks (no components, valid e3nn irreps) were refused as a second multiplicity ("must have one
    multiplicity"), or broke the reshape when every block had multiplicity 0; with parity="full" an empty
    natural-parity output block of degree l also scaled the real degree-l block by its path share."""
    from geomdl.nn import GauntConvolution, GauntManyBody, GauntSelfInteraction

    a = GauntTensorProduct(*with_zero, parity=parity, method=method).double()
    b = GauntTensorProduct(*without_zero, parity=parity, method=method).double()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in a.parameters():
            p.copy_(torch.randn(p.shape, dtype=p.dtype, generator=gen))
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, a.irreps_in1.dim, dtype=torch.float64, generator=gen)
    y = torch.randn(4, a.irreps_in2.dim, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(a(x, y), b(x, y), rtol=1e-12, atol=1e-12)
    mb_a, mb_b = GauntManyBody("2x0e+0x1o+2x2e", "0x0e+2x1o+2x2e").double(), GauntManyBody("2x0e+2x2e", "2x1o+2x2e").double()
    mb_b.load_state_dict(mb_a.state_dict())
    a_feat = torch.randn(3, 12, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(mb_a(a_feat), mb_b(a_feat), rtol=1e-12, atol=1e-12)
    assert GauntSelfInteraction("2x0e+0x1o+2x2e")(a_feat.float()).shape == (3, 12)
    conv = GauntConvolution("2x0e+0x1o+2x1o", "2x0e+0x2e+2x1o")
    assert conv(torch.randn(3, 8), torch.randn(3, 3), torch.tensor([[0, 1, 2], [1, 2, 0]])).shape == (3, 8)
    with pytest.raises(ValueError, match="irreps_in1 is empty"):
        GauntTensorProduct("0x0e+0x1o", "2x0e", "2x0e")


def test_gaunt_many_body_rejects_integer_and_half_features():
    """Integer ``A`` features were accepted and the weights cast to the integer dtype (``1/2``, ``1/6`` -> 0): a
    silently wrong output. Half features ran in half precision (the other Gaunt layers refuse them)."""
    from geomdl.nn import GauntManyBody

    mb = GauntManyBody("2x0e+2x1o+2x2e", correlation=3)
    x = torch.randn(4, 18)
    with pytest.raises(TypeError, match="x must be float32 or float64 .* got torch.int64"):
        mb(x.round().long())
    with pytest.raises(TypeError, match="x must be float32 or float64 .* got torch.float16"):
        mb(x.half())
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        mb(x.tolist())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mb(x.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, mb(x.bfloat16().float()))
    with pytest.raises(ValueError, match="num_elements must be a positive int"):
        GauntManyBody("2x0e", num_elements=True)  # a bool is not a count (it built one element set)


def test_tensor_products_name_inputs_and_weights_that_do_not_broadcast():
    """Leading dims that do not broadcast raised bare RuntimeErrors from broadcast_shapes / expand."""
    from geomdl.nn import ClebschGordanTensorProduct

    tp = GauntTensorProduct("2x0e+2x1o", "2x0e+2x1o", "2x0e+2x1o")
    x = torch.randn(5, 8)
    with pytest.raises(ValueError, match=r"x \(3, 8\), y \(5, 8\) do not broadcast"):
        tp(x[:3], x)
    with pytest.raises(ValueError, match=r"weight1 \(7, 2, 2\): leading dimensions must broadcast .* \(5,\)"):
        tp(x, x, weight1=torch.randn(7, 2, 2))
    assert tp(x, x, weight1=torch.randn(1, 2, 2)).shape == (5, 8)
    cg = ClebschGordanTensorProduct("2x0e+2x1o", "2x0e+2x1o", "2x0e+2x1o", internal_weights=False)
    with pytest.raises(ValueError, match=r"x \(5, 8\), y \(5, 8\), weight \(3, 32\) do not broadcast"):
        cg(x, x, torch.randn(3, cg.weight_numel))
