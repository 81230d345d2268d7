"""GauntTensorProduct(parity="full", normalize=True): unit output variance per output irrep.

An output irrep can receive Gaunt paths (natural x natural -> natural) and paths of the complementing CG
product (odd ``l1 + l2 + l3`` or pseudo-tensors) at once, e.g. ``0e`` from ``0e x 0e``, ``1o x 1o`` (Gaunt)
and ``1e x 1e`` (CG). Each part was normalised to unit variance on its own, so their sum had variance 2
(1.5-2 with random CG weights). The parts now share the unit variance by their numbers of paths.

Statistics: the rows of a batch are i.i.d., so the per-row mean of ``z^2`` over an irrep's channels and
components has a sample mean with standard error ``se = std / sqrt(N)`` (CLT). The test asserts
``|mean - 1| < 6 se`` (two-sided false-alarm rate ~2e-9 per check, and the seed is fixed anyway) and that
``6 se < 0.1``, so an error as large as the old one (+0.5 or more) can not pass.
"""
import math

import pytest
import torch
from e3nn import o3 as e3o3

from geomdl.nn import GauntTensorProduct
from geomdl.nn.tensor_products.gaunt import output_normalization
from geomdl.testing import assert_equivariant

N_SAMPLES = 20000

CONFIGS = [
    # uuu: 0e (Gaunt 0e x 0e, 1o x 1o; CG 1e x 1e) and 1o (Gaunt 0e x 1o, 1o x 0e; CG 1o x 1e, 1e x 1o) are mixed
    ("16x0e+16x1o+16x1e", "16x0e+16x1o+16x1e", "16x0e+16x1o+16x1e"),
    # uvu (shared filter of multiplicity 1): 1o mixed (CG 1e x 1o); 0o reached by the CG product only
    ("8x0e+8x1o+8x1e+8x2e", "0e+1o+0o", "8x0e+8x1o+8x1e+8x2e+8x0o"),
    # pseudo-tensors on both sides and degree 2: 0e, 1o, 2e mixed
    ("6x0e+6x1o+6x1e+6x2e+6x2o", "6x0e+6x1o+6x0o+6x1e", "6x0e+6x0o+6x1o+6x1e+6x2e+6x2o"),
]


def _random_sign_weights(tp, gen):
    """Every weight set to +-1 at random: unit square (as the initial degree weights), any signs."""
    with torch.no_grad():
        for p in tp.parameters():
            p.copy_(torch.randint(0, 2, p.shape, generator=gen, dtype=p.dtype) * 2 - 1)


def _per_irrep_variance(tp, gen):
    x = torch.randn(N_SAMPLES, tp.irreps_in1.dim, generator=gen)
    y = torch.randn(N_SAMPLES, tp.irreps_in2.dim, generator=gen)
    with torch.no_grad():
        z = tp(x, y)
    out = {}
    for sl, (_, ir) in zip(tp.irreps_out.slices(), tp.irreps_out):
        row = z[:, sl].pow(2).mean(dim=1)  # i.i.d. over the rows
        out[str(ir)] = (row.mean().item(), row.std().item() / math.sqrt(N_SAMPLES))
    return out


@pytest.mark.parametrize("i1,i2,io", CONFIGS)
def test_full_parity_unit_output_variance_per_irrep(float64, i1, i2, io):
    gen = torch.Generator().manual_seed(1234)
    tp = GauntTensorProduct(i1, i2, io, parity="full")
    assert tp.cg is not None and tp.use_gaunt
    _random_sign_weights(tp, gen)
    stats = _per_irrep_variance(tp, gen)
    for ir, (var, se) in stats.items():
        assert 6 * se < 0.1, (ir, se)
        assert abs(var - 1.0) < 6 * se, f"{i1} x {i2} -> {io}: output {ir} has variance {var:.4f} (se {se:.4f})"


def test_full_parity_mixed_irreps_and_equivariance(float64):
    i1, i2, io = CONFIGS[0]
    tp = GauntTensorProduct(i1, i2, io, parity="full")
    # 0e: 2 Gaunt pairs and 1 CG path -> Gaunt share 2/3; 1o: 2 and 2 -> 1/2; 1e: CG only
    ls = [0, 1]
    natural = output_normalization(ls, ls, ls)
    assert torch.allclose(tp.out_scale, natural * torch.tensor([math.sqrt(2 / 3), math.sqrt(1 / 2)]))
    # the CG element normalisation counts the Gaunt paths into the same output too (uuu: one element per path)
    n_cg = [sum(1 for p in tp.cg.paths if p[2] == k) for k in range(3)]
    assert n_cg == [1, 2, 4]  # 1e: 0e x 1e, 1e x 0e, 1o x 1o (cross product), 1e x 1e
    for alpha, (_, _, k) in zip(tp.cg.alphas, tp.cg.paths):
        assert math.isclose(alpha ** 2, tp.irreps_out[k].ir.dim / (n_cg[k] + [2, 2, 0][k]))
    for i1, i2, io in CONFIGS[:2]:
        tp = GauntTensorProduct(i1, i2, io, parity="full")
        x, y = e3o3.Irreps(i1).randn(4, -1), e3o3.Irreps(i2).randn(4, -1)
        assert_equivariant(tp, (x, y), (f"irreps:{i1}", f"irreps:{i2}"), f"irreps:{io}", translation=False)


def test_natural_parity_normalisation_unchanged(float64):
    nat = "3x0e+3x1o+3x2e"
    ls = [0, 1, 2]
    for parity in ("natural", "full"):  # natural irreps only: no CG part even with parity="full"
        tp = GauntTensorProduct(nat, nat, nat, parity=parity)
        assert tp.cg is None
        assert torch.equal(tp.out_scale, output_normalization(ls, ls, ls))
    # parity="full": a natural output reached by the Gaunt product only keeps n_l3 exactly (2e here)
    tp = GauntTensorProduct("4x0e+4x1o+4x1e", "4x0e+4x1o", "4x0e+4x1o+4x1e+4x2e", parity="full")
    assert tp.out_scale[2] == output_normalization([0, 1], [0, 1], [0, 1, 2])[2]
    # normalize=False: neither part is rescaled
    tp = GauntTensorProduct(*CONFIGS[0], parity="full", normalize=False)
    assert torch.equal(tp.out_scale, torch.ones(2))
    for alpha, (_, _, k) in zip(tp.cg.alphas, tp.cg.paths):
        assert math.isclose(alpha ** 2, tp.irreps_out[k].ir.dim / [1, 2, 4][k])
