"""Sparse trilinear contraction: the kernel behind the exact Clebsch-Gordan tensor product.

A :class:`TrilinearPlan` lists entries ``(t, i, j, k, c)``; for operands ``a [R, Fa]``, ``b [R, Fb]``,
``w [R, Fw]`` (any of them may have one row, broadcast over ``R``):

.. math::
    \\mathrm{out}[r, t] = \\sum_{n} c_n\\, a[r, i_n]\\, b[r, j_n]\\, w[r, k_n] .

The four columns ``(t, i, j, k)`` play symmetric roles: ``dL/da[r, i] = sum_n c_n g[r, t_n] b[r, j_n]
w[r, k_n]`` is the same contraction with the roles of ``t`` and ``i`` exchanged, and so on. The plan
therefore holds four tables ("roles": the output and the gradient of each operand), and the backward of
every role is a call of another role, so derivatives of any order exist.

``geomdl::sparse_trilinear`` (``kernels/trilinear/``) runs one role on the CPU: rows in blocks of 256
bytes of each column, transposed so that each term is one vector multiply-add over the block, the terms of
one target grouped by the column of their third operand (the path weight of a CG product, multiplied once
per group). :func:`sparse_trilinear_reference` is the same maths in PyTorch (gather, multiply,
``index_add_``, in row chunks); it runs on other devices, for other dtypes, and with
``GEOMDL_KERNELS=reference``.

Every call, eager or inside ``torch.compile``, goes through one opaque operator,
``geomdl::sparse_trilinear_plan_op(t1, t2, t3, rows, plan_id, role, bcast)``: it runs a role on real tensors
(the kernel or the reference); the compiler sees only its shape function and its gradient, which is the
operator at another role of the same plan. Plans reach it by an integer id (a registry of weak references;
:func:`plan_op_id` is a constant for the compiler). The number of rows is an explicit (possibly symbolic)
argument and the broadcast operands a bit mask fixed by the caller, so the shape function compares no
sizes (which may be known only at run time).
"""
from __future__ import annotations

import itertools
import weakref

import torch

from geomdl.ops._extension import forward_ad_active, get_backend, use_compiled
from geomdl.utils.constants import plain_tensors

OP = "sparse_trilinear"
_CHUNK_ELEMENTS = 1 << 22  # reference: rows per chunk x entries kept below this


class _Role:
    """Tables of one role: target slot ``target``, operand slots ``slots`` (ascending), and the kernel's order
    ``order`` of those operands (the last is the grouped one); int64 CSR tables and float64 coefficients."""

    def __init__(self, entries: torch.Tensor, coef: torch.Tensor, widths: tuple[int, int, int, int], target: int):
        self.target = target
        self.slots = tuple(s for s in range(4) if s != target)
        self.width = widths[target]
        t = entries[:, target]
        # group on the operand that leaves the fewest (target, column) groups: the weight, in a CG product
        best = min(self.slots, key=lambda s: (torch.unique(t * (widths[s] + 1) + entries[:, s]).numel(), -s))
        self.order = tuple(s for s in self.slots if s != best) + (best,)
        s1, s2, s3 = self.order
        # entries sorted by (target, x3 column, x1 column, x2 column): stable sorts from the last key to the first (one
        # packed int64 key would overflow once the widths' product passes 2**63, and mix up targets)
        perm = torch.arange(len(entries))
        for s in (s2, s1, s3, target):
            perm = perm[torch.argsort(entries[perm, s], stable=True)]
        e = entries[perm]
        self.coef = coef[perm].contiguous()
        self.pair = e[:, [s1, s2]].contiguous()
        new_group = torch.ones(len(e), dtype=torch.bool)  # an entry starting a (target, x3 column) group
        new_group[1:] = (e[1:, target] != e[:-1, target]) | (e[1:, s3] != e[:-1, s3])
        starts = torch.nonzero(new_group).flatten()
        self.group_ptr = torch.cat([starts, torch.tensor([len(e)])])
        self.group_col = e[starts, s3].contiguous()
        counts = torch.bincount(e[starts, target], minlength=self.width)
        self.target_ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
        self.entry_target = e[:, target].contiguous()  # for the reference
        self._cache: dict = {}

    def tables(self, dtype: torch.dtype, device: torch.device):
        key = (dtype, device)
        if key not in self._cache:
            with plain_tensors():  # constants, also when first asked for inside a torch.func transform
                self._cache[key] = tuple(x.to(device) for x in (self.target_ptr, self.group_ptr, self.group_col,
                                                                self.pair)) + (self.coef.to(device=device, dtype=dtype),)
        return self._cache[key]


