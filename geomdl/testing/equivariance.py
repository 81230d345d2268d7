"""Equivariance checks for functions of point clouds and graphs.

``assert_equivariant(fn, inputs, in_types, out_types)`` applies random group elements to the inputs
and compares ``fn(g . x)`` with ``g . fn(x)`` in float64. Types (strings):

=========================  ==========================================================================
``"position"``             node points ``[N, 3]``: ``x -> s R x + t`` (rotation/reflection, translation, scaling)
``"vector"``               node vectors ``[..., 3]`` (last dim): ``v -> s R v``
``"pseudovector"``         ``v -> det(R) R v`` (e.g. cross products, angular momenta)
``"scalar"``               invariant node features, integer ones too (atomic numbers ``z``; permuted with the nodes)
``"irreps:<spec>"``        node features in e3nn irreps, e.g. ``"irreps:8x0e+4x1o"``: ``x -> D(R) x`` incl. parity
``"global_<type>"``        graph-level versions of the above (not permuted)
``"batch"``                sorted cloud ids ``[N]``; permutations then stay inside each cloud
``"edge_index"``           ``[2, E]`` node indices, relabelled under node permutations
``"edge_scalar"``          invariant per-edge features (edges keep their order)
``"fixed"``                passed unchanged, never permuted (not for per-node inputs such as ``z``)
=========================  ==========================================================================

Node-level values have the nodes along their first dimension. A dense batch ``[B, N, 3]`` would be read as
``B`` nodes, so permutations would move whole clouds and never reorder the points inside one: test such a
model on the flattened ``[B * N, 3]`` with a ``"batch"`` vector, or on one cloud ``[N, 3]``.

Transformations tested separately (each ``n_samples`` times): proper rotations, improper elements
(reflections, ``det R = -1``) when ``group="O3"``, translations, node permutations, scalings (when
``scaling=True``), and all of them combined. The error of one case is the relative error
``|f(g.x) - g.f(x)| / max(|f(x)|, 1e-12)`` of each output (the largest over the outputs and samples; NaN, from
a non-finite output in any sample, fails). ``group="SO3"`` declares a chiral
function (no reflection test); ``group="O3-invariant-reflection"`` is not needed: declare such
outputs as ``scalar``/``pseudovector``.
"""
from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass

import torch

from geomdl.utils.rotations import random_rotation

NODE_TYPES = ("position", "vector", "pseudovector", "scalar", "batch")


@dataclass
class GroupElement:
    """``x -> scale * R x + t`` plus a node permutation ``perm`` (new node k is old node perm[k])."""

    rot: torch.Tensor
    trans: torch.Tensor
    scale: float
    perm: torch.Tensor | None

    def describe(self) -> str:
        """The element in words, for failure messages: ``det(R)``, ``|t|``, the scale and whether it permutes."""
        det = float(torch.det(self.rot))
        return f"det(R)={det:+.0f}, |t|={float(self.trans.norm()):.3g}, scale={self.scale:.3g}, permuted={self.perm is not None}"


def _irreps(spec: str):
    from e3nn import o3

    return o3.Irreps(spec)


def _wigner_d(spec: str, rot: torch.Tensor) -> torch.Tensor:
    """``D(R)`` of the irreps ``spec`` in float64, from the matrix itself (exact to rounding for every rotation;
    e3nn's ``D_from_matrix`` recovers Euler angles and loses ~1e-8 near the poles, and under a float32 default
    dtype builds float32 tables, either of which would read as an equivariance error)."""
    from geomdl.o3.clebsch_gordan import wigner_D_from_matrix

    return wigner_D_from_matrix(_irreps(spec), rot.to(torch.float64))


def _check_last_dim(value: torch.Tensor, kind: str, expected: int, role: str) -> None:
    """A clear error for a value whose last dimension does not match its declared type (instead of a bare
    ``mat1 and mat2 shapes cannot be multiplied`` from the matrix product)."""
    if value.dim() == 0 or value.shape[-1] != expected:
        raise ValueError(f"{role} of type {kind!r} must have last dimension {expected}, got shape {tuple(value.shape)}")


