"""Exact Clebsch-Gordan tensor product over every allowed path (odd ones included).

.. math::
    z^{(k)}_{w, m_3} = \\sum_{\\text{paths } (i, j) \\to k} \\alpha_{p} \\sum_{u, v} W^{p}_{uvw}
        \\sum_{m_1 m_2} C^{l_1 l_2 l_3}_{m_1 m_2 m_3}\\, x^{(i)}_{u m_1}\\, y^{(j)}_{v m_2}

with ``C`` the unit-norm real CG tensor (:func:`geomdl.o3.clebsch_gordan`, = e3nn ``wigner_3j``), a path
``(l1 p1) x (l2 p2) -> (l3 p3)`` allowed when ``|l1-l2| <= l3 <= l1+l2`` and ``p3 = p1 p2``, and the
weight shape fixed by ``mode``: ``"uuu"`` (channelwise, ``W[u]``), ``"uvu"`` (``W[u, v]``, output has
the channels of ``x``; TFN/NequIP convolutions with ``y`` = edge SH), ``"uvw"`` (fully connected).
Normalisation follows e3nn's ``TensorProduct`` (``irrep_normalization="component"``: ``alpha`` includes
``2 l3 + 1``; ``path_normalization="element"``: divided by the fan-in of the output), so the numbers equal
e3nn's for the same instructions and weights (tested). Cost ``O(sum_paths (2l1+1)(2l2+1)(2l3+1))`` per
channel: ``O(L^6)`` for all degrees up to ``L`` (``O(L^5)`` non-zeros) -- the reason for the Gaunt product.

Execution: on the CPU the product is one sparse contraction over the non-zero CG coefficients only (about a
fifth of the dense tensor), :func:`geomdl.ops.trilinear.sparse_trilinear` (compiled kernel, gradients of any
order; an opaque operator inside ``torch.compile`` graphs): always in modes ``uuu`` and ``uvu``, and in mode
``uvw`` when its ``m1 m2 m3 nnz`` terms per row are no more than the dense einsum chain's. Other devices,
other dtypes and ``GEOMDL_KERNELS=reference`` run the per-path einsums (:func:`_path_product`), the
reference. That includes CUDA (:attr:`ClebschGordanTensorProduct.KERNEL_DEVICES`): the op has a CUDA kernel,
but the layer routes to it only once it has been measured against the einsums on a GPU.
"""
from __future__ import annotations

import functools
import math
import threading

import torch
from e3nn import o3
from torch import nn

from geomdl.o3.clebsch_gordan import clebsch_gordan
from geomdl.ops._extension import compiled_ready, use_compiled
from geomdl.ops.trilinear import OP as TRILINEAR_OP
from geomdl.ops.trilinear import TrilinearPlan, plan_op_id, sparse_trilinear_rows
from geomdl.utils.constants import plain_tensors
from geomdl.utils.devices import Float64Buffers
from geomdl.utils.torch_compat import is_exporting

MODES = ("uuu", "uvu", "uvw")
_PLAN_LOCK = threading.Lock()  # publishes a layer's first plan once (see plan())
# Bytes of einsum intermediates (per-path products, their copies, output blocks; see
# ClebschGordanTensorProduct._einsum_row_elements) allowed at once on the einsum route without autograd:
# larger inputs run in chunks of rows (same results; the peak stays bounded).
EINSUM_CHUNK_BYTES = 64 << 20


@torch.compiler.assume_constant_result
def _plan_id(tp: "ClebschGordanTensorProduct") -> int:
    """The registry id of the layer's plan, evaluated when a graph is traced (a constant of the graph)."""
    return plan_op_id(tp.plan())


def _irreps(value, name):
    try:
        return o3.Irreps(value)
    except Exception as exc:
        raise ValueError(f"{name} must be an irreps string or e3nn Irreps (e.g. '8x0e + 8x1o'), got {value!r}") from exc