class TrilinearPlan:
    """The entries of a sparse trilinear form and its four role tables.

    Args:
        entries: int64 ``[n, 4]``, columns ``(t, i, j, k)`` (output, ``a``, ``b``, ``w`` column).
        coef: ``[n]`` coefficients (kept in float64, cast per call).
        widths: ``(W, Fa, Fb, Fw)``, the number of columns of the output and of each operand.

    Duplicate entries add up. Raises ``ValueError`` on an entry outside ``widths``.
    """

    def __init__(self, entries: torch.Tensor, coef: torch.Tensor, widths: tuple[int, int, int, int]):
        entries = torch.as_tensor(entries)
        if entries.numel() and (entries.is_floating_point() or entries.is_complex() or entries.dtype == torch.bool):
            raise TypeError(f"entries must hold integer column indices, got dtype {entries.dtype}")
        entries = entries.to(device="cpu", dtype=torch.long)
        if entries.dim() != 2 or entries.shape[1] != 4:
            raise ValueError(f"entries must have shape [n, 4] (t, i, j, k), got {tuple(entries.shape)}")
        coef = torch.as_tensor(coef, dtype=torch.float64).reshape(-1).cpu()
        try:  # None, a string or non-numbers are the same error, not a TypeError of len() or int()
            bad = len(widths) != 4 or any(int(w) < 0 or int(w) != w for w in widths)
        except (TypeError, ValueError):
            bad = True
        if bad:
            raise ValueError(f"widths must be 4 non-negative ints (W, Fa, Fb, Fw), got {widths!r}")
        if coef.numel() != entries.shape[0]:
            raise ValueError(f"coef must have one value per entry ({entries.shape[0]}), got {coef.numel()}")
        self.widths = tuple(int(w) for w in widths)
        for s in range(4):
            col = entries[:, s]
            if col.numel() and (col.min() < 0 or col.max() >= self.widths[s]):
                raise ValueError(f"entries[:, {s}] must lie in [0, {self.widths[s]}), got values in "
                                 f"[{int(col.min())}, {int(col.max())}]")
        self.num_entries = entries.shape[0]
        # plain tensors, also for a plan built under torch.inference_mode: its tables are saved for backward later
        with torch.inference_mode(False):
            self.roles = [_Role(entries, coef, self.widths, r) for r in range(4)]

    def __repr__(self) -> str:
        return f"TrilinearPlan(entries={self.num_entries}, widths={self.widths})"

    def __getstate__(self):
        # the registry id belongs to this process and this object: a copy (deepcopy, pickle, torch.save of the
        # module) registers itself on first use, never under the id of another (or no longer existing) plan
        state = self.__dict__.copy()
        state.pop("_op_id", None)
        return state