def _check_floating(value: torch.Tensor, kind: str, role: str) -> None:
    """A clear error for an integer (or bool) value of a geometric type: rotating it would cast ``R`` to its
    integer dtype (entries truncated to 0), so every rotation and reflection test would compare zeros."""
    if not (value.is_floating_point() or value.is_complex()):
        raise ValueError(f"{role} of type {kind!r} must be a floating-point tensor (it is rotated), got dtype {value.dtype}")


def _act(value, kind: str, g: GroupElement, num_nodes: int | None, role: str = "an input/output"):
    """Apply g to one value of the given type (``role`` names the value in error messages)."""
    if not isinstance(value, torch.Tensor):
        return value
    base = kind[len("global_"):] if kind.startswith("global_") else kind
    node_level = not kind.startswith("global_") and kind not in ("edge_index", "edge_scalar", "fixed")
    out = value
    if base in ("position", "vector", "pseudovector"):
        _check_last_dim(out, kind, 3, role)
        _check_floating(out, kind, role)
    elif base.startswith("irreps:"):
        _check_last_dim(out, kind, _irreps(base[len("irreps:"):]).dim, role)
        _check_floating(out, kind, role)
    if base == "position":
        out = g.scale * (out @ g.rot.T.to(out.dtype)) + g.trans.to(out.dtype)
    elif base == "vector":
        out = g.scale * (out @ g.rot.T.to(out.dtype))
    elif base == "pseudovector":
        out = torch.det(g.rot).to(out.dtype) * (out @ g.rot.T.to(out.dtype))
    elif base.startswith("irreps:"):
        d = _wigner_d(base[len("irreps:"):], g.rot).to(out.dtype)
        out = out @ d.T
    elif base == "edge_index" and g.perm is not None:
        inv = torch.empty_like(g.perm)
        inv[g.perm] = torch.arange(g.perm.numel(), device=g.perm.device)
        out = inv.to(out.device)[out]
    elif base not in ("scalar", "batch", "edge_index", "edge_scalar", "fixed"):
        raise ValueError(f"unknown type {kind!r}")
    if node_level and g.perm is not None:
        # only permutations read the node dimension: without them (permutation=False) a 0-d value passes as before
        if out.dim() == 0:
            raise ValueError(f"{role} of type {kind!r} is node-level and needs a first (node) dimension, got a 0-d "
                             f"tensor; declare a graph-level value as 'global_{base}'")
        if out.shape[0] != num_nodes:
            raise ValueError(f"{role} (node-level) of type {kind!r} has {out.shape[0]} rows, expected {num_nodes} nodes")
        out = out[g.perm.to(out.device)]
    return out


def _structure(x, types, name):
    """Pair values with types: returns list of (key, value, type) and a rebuild function."""
    if isinstance(x, dict):
        if not isinstance(types, dict) or set(types) != set(x):
            raise ValueError(f"{name}: types must be a dict with the same keys as the values ({sorted(x)})")
        keys = list(x)
        return [(k, x[k], types[k]) for k in keys], lambda vals: dict(zip(keys, vals))
    if isinstance(x, (tuple, list)):
        if isinstance(types, str) or len(types) != len(x):
            raise ValueError(f"{name}: give one type per element ({len(x)})")
        return [(i, v, t) for i, (v, t) in enumerate(zip(x, types))], lambda vals: type(x)(vals)
    if not isinstance(types, str):
        raise ValueError(f"{name}: a single {type(x).__name__} needs a single type string (e.g. \"global_scalar\"), "
                         f"got {types!r}")
    return [(0, x, types)], lambda vals: vals[0]


def _outputs(out, out_types):
    """The outputs paired with their types; numbers and NumPy arrays become tensors (a Python float would
    otherwise never be compared), other non-tensors are a TypeError unless declared ``fixed``."""
    items, _ = _structure(out, out_types, "out_types")
    result = []
    for k, v, t in items:
        if isinstance(v, numbers.Number) or type(v).__module__ == "numpy":
            v = torch.as_tensor(v)
        elif not isinstance(v, torch.Tensor) and t != "fixed":
            raise TypeError(f"output {k!r} of type {t!r} must be a tensor or a number, got {type(v).__name__}")
        result.append((k, v, t))
    return result


