"""Loading of the compiled extension ``geomdl._C`` and the choice of backend.

The backend is chosen by the environment variable ``GEOMDL_KERNELS``:

``auto`` (default)
    use the compiled op when the extension is loaded and supports the input (device, dtype);
    otherwise use the pure-PyTorch ``<op>_reference``. When the extension cannot be loaded, one
    :class:`GeomdlKernelWarning` names the reason (never a silent fallback).
``compiled``
    always use the compiled op; raise :class:`RuntimeError` if it is not available.
``reference``
    always use the pure-PyTorch references.

It can also be set at run time with :func:`set_backend` or temporarily with :func:`use_backend`.
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings

import torch

from geomdl.utils.constants import functorch_active

BACKENDS = ("auto", "compiled", "reference")
OPS = ("scatter_reduce", "segment_softmax", "radius", "knn", "fps", "gaunt_columns", "sparse_trilinear", "painn_message")  # kernels/registration.cpp


class GeomdlKernelWarning(RuntimeWarning):
    """Warned once when geomdl falls back to its reference ops because kernels are missing."""


_state = threading.local()
_lock = threading.Lock()
_loaded: bool | None = None
_load_error: str | None = None
_warned: set[str] = set()
_kernels: dict[tuple[str, str], bool] = {}  # (op, dispatch key) -> registered; filled once per pair
_DEVICE_KEYS = {"cpu": "CPU", "cuda": "CUDA"}


def _load() -> bool:
    global _loaded, _load_error
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        if os.environ.get("GEOMDL_NO_EXT", "0") == "1":
            _loaded, _load_error = False, "GEOMDL_NO_EXT=1 is set"
            return False
        try:
            from geomdl import _C  # noqa: F401  (loading registers torch.ops.geomdl.*)

            torch.ops.geomdl.scatter_reduce  # noqa: B018  (resolves the registration)
            for op in OPS:  # answered here once, so has_kernel never calls into the dispatcher under torch.compile
                for key in ("CPU", "CUDA"):
                    _kernels[(op, key)] = _query_kernel(op, key)
            _loaded = True  # published last: another thread that sees it (without the lock) sees the full table
        except ImportError as exc:
            _loaded = False
            _load_error = (
                "the compiled extension geomdl._C is not built "
                f"({exc}); reinstall with `pip install --no-build-isolation -e .` to build it"
            )
        except Exception as exc:  # ABI mismatch, missing symbols, ...
            _loaded = False
            _load_error = f"the compiled extension geomdl._C failed to load: {type(exc).__name__}: {exc}"
    return _loaded


def extension_loaded() -> bool:
    """True when ``geomdl._C`` is built and loaded."""
    return _load()


def extension_error() -> str | None:
    """Why the extension is not loaded (None when it is)."""
    _load()
    return _load_error


def has_kernel(op: str, device: str = "cpu") -> bool:
    """True when the compiled op ``geomdl::<op>`` has a kernel for ``device`` (``cpu``/``cuda``)."""
    if not _load():
        return False
    key = _DEVICE_KEYS.get(device)
    if key is None:
        return False
    found = _kernels.get((op, key))
    if found is None:
        found = _kernels[(op, key)] = _query_kernel(op, key)
    return found


def _query_kernel(op: str, key: str) -> bool:
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(f"geomdl::{op}", key)
    except RuntimeError:  # op not registered at all
        return False


def cuda_kernels_available() -> bool:
    """True when the extension was built with CUDA kernels."""
    return has_kernel("scatter_reduce", "cuda")


def get_backend() -> str:
    """The active backend: ``auto``, ``compiled`` or ``reference``."""
    backend = getattr(_state, "backend", None)
    if backend is None:
        backend = os.environ.get("GEOMDL_KERNELS", "auto").strip().lower() or "auto"
        if backend not in BACKENDS:
            raise ValueError(f"GEOMDL_KERNELS must be one of {BACKENDS}, got {backend!r}")
    return backend


def set_backend(backend: str | None) -> None:
    """Set the backend for this thread (``None`` returns to ``GEOMDL_KERNELS``)."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    _state.backend = backend


@contextlib.contextmanager
def use_backend(backend: str):
    """Context manager: ``with use_backend("reference"): ...``.

    Sets ``backend`` (``"auto"``, ``"compiled"``, ``"reference"`` or ``None``) for this thread with
    :func:`set_backend` and restores the previous setting on exit. Raises ``ValueError`` for an unknown name.
    """
    previous = getattr(_state, "backend", None)
    set_backend(backend)
    try:
        yield
    finally:
        set_backend(previous)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, GeomdlKernelWarning, stacklevel=4)


