"""Loading ``torch.export`` programs of geomdl models in a fresh process.

A program saved with ``torch.export.save`` names geomdl's operators (``torch.ops.geomdl.radius``,
``scatter_reduce``, ``fps``, the Gaunt products, ...). ``torch.export.load`` resolves them by name, so they
must be registered first. ``import geomdl`` alone does not register them (it does not import torch);
:func:`register_operators` does, and :func:`load` registers and then loads::

    import geomdl.export
    program = geomdl.export.load("model.pt2")
    out = program.module()(pos, batch)
"""
from __future__ import annotations

import logging
import re

import torch


def register_operators() -> None:
    """Register every ``torch.ops.geomdl`` operator: the compiled extension's kernels and the operators
    defined in Python (the Gaunt products, the sparse CG product).

    Raises:
        RuntimeError: the compiled extension ``geomdl._C`` cannot be loaded (the message says why); without
            it the neighbour, FPS and scatter operators of exported graphs cannot run.
    """
    from geomdl import ops  # loads geomdl._C and registers the shape functions of its operators
    from geomdl.o3 import gaunt_ops  # noqa: F401  (defines geomdl::gaunt_features_op, gaunt_columns_op)

    if not ops.extension_loaded():
        raise RuntimeError(f"geomdl's operators are not available: {ops.extension_error()}")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.text = []

    def emit(self, record):
        self.text.append(self.format(record))


def load(path, **kwargs) -> torch.export.ExportedProgram:
    """``torch.export.load(path, **kwargs)`` after :func:`register_operators`.

    Raises:
        RuntimeError: the extension is missing, or the program calls an operator that is not registered
            (e.g. saved by another geomdl version); the message names it. (``torch.export.load`` itself
            only logs the cause and raises "check the warnings above".)
    """
    register_operators()
    records, logger = _Records(), logging.getLogger("torch.export")
    logger.addHandler(records)
    try:
        return torch.export.load(path, **kwargs)
    except Exception as exc:
        missing = re.search(r"resolve (torch\.ops\.[\w.]+) to an operator", "\n".join(records.text))
        if missing is None:
            raise
        raise RuntimeError(f"{path}: the program calls {missing.group(1)}, which is not registered (saved by "
                           "another geomdl version, or an operator of another library?)") from exc
    finally:
        logger.removeHandler(records)