def _num_nodes(items):
    for _, v, t in items:
        if isinstance(v, torch.Tensor) and v.dim() > 0 and (t in NODE_TYPES or t.startswith("irreps:")):
            return v.shape[0]  # (a 0-d one is reported by _act)
    return None


def _permutation(items, n, generator):
    batch = next((v for _, v, t in items if t == "batch"), None)
    key = torch.rand(n, generator=generator, dtype=torch.float64)
    if batch is not None:
        key = key + batch.detach().cpu().to(torch.float64) * 2.0  # stay within clouds, keep sorted
    return torch.argsort(key)


def _to_float64(items):
    return [(k, v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v, t) for k, v, t in items]


def _norm(v) -> float:
    """Norm of one output (0 for non-floating outputs, which are compared exactly)."""
    if isinstance(v, torch.Tensor) and v.is_floating_point():
        return math.sqrt(float(v.detach().double().pow(2).sum()))
    return 0.0


def _diff(va, ta, vb) -> float:
    """``|va - vb|`` of one output (``inf`` when non-floating outputs differ)."""
    if isinstance(va, torch.Tensor) and va.is_floating_point():
        if va.shape != vb.shape:
            raise AssertionError(f"output of type {ta!r} changed shape under the transformation: {tuple(va.shape)} vs {tuple(vb.shape)}")
        return math.sqrt(float((va.detach().double() - vb.detach().double()).pow(2).sum()))
    if isinstance(va, torch.Tensor):
        return 0.0 if torch.equal(va, vb) else float("inf")
    return 0.0 if va == vb else float("inf")  # "fixed" outputs of other kinds


def _worse(err: float, worst: float) -> float:
    """The larger error; NaN (a non-finite output) wins and stays (``max`` would drop it)."""
    if worst != worst or err != err:
        return float("nan")
    return err if err > worst else worst


