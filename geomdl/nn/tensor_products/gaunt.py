"""Gaunt tensor product layer (Luo, Chen, Krishnapriyan, ICLR 2024), channelwise, with per-degree weights.

For channel ``c`` (e3nn mode ``"uuu"``; channel mixing belongs to separate linear layers):

.. math::
    z^{l_3}_c = n_{l_3}\\, w^{(3)}_{c l_3}\\; \\mathrm{Proj}_{l_3}\\big[F_{x,c}\\,F_{y,c}\\big],\\qquad
    F_{x,c}(s) = \\sum_{lm} w^{(1)}_{c l}\\, x_{c,lm} Y_{lm}(s)

      = n_{l_3} w^{(3)}_{c l_3} \\sum_{l_1 l_2} c(l_1,l_2,l_3)\\, w^{(1)}_{c l_1} w^{(2)}_{c l_2}
        \\big(x_c^{l_1} \\otimes_{CG} y_c^{l_2}\\big)^{l_3},

i.e. a CG product whose per-path weights are forced to the rank-1 form ``w1 w2 w3`` times the Gaunt
constant ``c`` (:func:`geomdl.o3.gaunt_cg_constant`), computed in ``O(L^3)`` by
:func:`geomdl.o3.gaunt_product_columns`. ``n_l3`` (``normalize=True``) makes the output unit-variance
for unit-variance inputs (:func:`geomdl.o3.gaunt_output_normalization`).

**Parity.** A product of spherical functions only has the paths with ``l1 + l2 + l3`` even and maps
natural-parity irreps (``0e, 1o, 2e, 3o, ...``) to natural-parity irreps. ``parity="natural"`` (default)
rejects other irreps with a ``ValueError``. ``parity="full"`` accepts any irreps: the natural x natural ->
natural paths go through the Gaunt product, **every other allowed path** (odd ``l1+l2+l3`` such as the cross
product ``1o x 1o -> 1e``, and paths touching pseudo-tensors) through an exact
:class:`ClebschGordanTensorProduct` (``uuu``/``uvu``, one weight per path and channel) whose cost is that of
a CG product, ``O(L^5..L^6)`` per channel -- the Gaunt speed-up is lost on those paths. With ``normalize=True``
an output irrep fed by both products (e.g. ``0e`` from ``0e x 0e``, ``1o x 1o`` (Gaunt) and ``1e x 1e`` (CG)) gets
each part scaled by the square root of its share of the path elements into it (Gaunt: ``n_g`` pairs
``(l1, l2)``, one element per channel each; CG: its ``"element"`` fan-in ``n_cg``): the Gaunt part by
``sqrt(n_g / (n_g + n_cg))`` on top of ``n_l3``, the CG part through the fan-in ``n_g + n_cg`` of its path
normalisation. Each part has unit variance on its own, so the sum keeps unit variance (for unit-variance
inputs and weights of unit square, e.g. the initial degree weights). Irreps reached by one product only, and
every natural-parity configuration, are normalised exactly as before.
"""
from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

from geomdl.o3.gaunt import gaunt_cg_constant
from geomdl.o3.gaunt_kernel import gaunt_features, use_kernel
from geomdl.o3.gaunt_product import gaunt_product, gaunt_product_columns
from geomdl.nn.tensor_products._layout import blocks_of, channel_irreps, degree_expand, from_columns, to_columns
from geomdl.nn.tensor_products.clebsch_gordan import (ClebschGordanTensorProduct, _irreps, autocast_float32,
                                                       broadcast_leading)
from geomdl.utils.constants import plain_tensors
from geomdl.utils.devices import Float64Buffers
from geomdl.utils.torch_compat import is_exporting

PARITIES = ("natural", "full")


def _is_natural(ir: o3.Irrep) -> bool:
    return ir.p == (-1) ** ir.l


def _natural_part(irreps: o3.Irreps) -> o3.Irreps:
    """The natural-parity blocks of ``irreps`` with multiplicity > 0 (a ``0x`` block has no components)."""
    return o3.Irreps([(mul, ir) for mul, ir in irreps if _is_natural(ir) and mul > 0])