def allowed_paths(irreps_in1, irreps_in2, irreps_out, mode: str = "uvw", filter_paths=None) -> list[tuple[int, int, int]]:
    """``(i1, i2, i_out)`` indices of every CG-allowed path (triangle and parity rules, multiplicities
    compatible with ``mode``). ``filter_paths(ir1, ir2, ir_out) -> bool`` can drop paths."""
    out = []
    for i, (mul1, ir1) in enumerate(irreps_in1):
        for j, (mul2, ir2) in enumerate(irreps_in2):
            for k, (mul3, ir3) in enumerate(irreps_out):
                if ir3 not in ir1 * ir2:
                    continue
                if mode == "uuu" and not mul1 == mul2 == mul3:
                    continue
                if mode == "uvu" and mul1 != mul3:
                    continue
                if filter_paths is not None and not filter_paths(ir1, ir2, ir3):
                    continue
                out.append((i, j, k))
    return out


def cg_trilinear_entries(blocks1, blocks2, blocks_out, paths, cgs, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Entries ``(t, i, j, k)`` and coefficients of the CG product as a sparse trilinear form:
    ``out[t] += c x[i] y[j] w[k]`` for every non-zero ``c = cgs[p][m1, m2, m3]`` of every path ``p`` and every
    channel combination of ``mode``. ``blocks*``: ``(mul, 2l+1)`` per irrep block in e3nn ``mul_ir`` order; the weight of
    path ``p`` has the layout of :class:`ClebschGordanTensorProduct` (``[u]``, ``[u, v]`` or ``[u, v, w]``, paths in order)."""
    def starts(blocks):
        out, s = [], 0
        for mul, dim in blocks:
            out.append(s)
            s += mul * dim
        return out

    s1, s2, so = starts(blocks1), starts(blocks2), starts(blocks_out)
    entries, coefs, w_off = [], [], 0
    for (i, j, k), cg in zip(paths, cgs):
        (m1, d1), (m2, d2), (m3, d3) = blocks1[i], blocks2[j], blocks_out[k]
        nz = torch.nonzero(cg)
        c = cg[nz[:, 0], nz[:, 1], nz[:, 2]].to(torch.float64)
        if mode == "uuu":
            u = v = o = torch.arange(m1)
            w = w_off + u
        elif mode == "uvu":
            u, v = (g.flatten() for g in torch.meshgrid(torch.arange(m1), torch.arange(m2), indexing="ij"))
            o, w = u, w_off + u * m2 + v
        else:
            u, v, o = (g.flatten() for g in torch.meshgrid(torch.arange(m1), torch.arange(m2), torch.arange(m3), indexing="ij"))
            w = w_off + (u * m2 + v) * m3 + o
        w_off += len(w)
        t = so[k] + o[:, None] * d3 + nz[None, :, 2]
        a = s1[i] + u[:, None] * d1 + nz[None, :, 0]
        b = s2[j] + v[:, None] * d2 + nz[None, :, 1]
        entries.append(torch.stack([t, a, b, w[:, None].expand_as(t)], -1).reshape(-1, 4))
        coefs.append(c.repeat(len(u)))
    if not entries:
        return torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, dtype=torch.float64)
    return torch.cat(entries), torch.cat(coefs)


_PATH_EQUATIONS = {"uuu": "...ui,...uj,ijk,...u->...uk", "uvu": "...ui,...vj,ijk,...uv->...uk",
                   "uvw": "...ui,...vj,ijk,...uvw->...wk"}


def _path_product(mode: str, x: torch.Tensor, y: torch.Tensor, cg: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One path's product ``x [..., u, 2l1+1]``, ``y [..., u|v, 2l2+1]``, ``cg [2l1+1, 2l2+1, 2l3+1]`` and its
    weights ``w`` (``[..., u]``, ``[..., u, v]`` or ``[..., u, v, w]`` for mode uuu/uvu/uvw) -> ``[..., u|w, 2l3+1]``.

    Eager: one einsum, ordered by opt_einsum. Inside a compiled graph the leading size may be known only
    at run time (edges of a radius graph built in ``forward``), where opt_einsum cannot plan, so there
    the contraction is a fixed chain of pairwise products: ``x`` with ``cg``, then ``y``, then ``w``."""
    if not torch.compiler.is_compiling():
        return torch.einsum(_PATH_EQUATIONS[mode], x, y, cg, w)
    t = torch.einsum("...ui,ijk->...ujk", x, cg)
    if mode == "uuu":
        return torch.einsum("...ujk,...uj->...uk", t, y) * w.unsqueeze(-1)
    t = torch.einsum("...ujk,...vj->...uvk", t, y)
    if mode == "uvu":
        return torch.einsum("...uvk,...uv->...uk", t, w)
    return torch.einsum("...uvk,...uvw->...wk", t, w)


@functools.lru_cache(maxsize=None)
def _path_peak_elements(mode: str, blocks: tuple, row_weights: bool, strategy: str | None, rows: int = 4096) -> int:
    """Elements per row alive at the peak of one path's eager :func:`_path_product` (``torch.einsum``), its
    operands ``x``, ``y`` (and ``w``) not counted. ``blocks``: ``((m1, d1), (m2, d2), (m3, d3))``; ``row_weights``:
    ``w`` has a row per row (else one broadcast row, not counted per row); ``strategy``: opt_einsum's
    (``None``: torch's left-to-right order). Replays torch's pairwise steps in that order (planned for
    ``rows`` rows): a step that sums an index is a ``bmm``, which copies its operands (their permuted
    layout; the inputs are slices of ``x``, ``y``, ``w``) while the intermediates it consumes and its
    result are alive; a step that sums none is a broadcast ``mul`` (no copies, a contiguous result)."""
    (m1, d1), (m2, d2), (m3, d3) = blocks
    size = {"z": rows, "u": m1, "v": m2, "w": m3, "i": d1, "j": d2, "k": d3}
    terms, out = _PATH_EQUATIONS[mode].replace("...", "z").split("->")
    terms = terms.split(",")
    shapes = [tuple(1 if c == "z" and n == 3 and not row_weights else size[c] for c in t) for n, t in enumerate(terms)]
    oe = torch.backends.opt_einsum.get_opt_einsum() if strategy is not None else None
    steps = oe.contract_path(",".join(terms) + "->" + out, *shapes, shapes=True, optimize=strategy)[0] \
        if oe is not None else [(0, 1)] * (len(terms) - 1)
    # (indices, per-row elements, kind): kind 0 an input slice, 1 a mul result, 2 a bmm result
    ops = [(t, math.prod(shape[1:]) if shape[0] == rows else 0, 0) for t, shape in zip(terms, shapes)]
    peak = 0
    for step in steps:
        picked = [ops.pop(n) for n in sorted(step, reverse=True)]
        kept = set(out).union(*(t for t, _, _ in ops))
        new = "".join(sorted(set().union(*(t for t, _, _ in picked)) & kept))
        bmm = any(c not in new for t, _, _ in picked for c in t)
        per_row = math.prod(size[c] for c in new if c != "z") if any(e for _, e, _ in picked) else 0
        copies = sum(e for _, e, kind in picked if kind != 1) if bmm else 0
        live = sum(e for _, e, kind in ops + picked if kind) + copies + per_row
        peak = max(peak, live)
        ops.append((new, per_row, 2 if bmm else 1))
    return peak


def broadcast_leading(**tensors: torch.Tensor) -> torch.Size:
    """The broadcast of the leading dims (all but the last) of the named tensors; ``ValueError`` naming them and
    their shapes when they do not broadcast (``torch.broadcast_shapes`` names neither)."""
    try:
        return torch.broadcast_shapes(*(t.shape[:-1] for t in tensors.values()))
    except RuntimeError:
        shapes = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"the leading dimensions (all but the last) of {shapes} do not broadcast") from None


