"""The PaiNN message block as one op: ``painn_message`` (compiled or reference) and ``painn_message_reference``.

For edges ``j -> i`` (``edge_index[0] = j``, ``edge_index[1] = i``), node features ``phi [N, 3F]`` (the layer's
``phi(s_j)``, columns ``[phi_s | phi_vv | phi_vs]``), edge filters ``w [E, 3F]`` (same split), vector features
``vectors [N, 3, F]`` and edge unit vectors ``unit [E, 3]``:

.. math::
    m^s_i = \\sum_{j} \\phi_s(j) \\odot w_s(ij), \\qquad
    m^v_i = \\sum_{j} \\big(\\phi_{vv}(j) \\odot w_{vv}(ij)\\big)\\, v_j
          + \\big(\\phi_{vs}(j) \\odot w_{vs}(ij)\\big)\\, \\hat r_{ij}

(:class:`geomdl.nn.PaiNNLayer`). Written with PyTorch ops this gathers ``phi`` and ``vectors`` per edge,
multiplies, concatenates and scatters: about ten passes over ``[E, 3F]`` tensors, forward and backward. The
compiled CPU kernel (``kernels/painn_message/``) makes one pass over the edges forward and one backward,
without edge-sized intermediates other than the gradients of ``w`` and ``unit``.

Precision: every product is rounded in the input dtype as the PyTorch ops round it, and the sums run in float64
in edge order (per target forward, per source backward) and are rounded once; the forward gives the reference's
bits (whose scatter also sums in float64 in row order), the backward agrees to rounding. Results do not depend on
the number of threads.

Derivatives: the compiled forward's gradient is a compiled backward op (one pass); that op's own gradient (second
derivatives, e.g. training on forces) is computed from the PyTorch formula of the backward, so derivatives of any
order exist (first order inside ``torch.compile``). Other dtypes (half) and forward-mode AD run the reference; on a
device without the kernel (CUDA) the op runs its PyTorch ops with that device's compiled scatter, without a warning.
"""
from __future__ import annotations

import numbers

import torch

from geomdl.ops._extension import extension_loaded, has_kernel, use_compiled
from geomdl.ops._validation import check_index_values
from geomdl.ops.scatter import scatter, scatter_reference


def _check(phi, w, vectors, unit, edge_index, num_nodes):
    for name, t in (("phi", phi), ("w", w), ("vectors", vectors), ("unit", unit), ("edge_index", edge_index)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if phi.dim() != 2 or phi.shape[1] % 3:
        raise ValueError(f"phi must have shape [N, 3F], got {tuple(phi.shape)}")
    if not phi.is_floating_point():
        raise TypeError(f"phi must be a floating tensor, got {phi.dtype}")
    n, f = phi.shape[0], phi.shape[1] // 3
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
    if edge_index.dtype != torch.long:
        raise TypeError(f"edge_index must be an int64 tensor, got {edge_index.dtype}")
    e = edge_index.shape[1]
    for name, t, shape in (("w", w, (e, 3 * f)), ("vectors", vectors, (n, 3, f)), ("unit", unit, (e, 3))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {list(shape)} (phi is [{n}, {3 * f}], edge_index [2, {e}]), "
                             f"got {tuple(t.shape)}")
        if t.dtype != phi.dtype or t.device != phi.device:
            raise ValueError(f"{name} must have phi's dtype and device ({phi.dtype}, {phi.device}), "
                             f"got ({t.dtype}, {t.device})")
    if edge_index.device != phi.device:
        raise ValueError(f"edge_index must be on phi's device ({phi.device}), got {edge_index.device}")
    if num_nodes is None:
        num_nodes = n
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (numbers.Integral, torch.SymInt)) or num_nodes < 0:
        raise ValueError(f"num_nodes must be an int >= 0, got {num_nodes!r}")
    if not isinstance(num_nodes, (int, torch.SymInt)):  # a NumPy integer: a Python int from here on
        num_nodes = int(num_nodes)
    return f, num_nodes


