"""The run-time choice between the AVX2 and baseline copies of the vectorised CPU kernels (kernels/common/cpu_isa.h).

Each copy records itself when it runs (torch.ops.geomdl._cpu_copy_used): by default the AVX2 copy runs where the
CPU has AVX2 and FMA (geomdl._C.avx2 == 1), GEOMDL_<KERNEL>_ISA=generic forces the baseline copy, and any other
value than generic, avx2 or empty raises ValueError, on empty calls too. The copies' results are compared in
the kernels' own tests (test_scatter_isa.py, test_fps.py, test_trilinear.py, o3/test_gaunt_kernel.py).
"""
import sys

import pytest
import torch

from geomdl import ops

pytestmark = pytest.mark.skipif(not ops.extension_loaded(), reason="geomdl._C not built (reference mode)")


def _scatter(n):
    def run():
        with ops.use_backend("compiled"):
            return ops.scatter(torch.ones(n, 3), torch.zeros(n, dtype=torch.long), dim_size=1)
    return run


def _fps(n):
    def run():  # (num >= 2: the distance update runs; n = 0: the op itself, fps() wants num >= 1)
        if n == 0:
            long = torch.zeros(0, dtype=torch.long)
            return torch.ops.geomdl.fps(torch.zeros(0, 3), torch.zeros(1, dtype=torch.long), long, long)
        with ops.use_backend("compiled"):
            return ops.fps(torch.rand(n, 3), num=5)
    return run


def _trilinear(n):
    from geomdl.ops import TrilinearPlan, sparse_trilinear

    plan = TrilinearPlan(torch.tensor([[0, 0, 0, 0], [1, 1, 0, 0]]), torch.tensor([1.0, 2.0]), (2, 2, 1, 1))

    def run():
        with ops.use_backend("compiled"):
            return sparse_trilinear(plan, torch.rand(n, 2), torch.rand(n, 1), torch.rand(n, 1))
    return run


def _gaunt(n):
    from geomdl.o3.gaunt_product import gaunt_product_columns

    def run():
        with ops.use_backend("compiled"):
            return gaunt_product_columns(torch.rand(9, n), torch.rand(4, n), 2)
    return run


KERNELS = {"scatter": _scatter, "fps": _fps, "trilinear": _trilinear, "gaunt": _gaunt}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_default_and_generic_copies_run(kernel, monkeypatch):
    env = f"GEOMDL_{kernel.upper()}_ISA"
    call = KERNELS[kernel](64)
    monkeypatch.delenv(env, raising=False)
    call()
    avx2 = bool(getattr(sys.modules["geomdl._C"], "avx2"))
    assert torch.ops.geomdl._cpu_copy_used(kernel) == ("avx2" if avx2 else "generic")
    monkeypatch.setenv(env, "generic")
    call()
    assert torch.ops.geomdl._cpu_copy_used(kernel) == "generic"
    monkeypatch.setenv(env, "avx2")  # the explicit default
    call()
    assert torch.ops.geomdl._cpu_copy_used(kernel) == ("avx2" if avx2 else "generic")


@pytest.mark.parametrize("kernel", list(KERNELS))
@pytest.mark.parametrize("n", [0, 64])
def test_unknown_setting_raises_on_every_call(kernel, n, monkeypatch):
    env = f"GEOMDL_{kernel.upper()}_ISA"
    monkeypatch.setenv(env, "avx-2")
    with pytest.raises(ValueError, match=f"{env} must be 'generic'.*not 'avx-2'"):
        KERNELS[kernel](n)()


def test_unknown_kernel_name_raises():
    with pytest.raises(ValueError, match="kernel must be one of gaunt, trilinear, scatter, fps"):
        torch.ops.geomdl._cpu_copy_used("knn")


def test_avx2_flag_matches_the_cpu():
    flag = getattr(sys.modules["geomdl._C"], "avx2")
    assert flag in (0, 1)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        assert flag == 1  # an x86 CPU that torch runs AVX2 kernels on


def _vex_by_function(disassembly: str) -> dict[str, int]:
    """{function name: number of VEX/EVEX instructions (v-prefixed mnemonics)} of ``objdump -d`` output."""
    import re

    header = re.compile(r"^[0-9a-f]+ <(.*)>:$")
    instruction = re.compile(r"^\s*[0-9a-f]+:\s+(v[a-z0-9]+)(?:\s|$)")  # vzeroupper / vzeroall have no operands
    found, name = {}, None
    for line in disassembly.splitlines():
        m = header.match(line)
        if m:
            name = m.group(1)
        elif name is not None and instruction.match(line):
            found[name] = found.get(name, 0) + 1
    return found


def _functions_with_vex(library: str) -> dict[str, int]:
    """:func:`_vex_by_function` of a shared library (demangled names)."""
    import subprocess

    return _vex_by_function(subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", library], capture_output=True,
                                           text=True, timeout=300, check=True).stdout)


def test_vex_parser_counts_instructions_without_operands():
    text = ("0000000000001000 <leaked_zero>:\n"
            "    1000:\tvzeroupper\n"
            "    1003:\tret\n"
            "0000000000001010 <ns::avx2::kernel(float*)>:\n"
            "    1010:\tvaddss %xmm1,%xmm0,%xmm0\n"
            "    1014:\tvzeroall \n"
            "    1017:\tmovss  %xmm0,(%rdi)\n"
            "0000000000001020 <plain>:\n"
            "    1020:\tmovaps %xmm1,%xmm0\n")
    assert _vex_by_function(text) == {"leaked_zero": 1, "ns::avx2::kernel(float*)": 2}


@pytest.mark.skipif(sys.platform != "linux" or __import__("platform").machine() != "x86_64", reason="x86-64 ELF only")
@pytest.mark.skipif(__import__("shutil").which("objdump") is None, reason="needs objdump (binutils)")
def test_avx_instructions_only_inside_the_avx2_copies():
    """The AVX2 copies are compiled under `#pragma GCC target` inside their own namespaces: no other code of the
    extension (torch's inline functions, std templates instantiated from them) may contain an AVX instruction,
    or the extension would die with SIGILL on a CPU without AVX (a silent ODR hazard of the pattern)."""
    import subprocess

    library = sys.modules["geomdl._C"].__file__
    symbols = subprocess.run(["objdump", "-t", library], capture_output=True, text=True, check=True).stdout
    if "no symbols" in symbols:
        # the avx2:: copies are local symbols: stripped, their code is filed under the previous exported symbol
        pytest.skip(f"{library} is stripped (no .symtab): its functions cannot be told apart")
    vex = _functions_with_vex(library)
    outside = {name: n for name, n in vex.items() if "avx2::" not in name}
    assert not outside, f"AVX instructions outside the avx2:: copies: {sorted(outside)[:10]}"
    comment = subprocess.run(["objdump", "-s", "-j", ".comment", library], capture_output=True, text=True).stdout
    if "GCC:" in comment and "clang" not in comment:  # a GCC build has the copies (clang builds keep the baseline)
        names = " ".join(vex)
        for kernel in ("gaunt::avx2::", "trilinear::avx2::", "avx2::Rows::", "avx2::Update::range"):
            assert kernel in names, f"no AVX2 copy of {kernel} in {library}"
