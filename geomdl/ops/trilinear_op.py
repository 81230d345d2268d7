"""The sparse trilinear contraction as an opaque torch operator, for ``torch.compile``.

Eagerly, :func:`geomdl.ops.trilinear.sparse_trilinear` runs one role of a :class:`TrilinearPlan` through a
Python autograd Function that holds the plan: code ``torch.compile`` does not trace into one graph. Inside
a compiled graph, callers use :func:`sparse_trilinear_compiled` instead: the operator
``geomdl::sparse_trilinear_plan_op`` runs the same role on real tensors (the compiled kernel or the
reference, as eagerly); the compiler sees only its output shape (a fake implementation) and its gradient,
which is again the operator, at another role of the same plan. So a compiled graph keeps the kernel
instead of tracing the einsum chain.

Plans reach the operator through an integer id (a registry of weak references: a graph compiled for a
plan keeps working while the plan's owner, e.g. the layer, lives). Broadcast operands (one row) are
fixed by the caller as a bit mask, and the number of rows is an explicit (symbolic) argument, so the fake
implementation never compares sizes (which may be known only at run time).
"""
from __future__ import annotations

import itertools
import weakref

import torch

from geomdl.ops.trilinear import TrilinearPlan, _run

_PLANS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_IDS = itertools.count()


def plan_op_id(plan: TrilinearPlan) -> int:
    """The registry id of ``plan`` (assigned on first use)."""
    pid = getattr(plan, "_op_id", None)
    if pid is None:
        pid = plan._op_id = next(_IDS)
        _PLANS[pid] = plan
    return pid


def _plan(plan_id: int) -> TrilinearPlan:
    plan = _PLANS.get(plan_id)
    if plan is None:
        raise RuntimeError(f"geomdl::sparse_trilinear_plan_op: plan {plan_id} no longer exists (its owner, e.g. the "
                           "layer a graph was compiled for, was deleted)")
    return plan


@torch.library.custom_op("geomdl::sparse_trilinear_plan_op", mutates_args=())
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


def _backward(ctx, grad):
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


def sparse_trilinear_compiled(plan_id: int, a: torch.Tensor, b: torch.Tensor, w: torch.Tensor, rows,
                              broadcast: tuple[bool, bool, bool]) -> torch.Tensor:
    """``sparse_trilinear(plan, a, b, w)`` through the operator, ``plan_id = plan_op_id(plan)`` (obtain it
    outside the traced code, e.g. with ``torch.compiler.assume_constant_result``): ``a, b, w`` 2-D, each with
    ``rows`` rows or, where ``broadcast`` says so, one row -> ``[rows, W]``. Differentiable (first order
    under ``torch.compile``, any order eagerly)."""
    mask = sum(1 << p for p, flag in enumerate(broadcast) if flag)
    return sparse_trilinear_plan_op(a.contiguous(), b.contiguous(), w.contiguous(), rows, plan_id, 0, mask)