def painn_message(phi: torch.Tensor, w: torch.Tensor, vectors: torch.Tensor, unit: torch.Tensor,
                  edge_index: torch.Tensor, num_nodes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PaiNN's summed messages (module docstring).

    Args:
        phi: ``[N, 3F]`` per-node factors ``[phi_s | phi_vv | phi_vs]`` (read at the source ``j``).
        w: ``[E, 3F]`` per-edge filters, same split.
        vectors: ``[N, 3, F]`` vector features (component-major: channels contiguous).
        unit: ``[E, 3]`` unit vectors ``r_ij / |r_ij|``.
        edge_index: int64 ``[2, E]``, row 0 the source ``j`` (in ``[0, N)``), row 1 the target ``i``.
        num_nodes: number of targets (default ``N``); row 1 must lie in ``[0, num_nodes)``.

    Returns:
        ``(m_s [num_nodes, F], m_v [num_nodes, 3, F])``, views of one ``[num_nodes, 4F]`` tensor.

    Raises:
        TypeError: non-tensors, a non-floating ``phi``, a non-int64 ``edge_index``.
        ValueError: shapes other than the above, dtypes or devices differing from ``phi``'s, entries of
        ``edge_index`` out of range.
    """
    f, num_nodes = _check(phi, w, vectors, unit, edge_index, num_nodes)
    n = phi.shape[0]
    vec = vectors.reshape(n, 3 * f)
    # a device without this kernel (CUDA) takes the PyTorch ops below, summed by that device's compiled scatter,
    # quietly: a fused op without its kernel is no fallback to a slow reference, nothing to warn about
    kernel_here = not extension_loaded() or has_kernel("painn_message", phi.device.type)
    if kernel_here and use_compiled("painn_message", phi, w, vectors, unit):
        out = torch.ops.geomdl.painn_message(phi.contiguous(), w.contiguous(), vec.contiguous(), unit.contiguous(),
                                             edge_index[0].contiguous(), edge_index[1].contiguous(), num_nodes)
    else:
        check_index_values(edge_index[0], "edge_index[0]", n)
        if kernel_here:  # (without the kernel, the device's compiled scatter checks edge_index[1] in its own pass:
            # a second aminmax and device->host read per call here would only repeat it)
            check_index_values(edge_index[1], "edge_index[1]", num_nodes)
        out = _message(phi, w, vec, unit, edge_index[0], edge_index[1], num_nodes, scatter)
    return out[:, :f], out[:, f:].view(num_nodes, 3, f)


def painn_message_reference(phi: torch.Tensor, w: torch.Tensor, vectors: torch.Tensor, unit: torch.Tensor,
                            edge_index: torch.Tensor, num_nodes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-PyTorch :func:`painn_message` (same arguments, results and gradients): gather, multiply, concatenate
    and :func:`geomdl.ops.scatter_reference` (float64 sums in edge order)."""
    f, num_nodes = _check(phi, w, vectors, unit, edge_index, num_nodes)
    n = phi.shape[0]
    check_index_values(edge_index[0], "edge_index[0]", n)
    check_index_values(edge_index[1], "edge_index[1]", num_nodes)
    out = _message(phi, w, vectors.reshape(n, 3 * f), unit, edge_index[0], edge_index[1], num_nodes, scatter_reference)
    return out[:, :f], out[:, f:].view(num_nodes, 3, f)


def _message(phi, w, vec, unit, src, dst, num_nodes, scatter_fn):
    """``[num_nodes, 4F]``: the messages of the module docstring with PyTorch ops (``vec [N, 3F]``)."""
    f, e = phi.shape[1] // 3, src.shape[0]
    x = phi.index_select(0, src) * w                                                   # [E, 3F]
    ds, dvv, dvs = x[:, :f], x[:, f:2 * f], x[:, 2 * f:]
    dv = dvv.unsqueeze(1) * vec.index_select(0, src).view(e, 3, f) + dvs.unsqueeze(1) * unit.unsqueeze(2)
    return scatter_fn(torch.cat([ds, dv.reshape(e, 3 * f)], dim=1), dst, 0, num_nodes)


def _backward_formula(grad, phi, w, vec, unit, src, dst):
    """The gradients ``(phi, w, vec, unit)`` of :func:`_message` for the output gradient ``grad [S, 4F]``, with
    PyTorch ops (differentiated by ``torch.func.vjp`` for the gradient of the compiled backward op)."""
    n, f, e = phi.shape[0], phi.shape[1] // 3, src.shape[0]
    ge = grad.index_select(0, dst)                                                     # [E, 4F]
    gs, gv = ge[:, :f], ge[:, f:].reshape(e, 3, f)
    p = phi.index_select(0, src)
    vj = vec.index_select(0, src).view(e, 3, f)
    pvv, pvs = p[:, f:2 * f], p[:, 2 * f:]
    wvv, wvs = w[:, f:2 * f], w[:, 2 * f:]
    gx = torch.cat([gs, (gv * vj).sum(1), (gv * unit.unsqueeze(2)).sum(1)], dim=1)  # d out / d (phi[src] * w)
    g_phi = phi.new_zeros((n, 3 * f)).index_add(0, src, gx * w)
    g_vec = phi.new_zeros((n, 3 * f)).index_add(0, src, ((pvv * wvv).unsqueeze(1) * gv).reshape(e, 3 * f))
    g_unit = (gv * (pvs * wvs).unsqueeze(1)).sum(2)
    return g_phi, gx * p, g_vec, g_unit


# --- autograd and fake kernels of the compiled ops -------------------------------------------------------------


def _setup_forward(ctx, inputs, output):
    phi, w, vec, unit, src, dst, num_nodes = inputs
    ctx.save_for_backward(phi, w, vec, unit, src, dst)


def _backward_forward(ctx, grad):
    phi, w, vec, unit, src, dst = ctx.saved_tensors
    g_phi, g_w, g_vec, g_unit = torch.ops.geomdl.painn_message_backward(grad.contiguous(), phi, w, vec, unit, src, dst)
    return g_phi, g_w, g_vec, g_unit, None, None, None


def _setup_backward(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward_backward(ctx, *grads):
    """Gradient of the backward op: the vector-Jacobian product of the PyTorch backward formula
    (``torch.func.vjp``: partial derivatives in the saved tensors, whatever their history). Under
    ``create_graph`` the result is differentiable in turn: derivatives of any order."""
    saved = ctx.saved_tensors
    src, dst = saved[5], saved[6]
    outs, vjp_fn = torch.func.vjp(lambda *t: _backward_formula(*t, src, dst), *saved[:5])
    result = vjp_fn(tuple(torch.zeros_like(o) if g is None else g for o, g in zip(outs, grads)))
    return (*(r if ctx.needs_input_grad[k] else None for k, r in enumerate(result)), None, None)


def _register() -> None:
    if not extension_loaded():
        return
    torch.library.register_autograd("geomdl::painn_message", _backward_forward, setup_context=_setup_forward)
    torch.library.register_autograd("geomdl::painn_message_backward", _backward_backward, setup_context=_setup_backward)

    @torch.library.register_fake("geomdl::painn_message")
    def _fake(phi, w, vec, unit, src, dst, num_nodes):
        return phi.new_empty((num_nodes, 4 * (phi.shape[1] // 3)))

    @torch.library.register_fake("geomdl::painn_message_backward")
    def _fake_backward(grad, phi, w, vec, unit, src, dst):
        return torch.empty_like(phi), torch.empty_like(w), torch.empty_like(vec), torch.empty_like(unit)


_register()