def _run(plan: TrilinearPlan, role: int, operands: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Role ``role`` on ``operands`` (2-D, at the role's slots in ascending order) -> ``[R, width]``."""
    r = plan.roles[role]
    x1, x2, x3 = _kernel_order(r, operands)
    if use_compiled(OP, x1):
        tp, gp, gc, pair, coef = r.tables(x1.dtype, x1.device)
        return torch.ops.geomdl.sparse_trilinear(x1.contiguous(), x2.contiguous(), x3.contiguous(), tp, gp, gc, pair,
                                                 coef, r.width)
    return _reference_role(r, x1, x2, x3)


def _kernel_order(r: _Role, operands):
    by_slot = dict(zip(r.slots, operands))
    return tuple(by_slot[s] for s in r.order)


def _reference_role(r: _Role, x1, x2, x3) -> torch.Tensor:
    """Role ``r`` on operands in the kernel's order ``r.order``."""
    tp, gp, gc, pair, coef = r.tables(x1.dtype, x1.device)
    rows = next((x.shape[0] for x in (x1, x2, x3) if x.shape[0] != 1), 1)  # 1-row operands broadcast
    col3 = torch.repeat_interleave(gc, gp[1:] - gp[:-1])  # x3 column of each entry
    target = r.entry_target.to(x1.device)
    out = x1.new_zeros((rows, r.width))
    step = max(1, _CHUNK_ELEMENTS // max(1, len(coef)))
    for start in range(0, max(rows, 1), step):  # one (empty) chunk at 0 rows keeps the graph
        sl = slice(start, min(rows, start + step))
        parts = [x[sl] if x.shape[0] != 1 else x for x in (x1, x2, x3)]
        terms = coef * parts[0][:, pair[:, 0]] * parts[1][:, pair[:, 1]] * parts[2][:, col3]
        out[sl].index_add_(1, target, terms)
    return out


_PLANS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_IDS = itertools.count()


@torch.compiler.assume_constant_result
def plan_op_id(plan: TrilinearPlan) -> int:
    """The registry id of ``plan`` (assigned on first use; a constant of a compiled graph)."""
    pid = getattr(plan, "_op_id", None)
    if pid is None or _PLANS.get(pid) is not plan:  # also a copy that kept its original's id
        pid = plan._op_id = next(_IDS)
        _PLANS[pid] = plan
    return pid


def _plan(plan_id: int) -> TrilinearPlan:
    plan = _PLANS.get(plan_id)
    if plan is None:
        raise RuntimeError(f"geomdl::sparse_trilinear_plan_op: plan {plan_id} no longer exists (its owner, e.g. the "
                           "layer a graph was compiled for, was deleted)")
    return plan


# The schema is written out: torch < 2.5 cannot infer it from the string annotations of
# ``from __future__ import annotations`` (it is the schema torch >= 2.5 infers).
@torch.library.custom_op("geomdl::sparse_trilinear_plan_op", mutates_args=(),
                         schema="(Tensor t1, Tensor t2, Tensor t3, SymInt rows, SymInt plan_id, SymInt role, "
                                "SymInt bcast) -> Tensor")
def sparse_trilinear_plan_op(t1: torch.Tensor, t2: torch.Tensor, t3: torch.Tensor, rows: int, plan_id: int, role: int,
                             bcast: int) -> torch.Tensor:
    """Role ``role`` of plan ``plan_id`` on ``t1, t2, t3`` (the role's operand slots in ascending order; bit
    ``p`` of ``bcast`` set: operand ``p`` has one row) -> ``[rows, widths[role]]``."""
    return _run(_plan(plan_id), role, (t1, t2, t3))


@sparse_trilinear_plan_op.register_fake
def _(t1, t2, t3, rows, plan_id, role, bcast):
    return t1.new_empty((rows, _plan(plan_id).widths[role]))


def _setup(ctx, inputs, output):
    t1, t2, t3, rows, plan_id, role, bcast = inputs
    ctx.save_for_backward(t1, t2, t3)
    ctx.args = (rows, plan_id, role, bcast)
    ctx.plan = _PLANS.get(plan_id)  # the graph keeps its plan alive (the registry holds weak references only)


def _backward(ctx, grad):
    """The gradient of each operand: the role of that operand, on the output gradient and the other two."""
    rows, plan_id, role, bcast = ctx.args
    plan = _plan(plan_id)
    slots = plan.roles[role].slots
    tensors = dict(zip(slots, ctx.saved_tensors))
    tensors[role] = grad.contiguous()
    flags = {s: bool(bcast >> p & 1) for p, s in enumerate(slots)}
    flags[role] = False
    grads = []
    for pos, slot in enumerate(slots):
        if not ctx.needs_input_grad[pos]:
            grads.append(None)
            continue
        other = plan.roles[slot].slots
        mask = sum(1 << p for p, s in enumerate(other) if flags[s])
        g = sparse_trilinear_plan_op(*(tensors[s] for s in other), rows, plan_id, slot, mask)
        grads.append(g.sum(0, keepdim=True) if flags[slot] else g)
    return (*grads, None, None, None, None)


sparse_trilinear_plan_op.register_autograd(_backward, setup_context=_setup)


def sparse_trilinear_rows(plan_id: int, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, rows,
                          broadcast: tuple[bool, bool, bool]) -> torch.Tensor:
    """:func:`sparse_trilinear` without checks, for callers that know the layout (e.g. a layer inside a compiled
    graph): ``plan_id = plan_op_id(plan)``; ``a, b, w`` 2-D, each with ``rows`` rows or, where ``broadcast``
    says so, one row -> ``[rows, W]``."""
    if not torch.compiler.is_compiling() and forward_ad_active():  # tangents do not cross the opaque operator
        plan = _plan(plan_id)
        if get_backend() == "compiled":
            raise RuntimeError("geomdl.ops.sparse_trilinear: the compiled kernel has no forward-mode AD (jvp) and no torch.func "
                               "transform rules")
        return _reference_role(plan.roles[0], *_kernel_order(plan.roles[0], (a, b, w)))
    mask = sum(1 << p for p, flag in enumerate(broadcast) if flag)
    return sparse_trilinear_plan_op(a.contiguous(), b.contiguous(), w.contiguous(), rows, plan_id, 0, mask)


def _check(x, name: str, width: int, dtype=None, device=None) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[1] != width:
        raise ValueError(f"{name} must have shape [rows, {width}], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {x.dtype}")
    if dtype is not None and (x.dtype != dtype or x.device != device):
        raise ValueError(f"{name} must have the dtype and device of a ({dtype}, {device}), got ({x.dtype}, {x.device})")


def _validate(plan, a, b, w):
    if not isinstance(plan, TrilinearPlan):
        raise TypeError(f"plan must be a TrilinearPlan, got {type(plan).__name__}")
    _, fa, fb, fw = plan.widths
    _check(a, "a", fa)
    _check(b, "b", fb, a.dtype, a.device)
    _check(w, "w", fw, a.dtype, a.device)
    rows = {x.shape[0] for x in (a, b, w)} - {1}
    if len(rows) > 1:
        raise ValueError(f"a, b, w must have the same number of rows or 1, got {a.shape[0]}, {b.shape[0]}, {w.shape[0]}")


def sparse_trilinear(plan: TrilinearPlan, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``out[r, t] = sum_n c_n a[r, i_n] b[r, j_n] w[r, k_n]``: ``a [R|1, Fa]``, ``b [R|1, Fb]``, ``w [R|1, Fw]``
    (same dtype and device) -> ``[R, W]``. Differentiable to any order (first order inside ``torch.compile``);
    compiled kernels for float32/float64 on the CPU and CUDA.

    ``plan`` (a :class:`TrilinearPlan`) holds the entries ``(t_n, i_n, j_n, k_n)``, the coefficients ``c_n``
    and the widths ``(W, Fa, Fb, Fw)``. Raises ``TypeError`` for a ``plan`` that is no :class:`TrilinearPlan`
    or non-tensor / non-floating operands, ``ValueError`` for operands that are not 2-D with the plan's widths,
    that differ from ``a`` in dtype or device, or whose row counts (other than 1) disagree."""
    _validate(plan, a, b, w)
    rows = next((x.shape[0] for x in (a, b, w) if x.shape[0] != 1), 1)
    return sparse_trilinear_rows(plan_op_id(plan), a, b, w, rows, tuple(x.shape[0] == 1 for x in (a, b, w)))


def sparse_trilinear_reference(plan: TrilinearPlan, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Pure-PyTorch :func:`sparse_trilinear` (autograd through gather and ``index_add_``), in row chunks."""
    _validate(plan, a, b, w)
    return _reference_role(plan.roles[0], *_kernel_order(plan.roles[0], (a, b, w)))
