"""``assert_exports``: a layer or model exports with ``torch.export.export`` and the exported program gives
the eager results, on the example inputs and on others (e.g. other numbers of nodes and edges), also after a
``torch.export.save`` / ``torch.export.load`` round trip.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import torch

from geomdl.testing.compile import _flat_tensors


def _compare(program, module, args, what, atol, rtol):
    with torch.no_grad():
        expected = _flat_tensors(module(*args))
        got = _flat_tensors(program.module()(*args))
    if len(got) != len(expected):
        raise AssertionError(f"{what}: the exported program returned {len(got)} tensors, eager {len(expected)}")
    for k, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=lambda m, k=k: f"{what}, output {k}: {m}")


def _check_other_args(other_args) -> list[tuple]:
    """``other_args`` as a list of input tuples; a ``TypeError`` naming it when it, or an entry, is not a list/tuple
    (one input tuple ``(x2, batch2)`` passed where a list of them, ``[(x2, batch2)]``, is expected ran the program
    on the rows of ``x2`` and failed with an unrelated "forward() takes N positional arguments")."""
    if isinstance(other_args, (torch.Tensor, str, bytes)) or not isinstance(other_args, Sequence):
        raise TypeError(f"other_args must be a sequence of input tuples, e.g. [(x2, batch2)], got {type(other_args).__name__}")
    for i, a in enumerate(other_args):
        if not isinstance(a, (tuple, list)):
            raise TypeError(f"other_args[{i}] must be a tuple of inputs like args, got {type(a).__name__} "
                            f"(for one more input tuple pass [(x2, batch2)], not (x2, batch2))")
    return [tuple(a) for a in other_args]


def assert_exports(module: torch.nn.Module, args: Sequence, dynamic_shapes=None, other_args: Sequence[Sequence] = (), *,
                   save_load: bool = True, strict: bool = False, atol: float = 1e-10,
                   rtol: float = 1e-8) -> torch.export.ExportedProgram:
    """Export ``module`` with ``torch.export.export`` and compare the exported program with eager ``module``.

    Args:
        module: an ``nn.Module`` called as ``module(*args)``; returns a tensor or a (nested) tuple/list/dict
            of tensors. Put it in ``eval()`` mode first when it has dropout or batch norm.
        args: the example inputs the program is traced with.
        dynamic_shapes: passed to ``torch.export.export``, e.g. ``({0: Dim("nodes")}, {1: Dim("edges")})``.
        other_args: a list of further input tuples the program is run on (other sizes along the dynamic
            dimensions), each compared with eager: ``[(x2, batch2)]`` for one more.
        save_load: also ``torch.export.save`` the program to memory, ``torch.export.load`` it and compare
            again (every input tuple).
        strict: passed to ``torch.export.export`` (default: non-strict tracing, torch's default).
        atol, rtol: tolerances of :func:`torch.testing.assert_close` (defaults suit float64).

    Returns:
        The exported program.

    Raises:
        AssertionError: the export failed (the message names the cause: e.g. a data-dependent branch, a
            dimension declared dynamic that the code specialized), or the program's outputs differ from eager.
        TypeError: ``module`` is not an ``nn.Module``, or ``other_args`` is not a list of input tuples.
    """
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"assert_exports: torch.export.export needs an nn.Module, got {type(module).__name__}")
    other_args = _check_other_args(other_args)
    try:
        program = torch.export.export(module, tuple(args), dynamic_shapes=dynamic_shapes, strict=strict)
    except Exception as exc:
        lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
        where = [line for line in lines if line.startswith("File ")][-1:]  # the call that raised, when torch names it
        detail = " ".join(lines[:2] + where)[:800]
        raise AssertionError(f"torch.export.export failed: {type(exc).__name__}: {detail}") from exc
    inputs = [("example inputs", tuple(args))] + [(f"other_args[{i}]", tuple(a)) for i, a in enumerate(other_args)]
    for what, a in inputs:
        _compare(program, module, a, what, atol, rtol)
    if save_load:
        buffer = io.BytesIO()
        torch.export.save(program, buffer)
        buffer.seek(0)
        loaded = torch.export.load(buffer)
        for what, a in inputs:
            _compare(loaded, module, a, f"{what} after save/load", atol, rtol)
    return program
