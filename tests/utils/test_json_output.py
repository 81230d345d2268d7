"""Strict JSON output: ``to_json_safe`` / ``atomic_write_json`` write non-finite numbers as null, numpy and
torch scalars as numbers, and files that strict parsers (no ``NaN``/``Infinity`` tokens) accept."""
from __future__ import annotations

import enum
import json
import math
import pathlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from geomdl.utils.io import atomic_write_json, to_json_safe
from geomdl.utils.io import loads_strict_json as strict_loads  # refuses NaN/Infinity tokens


def assert_same(got, expected, where="$"):
    """Equal values of the same type at every level (``1 == 1.0 == True`` in plain ``==``)."""
    assert type(got) is type(expected), f"{where}: {got!r} ({type(got).__name__}) != {expected!r} ({type(expected).__name__})"
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


def _expected_float(x: float):
    return x if math.isfinite(x) else None


# leaves as (object written, value read back): non-finite numbers are read back as None
python_floats = st.floats(allow_nan=True, allow_infinity=True).map(lambda x: (x, _expected_float(x)))
numpy_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(np.float64),
    st.floats(allow_nan=True, allow_infinity=True, width=32).map(np.float32),
).map(lambda x: (x, _expected_float(float(x))))
tensor_floats = st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([torch.float64, torch.float32])).map(
    lambda p: torch.tensor(p[0], dtype=p[1])).map(lambda t: (t, _expected_float(t.item())))
integers = st.integers(-(2**62), 2**62)
exact_leaves = st.one_of(
    integers.map(lambda i: (i, i)),
    integers.map(lambda i: (np.int64(i), i)),
    integers.map(lambda i: (torch.tensor(i), i)),
    st.booleans().map(lambda b: (b, b)),
    st.booleans().map(lambda b: (np.bool_(b), b)),
    st.booleans().map(lambda b: (torch.tensor(b), b)),
    st.none().map(lambda n: (n, n)),
    st.text(max_size=8).map(lambda s: (s, s)),
)
leaves = st.one_of(python_floats, numpy_floats, tensor_floats, exact_leaves)


def _containers(children):
    as_list = st.lists(children, max_size=4).map(lambda ps: ([o for o, _ in ps], [e for _, e in ps]))
    as_tuple = as_list.map(lambda p: (tuple(p[0]), p[1]))
    as_dict = st.dictionaries(st.text(max_size=6), children, max_size=4).map(
        lambda d: ({k: o for k, (o, _) in d.items()}, {k: e for k, (_, e) in d.items()}))
    return st.one_of(as_list, as_tuple, as_dict)


documents = st.recursive(leaves, _containers, max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(doc=documents)
def test_written_file_is_strict_json_and_finite_values_round_trip(tmp_path_factory, doc):
    obj, expected = doc
    path = tmp_path_factory.mktemp("json") / "out.json"
    atomic_write_json(path, obj)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    assert_same(strict_loads(text), expected)


@settings(max_examples=100, deadline=None)
@given(doc=documents)
def test_to_json_safe_output_passes_allow_nan_false(doc):
    obj, expected = doc
    assert_same(strict_loads(json.dumps(to_json_safe(obj), allow_nan=False)), expected)


def test_non_finite_numbers_become_null(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(path, {"loss": float("nan"), "best": float("inf"), "worst": -math.inf, "acc": np.float32("nan"),
                             "mae": torch.tensor(float("nan")), "ok": 0.5})
    assert strict_loads(path.read_text()) == {"loss": None, "best": None, "worst": None, "acc": None, "mae": None, "ok": 0.5}
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()


def test_scalars_keep_their_kind():
    out = to_json_safe([np.int32(3), np.bool_(True), torch.tensor(4), torch.tensor(False), np.float32(0.5),
                        np.array(2.5), torch.tensor(1.5, requires_grad=True)])
    assert_same(out, [3, True, 4, False, 0.5, 2.5, 1.5])


def test_tuples_paths_and_keys():
    class Colour(enum.IntEnum):
        RED = 1

    out = to_json_safe({(1, 2): (3, 4), np.int64(5): pathlib.Path("a") / "b", float("nan"): Colour.RED,
                        float("-inf"): None, 2.5: "x", None: "none"})
    assert_same(out, {"(1, 2)": [3, 4], 5: str(pathlib.Path("a") / "b"), "NaN": 1, "-Infinity": None, 2.5: "x", None: "none"})
    json.dumps(out, allow_nan=False)  # every key accepted


def test_default_float_turns_tensors_into_numbers_as_json_dumps_did():
    value = {"x": torch.tensor([2.5]), "y": torch.tensor([[float("nan")]])}
    assert json.loads(json.dumps(value, default=float)) == {"x": 2.5, "y": pytest.approx(float("nan"), nan_ok=True)}
    assert_same(to_json_safe(value, default=float), {"x": 2.5, "y": None})
    with pytest.raises(ValueError):  # as json.dumps(..., default=float): not one number
        to_json_safe({"x": torch.ones(2)}, default=float)
    with pytest.raises(TypeError):
        to_json_safe({"x": object()}, default=float)


def test_default_str_describes_other_objects():
    assert to_json_safe({"s": {1}, "t": torch.tensor(2.0)}, default=str) == {"s": "{1}", "t": 2.0}


def test_without_default_other_objects_are_a_type_error():
    with pytest.raises(TypeError, match="set"):
        to_json_safe({"s": {1}})


def test_circular_reference_is_a_value_error():
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular"):
        to_json_safe(loop)
    shared = [1.0]
    assert to_json_safe([shared, shared]) == [[1.0], [1.0]]  # the same list twice is not a cycle


def test_a_failed_conversion_leaves_the_previous_file(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"epoch": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"epoch": 2, "bad": object()})
    assert strict_loads(path.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_indent_none_writes_one_line(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": [1, 2]}, indent=None)
    assert path.read_text() == '{"a": [1, 2]}\n'