def _natural_slices(irreps: o3.Irreps) -> tuple[tuple[int, int], ...] | None:
    """``(start, stop)`` of the natural-parity blocks of the e3nn layout; None when every block is natural."""
    if all(_is_natural(ir) for _, ir in irreps):
        return None
    out, start = [], 0
    for mul, ir in irreps:
        if _is_natural(ir):
            out.append((start, start + mul * ir.dim))
        start += mul * ir.dim
    return tuple(out)


def _degrees(irreps: o3.Irreps) -> list[int]:
    return [ir.l for _, ir in irreps] or [0]


def output_normalization(ls1, ls2, ls_out) -> torch.Tensor:
    """``n_l3 = (sum_{l1 in ls1, l2 in ls2} c^2 / (2 l3 + 1))^(-1/2)`` for ``l3 = 0..max(ls_out)`` (0 if unreachable)."""
    lmax_out = max(ls_out)
    var = torch.zeros(lmax_out + 1, dtype=torch.float64)
    for l3 in range(lmax_out + 1):
        var[l3] = sum(gaunt_cg_constant(a, b, l3) ** 2 for a in ls1 for b in ls2) / (2 * l3 + 1)
    return torch.where(var > 0, var.clamp_min(1e-300).rsqrt(), torch.zeros_like(var))


