"""Fast path of the segment ops (``scatter``, ``segment_softmax``) for their most common eager call.

These ops run once or more per layer, often on small graphs, where the general argument handling
(moving ``dim`` to the front, flattening, the checks that name a bad argument) takes longer than the
kernel: about 14 us of a 22 us call on 100 rows (``python -m benchmarks ops --only scatter_small``).

:func:`segment_call` takes only calls whose checks are trivial:

* ``src`` a float32/float64 tensor with 1 or 2 dimensions, reduced along dimension 0;
* ``index`` an int64 vector with one entry per row of ``src``, on the same device;
* the number of segments a given non-negative ``int``;
* eager mode, and the compiled kernel selected for the device (:func:`compiled_ready`).

The kernel checks the range of ``index`` in its own pass, as on the general path. When no gradient
can flow (grad mode off or ``src`` not requiring grad, no functorch transform active), the op is
called below the autograd layer, which skips its Python autograd kernel (about 4 us): the result has
no ``grad_fn``, which it would not have had anyway. Every other call returns ``None`` and the caller
takes the general path, which gives the same results and raises the errors.
"""
from __future__ import annotations

import torch

from geomdl.ops._extension import compiled_ready

_FLOATS = (torch.float32, torch.float64)


def _needs_autograd(src: torch.Tensor) -> bool:
    return (torch.is_grad_enabled() and src.requires_grad) or torch._C._functorch.peek_interpreter_stack() is not None


def segment_call(kernel: str, src, index, dim, num_segments, *extra):
    """``torch.ops.geomdl.<kernel>(src2, index, num_segments, *extra)`` on the fast path.

    Returns the op's first output in ``src``'s layout (``[num_segments]`` or ``[num_segments, C]`` for a
    reduction, ``src``'s shape for an elementwise op), or ``None`` when the call is not eligible (see
    the module docstring)."""
    if torch.compiler.is_compiling():  # traced graphs take the general path (symbolic sizes)
        return None
    if not (type(src) is torch.Tensor and type(index) is torch.Tensor and type(num_segments) is int and type(dim) is int):
        return None
    nd = src.dim()
    if not (0 < nd <= 2 and (dim == 0 or dim == -nd) and num_segments >= 0 and index.dim() == 1
            and index.dtype == torch.int64 and src.dtype in _FLOATS and index.shape[0] == src.shape[0]
            and index.device == src.device):
        return None
    if not compiled_ready(kernel, src.device.type):
        return None
    op = getattr(torch.ops.geomdl, kernel).default
    src2 = src.unsqueeze(1) if nd == 1 else src
    if _needs_autograd(src2):
        out = op(src2.contiguous(), index.contiguous(), num_segments, *extra)
    else:
        with torch._C._AutoDispatchBelowAutograd():
            out = op(src2.contiguous(), index.contiguous(), num_segments, *extra)
    if isinstance(out, tuple):
        out = out[0]
    return out.squeeze(1) if nd == 1 else out
