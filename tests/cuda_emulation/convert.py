"""Rewrite a CUDA source (kernels/**/*_cuda.cu) into a C++ translation unit for the CPU emulator (emu.h).

The kernel code itself is not touched; only the CUDA-only syntax is rewritten:

* ``k<<<grid, block[, smem[, stream]]>>>(args)`` (``k`` an identifier, possibly qualified and with
  template arguments ``k<T, 4>``; the launch may span lines) becomes
  ``::emu::launch("k", ::emu::LaunchCfg(grid, block, smem, stream), k, args)``;
* ``extern __shared__ [__align__(n)] T name[];`` becomes a pointer to the block's dynamic shared memory;
* ``__shared__ T name[dims];`` becomes a reference to a per-block variable (``::emu::shared_variable``);
* ``__launch_bounds__(n, ...)`` is removed and ``::emu::check_launch_bounds(n, ...)`` is inserted at the
  top of the kernel body (a launch with more threads fails, as on the device);
* ``TORCH_LIBRARY_IMPL(<ns>, CUDA, m) { m.impl("op", &f); ... }`` becomes
  ``TORCH_LIBRARY_FRAGMENT(geomdl_emu, m) { m.def("op", &f); ... }`` (call the emulated op as
  ``torch.ops.geomdl_emu.op`` with CPU tensors);
* ``.pinned_memory(x)`` becomes ``.pinned_memory(::emu::host_pinned(x))`` (no pinned memory without an
  accelerator);
* after ``#include "...cuda_utils.cuh"`` (or any ``.cuh``), ``emu_post_include.h`` is included (its CUDA
  device checks accept the CPU tensors of the emulation).

Line numbers are preserved (``#line`` directives), so compiler errors and messages point into the .cu
file. Inline PTX (``asm``) must sit in a branch of ``#if ... __CUDA_ARCH__ ...`` (the emulator does not
define ``__CUDA_ARCH__`` and compiles the other branch); elsewhere it is rejected with a clear error.

Usage: ``python convert.py kernels/scatter/scatter_reduce_cuda.cu -o out.cpp`` (kernel headers ``*.cuh`` are converted
the same way, by build.py, to the same relative paths under its ``gen/`` directory).
"""
from __future__ import annotations

import argparse
import os
import re
import sys

EMU_LIBRARY = "geomdl_emu"


class ConvertError(RuntimeError):
    """The source uses a construct the converter cannot rewrite faithfully."""


# ---------------------------------------------------------------------------------------------
# Masking: comments, string and character literals (and preprocessor lines where asked) replaced by
# spaces of the same length (newlines kept), so that searches see only code and offsets are shared.
# ---------------------------------------------------------------------------------------------