def forward_ad_active() -> bool:
    """True inside forward-mode AD (``torch.autograd.forward_ad.dual_level`` or ``torch.func.jvp``) or a
    ``torch.func`` reverse-mode transform (``grad``, ``vjp``, ``jacrev``, ``hessian``). The compiled ops have no
    forward-mode formula (a dual input would give a zero or missing tangent, silently) and their autograd
    formulas do not run under ``torch.func``'s grad transforms, so the callers take the references (plain
    PyTorch ops, which propagate tangents and compose with every transform) there."""
    try:  # private torch state: a torch without it is treated as "not inside forward-mode AD"
        if torch.autograd.forward_ad._current_level >= 0:
            return True
        if torch._C._functorch.peek_interpreter_stack() is None:
            return False
        from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

        autodiff = (torch._C._functorch.TransformType.Jvp, torch._C._functorch.TransformType.Grad)
        return any(i.key() in autodiff for i in retrieve_all_functorch_interpreters())
    except (AttributeError, ImportError):
        return False


def legacy_batched(*tensors) -> bool:
    """True when one of ``tensors`` is a BatchedTensor of torch's legacy ``vmap``: the gradients inside
    ``torch.autograd.grad(..., is_grads_batched=True)``, which ``torch.autograd.functional.jacobian`` /
    ``hessian(vectorize=True)`` use. No global state marks that mode (it is not a ``torch.func`` transform), only
    the tensors' ``Batched`` dispatch key. Called on every eager call of the fused ops (hot paths): torch's own
    test when it has one (~0.1 us a tensor), else the parsed key set (the Python enum does not expose the key)."""
    for t in tensors:
        if isinstance(t, torch.Tensor) and _is_legacy_batched(t):
            return True
    return False


def _legacy_batched_by_keys(t: torch.Tensor) -> bool:
    keys = str(torch._C._dispatch_keys(t))  # "DispatchKeySet(ADInplaceOrView, AutogradOther, Batched)"
    return "Batched" in keys[keys.find("(") + 1:keys.rfind(")")].split(", ")


_is_legacy_batched = getattr(getattr(torch._C, "_functorch", None), "is_legacy_batchedtensor", _legacy_batched_by_keys)


def transform_active(*tensors) -> bool:
    """True inside forward-mode AD or any ``torch.func`` transform (``grad``, ``vmap``, ``jvp``, ``jacrev``, ...),
    or when one of ``tensors`` is batched by the legacy ``vmap`` of ``is_grads_batched`` (:func:`legacy_batched`),
    and not while ``torch.compile`` traces: code built on ``torch.autograd.Function`` classes without
    ``setup_context`` / ``jvp`` / ``vmap`` rules, or on ``out=`` / in-place ops, takes its plain-PyTorch path there."""
    if torch.compiler.is_compiling():
        return False
    return forward_ad_active() or functorch_active() or legacy_batched(*tensors)


def compiled_ready(kernel: str, device: str) -> bool:
    """True when the backend is not ``reference`` and ``geomdl::<kernel>`` is loaded for ``device``
    (``cpu``/``cuda``). Quiet: it never warns or raises (the callers' general path does, through
    :func:`use_compiled`)."""
    return (_loaded is True and _kernels.get((kernel, _DEVICE_KEYS.get(device))) is True and get_backend() != "reference"
            and (torch.compiler.is_compiling() or not forward_ad_active()))


def use_compiled(op: str, *tensors: torch.Tensor, dtypes=(torch.float32, torch.float64), kernel: str | None = None,
                 tangents: bool = True) -> bool:
    """Decide whether ``op`` runs compiled for these input tensors.

    ``kernel`` is the name of the registered op (``geomdl::<kernel>``, default ``op``);
    ``dtypes`` lists the floating dtypes the kernel supports (checked on the first tensor).
    ``tangents=False``: the op's outputs have no tangents (integer indices: neighbour searches, fps), so it
    stays compiled inside forward-mode AD (the caller passes detached inputs).
    """
    backend = get_backend()
    if backend == "reference":
        return False
    if tangents and not torch.compiler.is_compiling() and forward_ad_active():
        if backend == "compiled":
            raise RuntimeError(f"geomdl.ops.{op}: the compiled kernel has no forward-mode AD (jvp) and no torch.func "
                               "transform rules; use the reference")
        return False
    if not _load():
        if backend == "compiled":
            raise RuntimeError(f"GEOMDL_KERNELS=compiled but {_load_error}")
        _warn_once("load", f"geomdl uses its pure-PyTorch reference ops because {_load_error}.")
        return False
    device = tensors[0].device.type
    if not has_kernel(kernel or op, device):
        reason = f"geomdl.ops.{op} has no compiled kernel for device {device!r}"
        if backend == "compiled":
            raise RuntimeError(reason)
        _warn_once(f"{op}:{device}", reason + "; using the reference implementation.")
        return False
    if dtypes is not None and tensors[0].dtype not in dtypes:
        if backend == "compiled":
            raise RuntimeError(f"geomdl.ops.{op}: the compiled kernel supports {dtypes}, got {tensors[0].dtype}")
        return False  # documented: other dtypes always use the reference
    return True