def autocast_float32(*tensors):
    """Inside ``torch.autocast`` on the tensors' device, float16/bfloat16 tensors as float32 (the tensor products
    run in float32 there, like autocast's float32 ops: their sums of many products need the precision);
    anything else (``None`` included) unchanged."""
    first = next((t for t in tensors if t is not None), None)
    if first is None or not torch.is_autocast_enabled(first.device.type):
        return tensors
    return tuple(t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors)


class ClebschGordanTensorProduct(Float64Buffers):
    """Exact CG tensor product ``x [..., irreps_in1.dim] (x) y [..., irreps_in2.dim] -> [..., irreps_out.dim]``.

    Args:
        irreps_in1, irreps_in2, irreps_out: e3nn irreps (strings accepted), e3nn ``mul_ir`` layout.
        mode: ``"uuu"``, ``"uvu"`` or ``"uvw"`` (see the module docstring).
        internal_weights: own the weights as a parameter (default). With ``False`` the weights are passed
            to ``forward`` as ``weight [..., weight_numel]`` (e.g. from a radial MLP, one set per edge).
        irrep_normalization: ``"component"`` or ``"none"``; path_normalization: ``"element"`` or ``"none"``.
        filter_paths: optional ``(ir1, ir2, ir_out) -> bool`` to keep only some of the allowed paths.
        extra_fan_in: optional ``{output block index: n}``, ``n`` path elements into that block computed outside
            this product and added to its output (e.g. by :class:`GauntTensorProduct` with ``parity="full"``);
            ``path_normalization="element"`` counts them in the fan-in, so this product's share of the unit
            output variance is its own elements over all of them. Default: none.

    Attributes: ``paths`` (list of ``(i1, i2, i_out)``), ``weight_numel``, ``irreps_in1/2``, ``irreps_out``,
    ``output_elements`` (``{output block: path elements of this product into it}``).
    Raises ``ValueError`` when no path reaches ``irreps_out`` or an argument is invalid.
    """

    #: Device types on which the eager forward uses the sparse kernel (else the per-path einsums).
    KERNEL_DEVICES = ("cpu",)

    def __init__(self, irreps_in1, irreps_in2, irreps_out, mode: str = "uvw", internal_weights: bool = True,
                 irrep_normalization: str = "component", path_normalization: str = "element", filter_paths=None,
                 extra_fan_in: dict[int, int] | None = None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if irrep_normalization not in ("component", "none"):
            raise ValueError(f"irrep_normalization must be 'component' or 'none', got {irrep_normalization!r}")
        if path_normalization not in ("element", "none"):
            raise ValueError(f"path_normalization must be 'element' or 'none', got {path_normalization!r}")
        self.irreps_in1 = _irreps(irreps_in1, "irreps_in1")
        self.irreps_in2 = _irreps(irreps_in2, "irreps_in2")
        self.irreps_out = _irreps(irreps_out, "irreps_out")
        # (mul, 2l+1) per block as plain ints: forward reads only these (torch.compile cannot guard on e3nn Irreps)
        self._blocks1, self._blocks2, self._blocks_out = (tuple((mul, ir.dim) for mul, ir in irreps)
                                                          for irreps in (self.irreps_in1, self.irreps_in2, self.irreps_out))
        self._dims = (self.irreps_in1.dim, self.irreps_in2.dim, self.irreps_out.dim)
        self.mode = mode
        self.paths = allowed_paths(self.irreps_in1, self.irreps_in2, self.irreps_out, mode, filter_paths)
        if not self.paths:
            raise ValueError(f"no {mode} tensor-product path from {self.irreps_in1} x {self.irreps_in2} reaches {self.irreps_out}")
        self.weight_shapes = [self._weight_shape(p) for p in self.paths]
        self.weight_numel = sum(math.prod(s) for s in self.weight_shapes)
        self.output_elements = {}  # path elements of this product into each output block
        for p in self.paths:
            self.output_elements[p[2]] = self.output_elements.get(p[2], 0) + self._num_elements(p)
        # plus the elements another product adds to the same output (the Gaunt paths of
        # GauntTensorProduct(parity="full")): the "element" normalisation then spans both products
        fan_in = dict(self.output_elements)
        for k, n in (extra_fan_in or {}).items():
            fan_in[int(k)] = fan_in.get(int(k), 0) + int(n)
        alphas = []
        for p in self.paths:
            alpha = self.irreps_out[p[2]].ir.dim if irrep_normalization == "component" else 1.0
            if path_normalization == "element" and fan_in[p[2]] > 0:  # 0: multiplicity-0 blocks (as e3nn)
                alpha /= fan_in[p[2]]
            alphas.append(math.sqrt(alpha))
        self.alphas = alphas
        self._degrees = [(self.irreps_in1[i].ir.l, self.irreps_in2[j].ir.l, self.irreps_out[k].ir.l) for i, j, k in self.paths]
        for n, (l1, l2, l3) in enumerate(self._degrees):
            # float64 whatever the default dtype: a layer built in float32 and moved to float64 keeps exact CG
            # (the sparse kernel's plan is float64 too); each call casts to the input's dtype
            self.register_buffer(f"cg_{n}", clebsch_gordan(l1, l2, l3, dtype=torch.float64) * alphas[n], persistent=False)
        self._plan: TrilinearPlan | None = None  # built on first use by the sparse kernel
        self._sparse = mode != "uvw" or self._sparse_terms() <= self._einsum_terms()
        self.internal_weights = internal_weights
        if internal_weights:
            self.weight = nn.Parameter(torch.randn(self.weight_numel))
        else:
            self.register_parameter("weight", None)

    def float64_buffers(self) -> list[str]:
        # exact CG on the einsum path through .float() / .double(), as the sparse plan keeps them
        return [f"cg_{n}" for n in range(len(self.paths))]

    def _num_elements(self, path):
        i, j, _ = path
        return {"uuu": 1, "uvu": self.irreps_in2[j].mul, "uvw": self.irreps_in1[i].mul * self.irreps_in2[j].mul}[self.mode]

    def _weight_shape(self, path):
        i, j, k = path
        m1, m2, m3 = self.irreps_in1[i].mul, self.irreps_in2[j].mul, self.irreps_out[k].mul
        return {"uuu": (m1,), "uvu": (m1, m2), "uvw": (m1, m2, m3)}[self.mode]

    def reset_parameters(self) -> None:
        if self.weight is not None:
            with torch.no_grad():
                self.weight.normal_()

    @staticmethod
    def _check(x, dim, irreps, name):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.shape[-1:] != (dim,):
            raise ValueError(f"{name} must have shape [..., {dim}] for irreps {irreps}, got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``x [..., irreps_in1.dim]``, ``y [..., irreps_in2.dim]``, optional ``weight [..., weight_numel]``
        (required when ``internal_weights=False``) -> ``[..., irreps_out.dim]``; leading dims broadcast."""
        self._check(x, self._dims[0], self.irreps_in1, "x")  # irreps read only for the error message
        self._check(y, self._dims[1], self.irreps_in2, "y")
        x, y, weight = autocast_float32(x, y, weight)
        internal = weight is None
        if weight is None:
            if self.weight is None:
                raise ValueError(f"weight [..., {self.weight_numel}] is required when internal_weights=False")
            weight = self.weight
        elif weight.shape[-1:] != (self.weight_numel,):
            raise ValueError(f"weight must have shape [..., {self.weight_numel}], got {tuple(weight.shape)}")
        if internal and weight.dtype != x.dtype and y.dtype == x.dtype:
            raise ValueError(f"x and y have dtype {x.dtype} but the layer's weights are {weight.dtype}: convert the inputs, "
                             f"or the module with module.to({x.dtype}) (under torch.autocast half inputs run in float32)")
        for name, t in (("y", y), ("weight", weight)):
            if t.dtype != x.dtype or t.device != x.device:
                raise ValueError(f"{name} must have the dtype and device of x ({x.dtype}, {x.device}), got ({t.dtype}, {t.device})")
        batch = broadcast_leading(x=x, y=y, weight=weight)
        # Not under torch.export: the operator names the plan by an id of this process, which a saved program
        # cannot carry to another; exported graphs hold the einsum chain (plain aten ops) instead.
        if self._sparse and x.device.type in self.KERNEL_DEVICES and not is_exporting() and (
                compiled_ready(TRILINEAR_OP, x.device.type) if torch.compiler.is_compiling() else use_compiled(TRILINEAR_OP, x)):
            return self._forward_sparse(x, y, weight, batch)
        if not torch.compiler.is_compiling() and not (  # (compiling/exporting: no branch on a traced row count)
                torch.is_grad_enabled() and (x.requires_grad or y.requires_grad or weight.requires_grad)):
            per_row = self._einsum_row_elements(row_weights=math.prod(weight.shape[:-1]) > 1)
            chunk = max(1, EINSUM_CHUNK_BYTES // max(1, per_row * x.element_size()))
            if math.prod(batch) > chunk:
                return self._forward_einsum_chunked(x, y, weight, batch, chunk)
        return self._forward_einsum(x, y, weight, batch)

    def _einsum_row_elements(self, row_weights: bool = False) -> int:
        """Elements per row alive at the peak of :meth:`_forward_einsum`, its inputs not counted: the output
        blocks accumulated so far (at most ``irreps_out.dim``) plus the larger of the biggest path's einsum
        (intermediates and their copies, :func:`_path_peak_elements`, and the sum into its output block) and
        the final concatenation (copies of the blocks and the output, ``2 irreps_out.dim``). ``row_weights``:
        the weights have a row per row. Within a few per cent of the tensors torch allocates, but an upper
        bound (up to several times) where size-1 dims of scalar blocks let torch skip a copy."""
        strategy = torch.backends.opt_einsum.strategy if torch.backends.opt_einsum.is_available() \
            and torch.backends.opt_einsum.enabled else None
        paths = max(_path_peak_elements(self.mode, (self._blocks1[i], self._blocks2[j], self._blocks_out[k]), row_weights, strategy)
                    + math.prod(self._blocks_out[k]) for i, j, k in self.paths)
        return self._dims[2] + max(paths, 2 * self._dims[2])

    def _forward_einsum_chunked(self, x, y, weight, batch, chunk):
        """:meth:`_forward_einsum` over chunks of ``chunk`` rows (no autograd): operands with one row
        (shared weights) are used whole, the others are flattened to ``[rows, dim]`` and sliced."""
        rows = math.prod(batch)
        flats = [t.reshape(1, t.shape[-1]) if math.prod(t.shape[:-1]) == 1 else t.expand(*batch, t.shape[-1]).reshape(rows, t.shape[-1])
                 for t in (x, y, weight)]
        out = x.new_empty(rows, self._dims[2])
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            parts = [t if t.shape[0] == 1 else t[start:stop] for t in flats]
            out[start:stop] = self._forward_einsum(*parts, (stop - start,))
        return out.reshape(*batch, self._dims[2])

    def _forward_einsum(self, x, y, weight, batch):
        xs = self._blocks(x, self._blocks1)
        ys = self._blocks(y, self._blocks2)
        outs: list[torch.Tensor | None] = [None] * len(self._blocks_out)
        offset = 0
        for n, (i, j, k) in enumerate(self.paths):
            shape = self.weight_shapes[n]
            size = math.prod(shape)
            w = weight[..., offset:offset + size].reshape(*weight.shape[:-1], *shape)
            offset += size
            cg = getattr(self, f"cg_{n}").to(x.dtype)
            term = _path_product(self.mode, xs[i], ys[j], cg, w)
            outs[k] = term if outs[k] is None else outs[k] + term
        pieces = []
        for k, (mul, dim) in enumerate(self._blocks_out):
            block = outs[k]
            if block is None:
                block = x.new_zeros(*batch, mul, dim)
            pieces.append(block.expand(*batch, mul, dim).reshape(*batch, mul * dim))
        return torch.cat(pieces, dim=-1)

    def _sparse_terms(self) -> int:
        """Multiply-adds per row of the sparse contraction (``m1 m2 m3 nnz`` per uvw path)."""
        total = 0
        for n, (i, j, k) in enumerate(self.paths):
            nnz = int(torch.count_nonzero(getattr(self, f"cg_{n}")))
            total += self._blocks1[i][0] * self._blocks2[j][0] * self._blocks_out[k][0] * nnz
        return total

    def _einsum_terms(self) -> int:
        """Multiply-adds per row of the dense uvw einsum chain (``x cg``, then ``y``, then ``W``)."""
        total = 0
        for i, j, k in self.paths:
            (m1, d1), (m2, d2), (m3, d3) = self._blocks1[i], self._blocks2[j], self._blocks_out[k]
            total += m1 * d1 * d2 * d3 + m1 * m2 * d2 * d3 + m1 * m2 * m3 * d3
        return total

    def plan(self) -> TrilinearPlan:
        """The product as a :class:`~geomdl.ops.trilinear.TrilinearPlan` (built once, from float64 CG tensors)."""
        plan = self._plan
        if plan is None:
            # recomputed rather than read from the buffers, which a .float() of the module may have rounded; plain
            # tensors, also when first built under torch.inference_mode or inside a torch.func transform
            with plain_tensors():
                cgs = [clebsch_gordan(*ls, dtype=torch.float64) * alpha
                       for ls, alpha in zip(self._degrees, self.alphas)]
                entries, coef = cg_trilinear_entries(self._blocks1, self._blocks2, self._blocks_out, self.paths, cgs,
                                                     self.mode)
                dims = (self._dims[2], self._dims[0], self._dims[1], self.weight_numel)
                built = TrilinearPlan(entries, coef, dims)
            # first calls from several threads: one plan wins; a loser's plan (and the registry id its caller may
            # already hold, the registry keeps weak references) must not replace it
            with _PLAN_LOCK:
                if self._plan is None:
                    self._plan = built
                plan = self._plan
        return plan

    def _forward_sparse(self, x, y, weight, batch):
        """The product as one call of the sparse kernel's operator. An operand without batch extent (shared
        weights) is the broadcast row; inside a compiled graph only one without leading dims (its sizes may be
        symbolic), every other operand is expanded to all rows."""
        rows = math.prod(batch)
        compiling = torch.compiler.is_compiling()
        flats, flags = [], []
        for t in (x, y, weight):
            one = t.dim() == 1 if compiling else math.prod(t.shape[:-1]) == 1
            flags.append(one)
            flats.append(t.reshape(1, t.shape[-1]) if one else t.expand(*batch, t.shape[-1]).reshape(rows, t.shape[-1]))
        return sparse_trilinear_rows(_plan_id(self), *flats, rows, tuple(flags)).reshape(*batch, self._dims[2])

    @staticmethod
    def _blocks(x, blocks):
        out, start = [], 0
        for mul, dim in blocks:
            out.append(x[..., start:start + mul * dim].reshape(*x.shape[:-1], mul, dim))
            start += mul * dim
        return out

    def extra_repr(self) -> str:
        return f"{self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, mode={self.mode}, paths={len(self.paths)}, weight_numel={self.weight_numel}"