def mask_code(src: str) -> str:
    out = list(src)
    i, n = 0, len(src)

    def blank(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif c == 'R' and src.startswith('R"', i) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', src[i:])
            if not m:
                i += 1
                continue
            end = src.find(")" + m.group(1) + '"', i + m.end())
            end = n if end < 0 else end + len(m.group(1)) + 2
            blank(i + 1, end)
            i = end
        elif c in "\"'":
            if c == "'" and i > 0 and (src[i - 1].isalnum()) and i + 1 < n and src[i + 1].isalnum():
                i += 1  # digit separator 1'000
                continue
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            blank(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def match_forward(code: str, i: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing the one at code[i] (brackets of other kinds nest too)."""
    assert code[i] == open_ch
    pairs = {"(": ")", "[": "]", "{": "}"}
    if open_ch not in pairs:
        pairs[open_ch] = close_ch
    stack = []
    for k in range(i, len(code)):
        ch = code[k]
        if ch in pairs:
            stack.append(pairs[ch])
        elif stack and ch == stack[-1]:
            stack.pop()
            if not stack:
                return k
        elif ch in ")]}":
            raise ConvertError(f"unbalanced {ch!r} at offset {k}")
    raise ConvertError(f"no {close_ch!r} closing the {open_ch!r} at offset {i}")


def line_of(src: str, pos: int) -> int:
    return src.count("\n", 0, pos) + 1


def pad_newlines(replacement: str, original: str) -> str:
    """Keep the number of lines of `original` (so that #line stays true after the edit)."""
    missing = original.count("\n") - replacement.count("\n")
    if missing < 0:
        raise ConvertError("internal error: a rewrite added lines")
    return replacement + "\n" * missing


def one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Rewrites (each returns a list of edits (start, end, replacement) on the original text)
# ---------------------------------------------------------------------------------------------


def _kernel_expr_start(code: str, j: int) -> int:
    """Start of the kernel expression that ends right before code[j] (the '<<<'): an identifier with
    optional '::' qualifiers and template argument lists."""
    k = j
    while k > 0 and code[k - 1].isspace():
        k -= 1
    while True:
        if k > 0 and code[k - 1] == ">":  # template arguments: walk back to the matching '<'
            depth = 0
            k -= 1
            while k >= 0:
                ch = code[k]
                if ch == ")":
                    paren = 1
                    k -= 1
                    while k >= 0 and paren:
                        paren += {")": 1, "(": -1}.get(code[k], 0)
                        k -= 1
                    continue
                if ch == ">":
                    depth += 1
                elif ch == "<":
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
            if k < 0:
                raise ConvertError("unbalanced template arguments before <<<")
            while k > 0 and code[k - 1].isspace():
                k -= 1
        m = k
        while m > 0 and (code[m - 1].isalnum() or code[m - 1] == "_"):
            m -= 1
        if m == k:
            raise ConvertError(f"cannot find the kernel name before <<< (line {line_of(code, j)})")
        k = m
        q = k
        while q > 0 and code[q - 1].isspace():
            q -= 1
        if q >= 2 and code[q - 2:q] == "::":
            k = q - 2
            while k > 0 and code[k - 1].isspace():
                k -= 1
            if k == 0 or not (code[k - 1].isalnum() or code[k - 1] in "_>"):
                return q - 2  # leading '::'
            continue
        return k


def launch_edits(src: str, code: str):
    edits = []
    for m in re.finditer(r"<<<", code):
        j = m.start()
        e = code.find(">>>", j + 3)
        if e < 0:
            raise ConvertError(f"<<< without >>> (line {line_of(src, j)})")
        cfg = src[j + 3:e]
        p = e + 3
        while p < len(code) and code[p].isspace():
            p += 1
        if p >= len(code) or code[p] != "(":
            raise ConvertError(f"a kernel launch needs its argument list after >>> (line {line_of(src, j)})")
        q = match_forward(code, p, "(", ")")
        start = _kernel_expr_start(code, j)
        kernel = src[start:j].rstrip()
        args = src[p + 1:q]
        name = one_line(kernel).replace("\\", "\\\\").replace('"', '\\"')
        rep = f'::emu::launch("{name}", ::emu::LaunchCfg({cfg}), {kernel}'
        rep += f", {args})" if args.strip() else ")"
        edits.append((start, q + 1, pad_newlines(rep, src[start:q + 1])))
    return edits


_ALIGN = re.compile(r"__align__\s*\(\s*[^)]*\)|alignas\s*\(\s*[^)]*\)")


def shared_edits(src: str, code: str):
    edits = []
    for m in re.finditer(r"\b__shared__\b", code):
        # The whole declaration: from the start of the statement to its ';'.
        semi = code.find(";", m.end())
        if semi < 0:
            raise ConvertError(f"__shared__ declaration without ';' (line {line_of(src, m.start())})")
        before = code[:m.start()].rstrip()
        is_extern = before.endswith("extern")
        start = len(before) - len("extern") if is_extern else m.start()
        if is_extern:
            head = code[start:m.start()]
            if re.search(r"\S", head[len("extern"):]):
                raise ConvertError(f"unexpected tokens between extern and __shared__ (line {line_of(src, start)})")
        decl = _ALIGN.sub(" ", src[m.end():semi]).strip()
        where = f"line {line_of(src, m.start())}"
        if "=" in decl or "," in decl.split("[")[0] or "(" in decl.split("[")[0]:
            raise ConvertError(f"unsupported __shared__ declaration {one_line(decl)!r} ({where}): one variable, no initialiser")
        dm = re.match(r"^(.*?)\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*)$", decl, re.S)
        if not dm or not dm.group(1).strip():
            raise ConvertError(f"cannot parse the __shared__ declaration {one_line(decl)!r} ({where})")
        type_, name, dims = one_line(dm.group(1)), dm.group(2), one_line(dm.group(3))
        if is_extern:
            if not re.fullmatch(r"\[\s*\]", dims):
                raise ConvertError(f"extern __shared__ {name} must be an array of unknown bound ({where})")
            rep = f"{type_}* {name} = reinterpret_cast<{type_}*>(::emu::dynamic_shared_memory());"
        else:
            if "[]" in dims.replace(" ", ""):
                raise ConvertError(f"__shared__ {name}: an array of unknown bound needs extern ({where})")
            alias = f"emu_shared_t_{name}"
            rep = f"typedef {type_} {alias}{dims}; auto& {name} = ::emu::shared_variable<{alias}>([] {{}});"
        edits.append((start, semi + 1, pad_newlines(rep, src[start:semi + 1])))
    return edits


def launch_bounds_edits(src: str, code: str):
    edits = []
    for m in re.finditer(r"\b__launch_bounds__\s*\(", code):
        p = m.end() - 1
        q = match_forward(code, p, "(", ")")
        bounds = one_line(src[p + 1:q])
        # The parameter list of the kernel, then its body.
        r = code.find("(", q + 1)
        if r < 0:
            raise ConvertError(f"__launch_bounds__ without a function (line {line_of(src, m.start())})")
        r2 = match_forward(code, r, "(", ")")
        b = r2 + 1
        while b < len(code) and code[b] not in "{;":
            b += 1
        edits.append((m.start(), q + 1, pad_newlines("", src[m.start():q + 1])))
        if b < len(code) and code[b] == "{":
            edits.append((b + 1, b + 1, f" ::emu::check_launch_bounds({bounds});"))
    return edits


def library_edits(src: str, code: str):
    edits = []
    for m in re.finditer(r"\bTORCH_LIBRARY_IMPL\s*\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)\s*\{", code):
        ns, key, var = m.groups()
        open_brace = m.end() - 1
        close = match_forward(code, open_brace, "{", "}")
        if key != "CUDA":
            raise ConvertError(f"TORCH_LIBRARY_IMPL({ns}, {key}, ...) in a CUDA source is not supported by the emulator")
        body = src[open_brace + 1:close]
        impls = re.findall(rf"\b{var}\s*\.\s*impl\s*\(\s*\"([^\"]+)\"\s*,\s*(?:TORCH_FN\s*\(\s*)?&?\s*([\w:]+)\s*\)?\s*\)\s*;", body)
        if not impls or len(impls) != len(re.findall(rf"\b{var}\s*\.\s*impl\b", mask_code(body))):
            raise ConvertError(f"cannot parse the registrations of TORCH_LIBRARY_IMPL({ns}, CUDA) (line {line_of(src, m.start())})")
        regs = " ".join(f'{var}.def("{op}", &{fn});' for op, fn in impls)
        rep = f"TORCH_LIBRARY_FRAGMENT({EMU_LIBRARY}, {var}) {{ {regs} }}"
        edits.append((m.start(), close + 1, pad_newlines(rep, src[m.start():close + 1])))
    return edits


def pinned_edits(src: str, code: str):
    edits = []
    for m in re.finditer(r"\.\s*pinned_memory\s*\(", code):
        p = m.end() - 1
        q = match_forward(code, p, "(", ")")
        edits.append((p + 1, p + 1, "::emu::host_pinned("))
        edits.append((q, q, ")"))
    return edits


def check_inline_asm(src: str, code: str, path: str) -> None:
    """Inline PTX must be in a branch of an #if/#elif whose condition names __CUDA_ARCH__."""
    stack = []  # per #if level: does the current branch require __CUDA_ARCH__?
    for lineno, (line, cline) in enumerate(zip(src.split("\n"), code.split("\n")), 1):
        d = re.match(r"\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)", cline)
        if d:
            kind, cond = d.group(1), d.group(2)
            arch = "__CUDA_ARCH__" in cond
            if kind == "ifndef":
                stack.append(False)
            elif kind in ("if", "ifdef"):
                stack.append(arch and not re.search(r"!\s*defined\s*\(?\s*__CUDA_ARCH__", cond))
            elif kind == "elif":
                stack[-1] = arch
            elif kind == "else":
                stack[-1] = False
            elif kind == "endif":
                stack.pop()
            continue
        if re.search(r"\b(asm|__asm__|__asm)\b", cline) and not any(stack):
            raise ConvertError(
                f"{path}:{lineno}: inline PTX outside '#if ... __CUDA_ARCH__' cannot be emulated on the CPU; "
                "put it under '#if defined(__CUDA_ARCH__)' with an equivalent non-asm path in the '#else' branch")


def include_edits(src: str, code: str, path: str):
    edits = []
    for m in re.finditer(r'^[ \t]*#[ \t]*include[ \t]*[<"]([^>"]+\.cuh)[>"][^\n]*$', src, re.M):
        line = line_of(src, m.end())
        edits.append((m.end(), m.end(), f'\n#include "emu_post_include.h"\n#line {line + 1} "{path}"'))
    return edits


def convert(src: str, path: str) -> str:
    """The emulator translation unit for the CUDA source `src` (read from `path`)."""
    path = os.path.abspath(path)
    code = mask_code(src)
    check_inline_asm(src, code, path)
    edits = []
    edits += launch_edits(src, code)
    edits += shared_edits(src, code)
    edits += launch_bounds_edits(src, code)
    edits += library_edits(src, code)
    edits += pinned_edits(src, code)
    edits += include_edits(src, code, path.replace("\\", "/"))
    edits.sort(key=lambda e: (e[0], e[1]))
    for (a0, a1, _), (b0, b1, _) in zip(edits, edits[1:]):
        if b0 < a1:
            raise ConvertError(f"overlapping rewrites at lines {line_of(src, a0)} and {line_of(src, b0)}")
    out = src
    for start, end, rep in reversed(edits):
        out = out[:start] + rep + out[end:]
    header = (
        f"// Generated by tests/cuda_emulation/convert.py from {path}: do not edit.\n"
        '#include "emu.h"\n'
        f'#line 1 "{path}"\n'
    )
    return header + out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("-o", "--output", help="output file (default: stdout)")
    args = ap.parse_args(argv)
    with open(args.source, encoding="utf-8") as f:
        text = convert(f.read(), args.source)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