def equivariance_error(fn, inputs, in_types, out_types, *, group: str = "O3", translation: bool = True,
                       permutation: bool = True, scaling: bool = False, n_samples: int = 4,
                       generator: torch.Generator | None = None, float64: bool = True,
                       norm_floor: float = 1e-12) -> dict[str, float]:
    """Measured relative equivariance errors, max over ``n_samples`` draws, per transformation kind:
    ``|f(g x) - g f(x)| / max(|f(x)|, norm_floor)`` for each output against its own norm (an output that is zero
    in theory, e.g. a net force, needs a ``norm_floor`` / ``atol`` at its rounding level).

    Args:
        fn: callable; called as ``fn(**inputs)`` for a dict, ``fn(*inputs)`` for a tuple/list, else ``fn(inputs)``.
            An ``nn.Module`` is copied and converted to float64 when ``float64``.
        inputs / in_types: values and their types (see the module docstring).
        out_types: the type(s) of the outputs, structured like the outputs (str, tuple or dict).
        group: ``"O3"`` (rotations and reflections) or ``"SO3"`` (rotations only).
        n_samples: draws per transformation kind (an int >= 1).
        norm_floor: smallest denominator (> 0); outputs that are zero in theory (a net force, a centred
            sum) have rounding-size norms, so without a floor their rounding noise reads as an O(1) error.

    Outputs may be tensors or numbers (compared as tensors); other objects only as ``"fixed"`` (compared with ``==``).

    Returns:
        dict with keys among ``rotation, reflection, translation, permutation, scaling, combined``.
    """
    if group not in ("O3", "SO3"):
        raise ValueError(f"group must be 'O3' or 'SO3', got {group!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be an int >= 1 (0 samples would test nothing), got {n_samples!r}")
    if isinstance(norm_floor, bool) or not isinstance(norm_floor, (int, float)) or not 0 < norm_floor < float("inf"):
        raise ValueError(f"norm_floor must be a positive finite number, got {norm_floor!r}")
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if isinstance(fn, torch.nn.Module) and float64:
        fn = copy.deepcopy(fn).double()
    items, rebuild = _structure(inputs, in_types, "in_types")
    if float64:
        items = _to_float64(items)
    n = _num_nodes(items)

    def call(its):
        vals = rebuild([v for _, v, _ in its])
        if isinstance(vals, dict):
            return fn(**vals)
        if isinstance(vals, (tuple, list)):
            return fn(*vals)
        return fn(vals)

    base_out = call(items)
    base_items = _outputs(base_out, out_types)
    # each output against its own norm: a large output (an energy) must not hide a broken small one (forces)
    ref_norms = [max(_norm(v), float(norm_floor)) for _, v, _ in base_items]

    identity = torch.eye(3, dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)

    def draw(kind):
        rot, t, s, perm = identity, zero, 1.0, None
        if kind in ("rotation", "combined"):
            rot = random_rotation(generator)
        if kind == "reflection" or (kind == "combined" and group == "O3" and torch.rand(1, generator=generator).item() < 0.5):
            rot = random_rotation(generator, reflection=True)
        if kind == "translation" or (kind == "combined" and translation):
            t = torch.randn(3, generator=generator, dtype=torch.float64) * 3.0
        if kind == "scaling" or (kind == "combined" and scaling):
            s = float(torch.empty(1, dtype=torch.float64).uniform_(0.3, 3.0, generator=generator))
        if (kind == "permutation" or (kind == "combined" and permutation)) and n is not None:
            perm = _permutation(items, n, generator)
        return GroupElement(rot, t, s, perm)

    kinds = ["rotation"] + (["reflection"] if group == "O3" else [])
    kinds += (["translation"] if translation else []) + (["permutation"] if permutation and n is not None else [])
    kinds += (["scaling"] if scaling else []) + ["combined"]
    errors = {}
    for kind in kinds:
        worst = 0.0
        for _ in range(n_samples):
            g = draw(kind)
            moved = [(k, _act(v, t, g, n, f"input {k!r}"), t) for k, v, t in items]
            out = call(moved)
            out_items = _outputs(out, out_types)
            expected = [(k, _act(v, t, g, n, f"output {k!r}"), t) for k, v, t in base_items]
            for (_, va, ta), (_, vb, _), ref in zip(out_items, expected, ref_norms):
                worst = _worse(_diff(va, ta, vb) / ref, worst)
        errors[kind] = worst
    return errors


def _positive_number(value, name: str) -> float:
    """``value`` as a float: a real number (NumPy scalars and 0-d tensors too, not bools), positive and finite."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_complex() and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < float(value) < float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def assert_equivariant(fn, inputs, in_types, out_types, *, tol: float = 1e-10, atol: float | None = None,
                       **kwargs) -> dict[str, float]:
    """Raise ``AssertionError`` when any measured error (see :func:`equivariance_error`) exceeds ``tol``.

    ``atol``: also accept absolute differences up to ``atol``, i.e. fail only when
    ``|f(g x) - g f(x)| > max(tol |f(x)|, atol)``. Use it for outputs that are zero in theory (a net force,
    a centred sum), whose rounding noise is large relative to their own norm. Default ``None``: relative only.

    Returns the (relative) errors, so tests can report them.
    """
    tol = _positive_number(tol, "tol")
    if atol is not None:
        atol = _positive_number(atol, "atol")
        if "norm_floor" in kwargs:
            raise ValueError("give atol or norm_floor, not both (atol sets norm_floor = atol / tol)")
        kwargs["norm_floor"] = atol / tol
    errors = equivariance_error(fn, inputs, in_types, out_types, **kwargs)
    bad = {k: v for k, v in errors.items() if not v <= tol}
    if bad:
        what = f"tolerance {tol:g}" + (f", atol {atol:g}" if atol is not None else "")
        raise AssertionError(f"not equivariant ({what}): " + ", ".join(f"{k} error {v:.3g}" for k, v in bad.items()))
    return errors


def assert_invariant(fn, inputs, in_types, out_types="global_scalar", **kwargs) -> dict[str, float]:
    """:func:`assert_equivariant` for invariant outputs (default type ``global_scalar``)."""
    return assert_equivariant(fn, inputs, in_types, out_types, **kwargs)
