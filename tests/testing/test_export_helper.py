import pytest
import torch
from torch.export import Dim

from geomdl.testing import assert_exports


class _Branchy(torch.nn.Module):
    def forward(self, x):
        if float(x.sum()) > 0:  # a data-dependent Python branch: not traceable
            return x * 2
        return x - 1


class _Specializing(torch.nn.Module):
    def forward(self, x):
        return x * x.shape[0] if x.shape[0] == 5 else x  # a branch on the size fixes the dynamic size to 5


class _TracedPathDiffers(torch.nn.Module):
    def forward(self, x):  # the traced branch (torch.export sets is_compiling) is not the eager one
        return x + 1 if torch.compiler.is_compiling() else x


def test_passes_on_a_linear_layer_with_a_dynamic_batch_and_returns_the_program():
    lin = torch.nn.Linear(3, 2).double()
    program = assert_exports(lin, (torch.randn(5, 3, dtype=torch.float64),), ({0: Dim("n")},),
                             [(torch.randn(11, 3, dtype=torch.float64),)])
    assert isinstance(program, torch.export.ExportedProgram)


def test_fails_on_a_data_dependent_branch():
    with pytest.raises(AssertionError, match="torch.export.export failed"):
        assert_exports(_Branchy(), (torch.ones(4, dtype=torch.float64),))


def test_fails_when_a_dynamic_dimension_is_specialized():
    with pytest.raises(AssertionError, match="torch.export.export failed"):
        assert_exports(_Specializing(), (torch.ones(5, dtype=torch.float64),), ({0: Dim("n")},))


def test_fails_when_the_program_differs_from_eager():
    with pytest.raises(AssertionError, match="example inputs, output 0"):
        assert_exports(_TracedPathDiffers(), (torch.ones(3, dtype=torch.float64),))


def test_fails_on_other_inputs_outside_the_exported_dynamic_range():
    lin = torch.nn.Linear(3, 2).double()
    with pytest.raises(Exception):  # noqa: B017  (the size 11 was exported as a constant 5: torch rejects the input)
        assert_exports(lin, (torch.randn(5, 3, dtype=torch.float64),), None, [(torch.randn(11, 3, dtype=torch.float64),)])


def test_rejects_a_plain_function():
    with pytest.raises(TypeError, match="nn.Module"):
        assert_exports(lambda x: x, (torch.ones(2),))


def test_other_args_given_as_one_input_tuple_is_a_type_error_naming_it():
    # (x2,) instead of [(x2,)] ran the program on the rows of x2: "forward() takes 2 positional arguments but 7 were given"
    lin = torch.nn.Linear(3, 2).double()
    x, x2 = torch.randn(5, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"other_args\[0\] must be a tuple of inputs"):
        assert_exports(lin, (x,), ({0: Dim("n")},), (x2,))
    with pytest.raises(TypeError, match="other_args must be a sequence of input tuples"):
        assert_exports(lin, (x,), ({0: Dim("n")},), x2)