def _broadcasts_to(shape, target) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (what ``Tensor.expand(*target)`` accepts)."""
    try:
        return torch.broadcast_shapes(shape, target) == target
    except RuntimeError:
        return False


def gaunt_path_count(ls1, ls2, l3: int) -> int:
    """Number of pairs ``(l1, l2)`` of ``ls1 x ls2`` with a Gaunt path to ``l3`` (triangle rule, ``l1 + l2 + l3`` even)."""
    return sum(1 for a in ls1 for b in ls2 if gaunt_cg_constant(a, b, l3) != 0)


class GauntTensorProduct(Float64Buffers):
    """Channelwise Gaunt tensor product ``x [..., irreps_in1.dim] (x) y [..., irreps_in2.dim] -> [..., irreps_out.dim]``.

    Args:
        irreps_in1: ``C x l ...``: one multiplicity ``C`` (channels), each degree at most once.
        irreps_in2: same degrees rule, multiplicity ``C`` or 1 (one function shared by all channels, e.g.
            the spherical harmonics of an edge).
        irreps_out: multiplicity ``C``.
        weights: ``"degree"`` (the paper's ``w1[C, L1+1], w2[C, L2+1], w3[C, Lo+1]``, initialised to 1)
            or ``None`` (plain channelwise product).
        parity: ``"natural"`` or ``"full"`` (see the module docstring).
        normalize: multiply degree ``l3`` of the output by ``n_l3`` (unit output variance); with
            ``parity="full"`` the Gaunt and CG parts of an irrep that both reach share the unit variance by
            their numbers of paths (module docstring).
        method: execution of the Gaunt product, see :func:`geomdl.o3.gaunt_product` (``"auto"`` = ``"dft"``).
            With the compiled kernel (CPU, ``GEOMDL_KERNELS`` not ``reference``) ``"dft"`` reads and writes the
            e3nn layout in place (:func:`geomdl.o3.gaunt_kernel.gaunt_features`, no column copies) and applies
            the degree weights as one broadcast multiplication per operand; otherwise it goes through the
            columns ``[(L+1)^2, B*C]`` and :func:`geomdl.o3.gaunt_product_columns` (the reference).

    Shapes: ``x [..., irreps_in1.dim]``, ``y [..., irreps_in2.dim]`` (leading dims broadcast), optional
    per-sample degree weights ``weight1 [..., C, L1+1]``, ``weight2 [..., C, L2+1]``, ``weight3 [..., C, Lo+1]``
    multiplying the internal ones (e.g. radial weights of an edge filter); output ``[..., irreps_out.dim]``.

    Raises ``ValueError`` when no path reaches ``irreps_out`` (the product would be identically zero, as
    :class:`ClebschGordanTensorProduct` refuses it too) or an argument is invalid.
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, weights: str | None = "degree", parity: str = "natural",
                 normalize: bool = True, method: str = "auto"):
        super().__init__()
        if method not in ("auto", "dft", "fft"):
            raise ValueError(f"method must be 'auto', 'dft' or 'fft', got {method!r}")
        self.method = method
        if parity not in PARITIES:
            raise ValueError(f"parity must be one of {PARITIES}, got {parity!r}")
        if weights not in ("degree", None):
            raise ValueError(f"weights must be 'degree' or None, got {weights!r}")
        self.irreps_in1, self.irreps_in2 = _irreps(irreps_in1, "irreps_in1"), _irreps(irreps_in2, "irreps_in2")
        self.irreps_out = _irreps(irreps_out, "irreps_out")
        self.parity = parity
        if parity == "natural":
            bad = {name: [str(ir) for _, ir in irreps if not _is_natural(ir)]
                   for name, irreps in (("irreps_in1", self.irreps_in1), ("irreps_in2", self.irreps_in2), ("irreps_out", self.irreps_out))}
            bad = {k: v for k, v in bad.items() if v}
            if bad:
                raise ValueError(
                    "GauntTensorProduct(parity='natural') needs natural-parity irreps (0e, 1o, 2e, 3o, ...); got "
                    + "; ".join(f"{k}: {', '.join(v)}" for k, v in bad.items())
                    + ". The Gaunt product multiplies spherical functions: it has no odd l1+l2+l3 paths and no "
                    "pseudo-tensors. Use parity='full' to route those paths to an exact Clebsch-Gordan product "
                    "(O(L^5..L^6) cost) or ClebschGordanTensorProduct.")
        self.channels, _ = channel_irreps(self.irreps_in1, "irreps_in1", unique=False)
        self.mul2, _ = channel_irreps(self.irreps_in2, "irreps_in2", self.channels, unique=False)
        mul_out, _ = channel_irreps(self.irreps_out, "irreps_out", unique=False)
        if mul_out != self.channels:
            raise ValueError(f"irreps_out must have multiplicity {self.channels} (channelwise product), got {self.irreps_out}")
        self.nat1, self.nat2 = _natural_part(self.irreps_in1), _natural_part(self.irreps_in2)
        self.nat_out = _natural_part(self.irreps_out)
        for name, irreps in (("irreps_in1", self.nat1), ("irreps_in2", self.nat2), ("irreps_out", self.nat_out)):
            if len(irreps):
                channel_irreps(irreps, f"{name} (natural-parity part)")
        self.use_gaunt = len(self.nat1) > 0 and len(self.nat2) > 0 and len(self.nat_out) > 0
        # forward reads only plain ints (torch.compile cannot guard on e3nn Irrep objects)
        self._dims = (self.irreps_in1.dim, self.irreps_in2.dim, self.irreps_out.dim)
        self._b1, self._b2, self._b_out = blocks_of(self.nat1), blocks_of(self.nat2), blocks_of(self.nat_out)
        self._sel1, self._sel2 = _natural_slices(self.irreps_in1), _natural_slices(self.irreps_in2)
        self._out_pieces = None if len(self.nat_out) == len(self.irreps_out) else \
            tuple((_is_natural(ir), mul * ir.dim) for mul, ir in self.irreps_out)
        self.lmax1 = max(ir.l for _, ir in self.nat1) if len(self.nat1) else 0
        self.lmax2 = max(ir.l for _, ir in self.nat2) if len(self.nat2) else 0
        self.lmax_out = max(ir.l for _, ir in self.nat_out) if len(self.nat_out) else 0
        norm = output_normalization(_degrees(self.nat1), _degrees(self.nat2), _degrees(self.nat_out)) if normalize \
            else torch.ones(self.lmax_out + 1, dtype=torch.float64)
        self.weights = weights
        self._weight_index = {}  # (irreps, lmax, device) -> index spreading [C, L+1] weights over e3nn positions
        c = self.channels
        if weights == "degree":
            self.weight1 = nn.Parameter(torch.ones(c, self.lmax1 + 1))
            self.weight2 = nn.Parameter(torch.ones(c, self.lmax2 + 1))
            self.weight3 = nn.Parameter(torch.ones(c, self.lmax_out + 1))
        self.cg = None
        if parity == "full":
            gaunt_handled = lambda a, b, o: self.use_gaunt and _is_natural(a) and _is_natural(b) and _is_natural(o)
            # Gaunt paths (l1, l2) into each output block, one element per channel each (as a uuu CG path)
            gaunt_fan_in = {k: gaunt_path_count(_degrees(self.nat1), _degrees(self.nat2), ir.l)
                            for k, (mul, ir) in enumerate(self.irreps_out) if self.use_gaunt and _is_natural(ir) and mul > 0}
            try:
                self.cg = ClebschGordanTensorProduct(self.irreps_in1, self.irreps_in2, self.irreps_out,
                                                     mode="uuu" if self.mul2 == c else "uvu",
                                                     filter_paths=lambda a, b, o: not gaunt_handled(a, b, o),
                                                     extra_fan_in=gaunt_fan_in if normalize else None)
            except ValueError:  # every allowed path is a Gaunt path
                self.cg = None
            if normalize and self.cg is not None:
                # an output block fed by both products: each part (unit variance on its own) is scaled by the square
                # root of its share of the path elements, so their sum keeps unit variance. The CG part got its
                # share through extra_fan_in; the Gaunt part gets it here. Blocks with Gaunt paths only keep n_l3.
                for k, n_gaunt in gaunt_fan_in.items():
                    n_cg = self.cg.output_elements.get(k, 0)
                    if n_gaunt and n_cg:
                        norm[self.irreps_out[k].ir.l] *= math.sqrt(n_gaunt / (n_gaunt + n_cg))
        # float64 whatever the default dtype or a later cast (Float64Buffers): used in the input's dtype at run time
        self.register_buffer("out_scale", norm, persistent=False)
        if self.cg is None and not (self.use_gaunt and any(
                gaunt_path_count(_degrees(self.nat1), _degrees(self.nat2), ir.l) for _, ir in self.nat_out)):
            raise ValueError(f"no path from {self.irreps_in1} x {self.irreps_in2} reaches {self.irreps_out} (a Gaunt "
                             "path needs |l1 - l2| <= l3 <= l1 + l2 and l1 + l2 + l3 even): the output would be zero")

    def float64_buffers(self) -> list[str]:
        return ["out_scale"]

    def reset_parameters(self) -> None:
        if self.weights == "degree":
            for w in (self.weight1, self.weight2, self.weight3):
                nn.init.ones_(w)
        if self.cg is not None:
            self.cg.reset_parameters()

    def _columns(self, x, blocks, lmax, w_int, w_ext, batch):
        cols = to_columns(x, blocks, lmax)  # [n, B * mul]
        mul = blocks[0][0]
        cols = cols.view(cols.shape[0], batch, mul)
        if mul != self.channels:  # shared function (mul 1) -> one copy per channel
            cols = cols.expand(cols.shape[0], batch, self.channels)
        w = None
        if w_int is not None:
            w = w_int
        if w_ext is not None:
            w = w_ext if w is None else w * w_ext
        if w is not None:
            w = degree_expand(w.to(x.dtype), lmax)  # [..., C, n]
            w = w.expand(batch, self.channels, w.shape[-1]) if w.dim() == 3 else w[None]
            cols = cols * w.permute(2, 0, 1)
        return cols.reshape(cols.shape[0], batch * self.channels)

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight1: torch.Tensor | None = None,
                weight2: torch.Tensor | None = None, weight3: torch.Tensor | None = None) -> torch.Tensor:
        """``z^{l3}_c = n_l3 w3_{c l3} Proj_l3[F_{x,c} F_{y,c}]`` (module docstring) on the natural-parity blocks.

        Args:
            x: ``[..., irreps_in1.dim]`` float.
            y: ``[..., irreps_in2.dim]`` float, same dtype as ``x``; leading dims broadcast with ``x``'s.
            weight1, weight2, weight3: optional per-sample degree weights ``[..., C, L1+1]``,
                ``[..., C, L2+1]``, ``[..., C, Lo+1]`` (or ``[C, L+1]`` shared by all samples), multiplied
                with the internal ones. They act on the Gaunt paths only: with ``parity="full"`` the
                Clebsch-Gordan part is called as ``cg(x, y)`` with its own weights.

        Returns:
            ``[*broadcast(x.shape[:-1], y.shape[:-1]), irreps_out.dim]``.

        Under ``torch.autocast``, float16/bfloat16 ``x``/``y`` run in float32 (the output is float32).

        Raises:
            TypeError: ``x``/``y`` not float32/float64 tensors (outside autocast) or of different dtypes. The
                per-degree weights are used in ``x``'s dtype, and the output has ``x``'s dtype.
            ValueError: with ``parity="full"``, ``x`` of another dtype than the Clebsch-Gordan part's weights.
            ValueError: a last dimension other than the irreps' dim, or a weight whose last two
                dimensions are not ``(C, L+1)``.
        """
        for name, t, dim in (("x", x, self._dims[0]), ("y", y, self._dims[1])):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
            if t.shape[-1:] != (dim,):
                irreps = self.irreps_in1 if name == "x" else self.irreps_in2
                raise ValueError(f"{name} must have shape [..., {dim}] for irreps {irreps}, got {tuple(t.shape)}")
            if not t.is_floating_point():
                raise TypeError(f"{name} must have a floating dtype, got {t.dtype}")
        x, y = autocast_float32(x, y)
        if y.dtype != x.dtype:
            raise TypeError(f"y has dtype {y.dtype} but x has dtype {x.dtype}: x and y must share one floating dtype")
        if x.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"x and y must be float32 or float64 (the product runs in them), got {x.dtype}; convert "
                            "them (under torch.autocast half inputs run in float32)")
        lead = broadcast_leading(x=x, y=y)
        x = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
        y = y.expand(*lead, y.shape[-1]).reshape(-1, y.shape[-1])
        batch = x.shape[0]
        ext = []
        for name, w, lmax in (("weight1", weight1, self.lmax1), ("weight2", weight2, self.lmax2), ("weight3", weight3, self.lmax_out)):
            if w is not None:
                if w.shape[-2:] != (self.channels, lmax + 1):
                    raise ValueError(f"{name} must have shape [..., {self.channels}, {lmax + 1}], got {tuple(w.shape)}")
                if w.dim() > 2 and not _broadcasts_to(w.shape[:-2], lead):
                    raise ValueError(f"{name} {tuple(w.shape)}: leading dimensions must broadcast to those of x and y "
                                     f"{tuple(lead)}")
                w = w.expand(*lead, self.channels, lmax + 1).reshape(batch, self.channels, lmax + 1) if w.dim() > 2 else w
            ext.append(w)
        out = None  # allocated only when some output irreps are not produced by the Gaunt path
        if self.use_gaunt:
            internal = (self.weight1, self.weight2, self.weight3) if self.weights == "degree" else (None, None, None)
            x_nat = self._select(x, self._sel1)
            y_nat = self._select(y, self._sel2)
        if self.use_gaunt and self.method != "fft" and use_kernel(x_nat):
            out = self._scatter(self._gaunt_in_place(x_nat, y_nat, internal, ext))
        elif self.use_gaunt:
            a = self._columns(x_nat, self._b1, self.lmax1, internal[0], ext[0], batch)
            b = self._columns(y_nat, self._b2, self.lmax2, internal[1], ext[1], batch)
            if self.method == "fft":
                z = gaunt_product(a.T, b.T, self.lmax_out, method="fft").T
            else:
                z = gaunt_product_columns(a, b, self.lmax_out)  # [(Lo+1)^2, B * C]
            scale = self.out_scale.to(x.dtype)
            w3 = scale if internal[2] is None else internal[2].to(x.dtype) * scale  # the output in x's dtype
            if ext[2] is not None:
                w3 = w3 * ext[2]
            w3 = degree_expand(w3 if w3.dim() > 1 else w3.expand(self.channels, -1), self.lmax_out)  # [..., C, n]
            w3 = w3.expand(batch, self.channels, w3.shape[-1]) if w3.dim() == 3 else w3[None]
            z = (z.view(z.shape[0], batch, self.channels) * w3.permute(2, 0, 1)).reshape(z.shape[0], -1)
            out = self._scatter(from_columns(z, self._b_out, batch))
        if self.cg is not None:
            out = self.cg(x, y) if out is None else out + self.cg(x, y)
        return out.reshape(*lead, self._dims[2])

    def _degree_weight(self, blocks, lmax, ws, dtype):
        """Product of the per-degree weights ``ws`` (``[C, L+1]`` or ``[B, C, L+1]``, None skipped) spread over the
        e3nn positions of ``blocks`` (``(mul C, l)`` pairs): ``[dim]`` or ``[B, dim]``; None when there is no weight."""
        w = None
        for part in ws:
            if part is not None:
                w = part if w is None else w * part
        if w is None:
            return None
        key = (blocks, lmax, w.device)
        idx = self._weight_index.get(key)
        if idx is None:  # position (channel c, degree l, m) -> c * (lmax+1) + l
            with plain_tensors():  # a constant, also when first built inside a torch.func transform
                pieces = [torch.arange(mul)[:, None] * (lmax + 1) + l + torch.zeros(1, 2 * l + 1, dtype=torch.long)
                          for mul, l in blocks]
                idx = torch.cat([p.reshape(-1) for p in pieces]).to(w.device)
            if not is_exporting():  # a tensor attribute set while exporting makes torch warn
                self._weight_index[key] = idx
        return w.to(dtype).flatten(-2).index_select(-1, idx)

    def _gaunt_in_place(self, x_nat, y_nat, internal, ext):
        """Gaunt path on the e3nn layout with the compiled kernel (:func:`geomdl.o3.gaunt_kernel.gaunt_features`):
        weights as one broadcast multiplication per operand, no column copies. ``[B, nat_out.dim]``."""
        c = self.channels
        b2 = self._b2
        if self.mul2 != c:  # shared function (mul 1) -> one copy per channel
            blocks, start = [], 0
            for _, l in b2:
                d = 2 * l + 1
                blocks.append(y_nat[:, start:start + d, None].expand(-1, d, c).transpose(1, 2).reshape(-1, c * d))
                start += d
            y_nat = torch.cat(blocks, dim=1)
            b2 = tuple((c, l) for _, l in b2)
        w1 = self._degree_weight(self._b1, self.lmax1, (internal[0], ext[0]), x_nat.dtype)
        w2 = self._degree_weight(b2, self.lmax2, (internal[1], ext[1]), x_nat.dtype)
        scale = self.out_scale.to(x_nat.dtype).expand(c, -1)
        w3 = self._degree_weight(self._b_out, self.lmax_out, (scale, internal[2], ext[2]), x_nat.dtype)
        a = x_nat if w1 is None else x_nat * w1
        b = y_nat if w2 is None else y_nat * w2
        z = gaunt_features(a, b, self._b1, b2, self._b_out)
        return z * w3

    @staticmethod
    def _select(x, slices):
        """The natural-parity blocks of ``x`` (``slices`` from :func:`_natural_slices`; None: all of ``x``)."""
        if slices is None:
            return x
        return torch.cat([x[:, a:b] for a, b in slices], dim=1)

    def _scatter(self, part):
        """``part [B, nat_out.dim]`` placed into ``[B, irreps_out.dim]`` with zeros for the other blocks."""
        if self._out_pieces is None:
            return part
        pieces, src = [], 0
        for natural, d in self._out_pieces:
            if natural:
                pieces.append(part[:, src:src + d])
                src += d
            else:
                pieces.append(part.new_zeros(part.shape[0], d))
        return torch.cat(pieces, dim=1)

    def extra_repr(self) -> str:
        return (f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, weights={self.weights}, parity={self.parity}, "
                f"cg_paths={len(self.cg.paths) if self.cg is not None else 0}")
