import pytest
import torch

from geomdl.testing import assert_compiles


def test_passes_on_a_traceable_function_and_counts_what_it_compared():
    x = torch.randn(5, 3, dtype=torch.float64)
    lin = torch.nn.Linear(3, 2).double()
    counts = assert_compiles(lambda a: torch.tanh(lin(a)), (x,))
    assert counts == {"outputs": 1, "gradients": 1}
    assert assert_compiles(lin, (x,)) == {"outputs": 1, "gradients": 3}  # input, weight, bias


def test_fails_on_a_graph_break():
    def branchy(x):
        if float(x.sum()) > 0:  # data-dependent Python branch: a graph break
            return x * 2
        return x - 1

    with pytest.raises(AssertionError, match="fullgraph=True"):
        assert_compiles(branchy, (torch.ones(4, dtype=torch.float64),))


def test_fails_when_compiled_results_differ_from_eager():
    calls = {"n": 0}

    def drifting(x):  # the Python counter is read at trace time: the compiled graph bakes in another constant
        calls["n"] += 1
        return x * calls["n"]

    with pytest.raises(AssertionError, match="output 0"):
        assert_compiles(drifting, (torch.ones(3, dtype=torch.float64),), grad=False)


def test_rejects_a_function_without_tensor_outputs():
    with pytest.raises(TypeError, match="no tensors"):
        assert_compiles(lambda x: None, (torch.ones(2),))
