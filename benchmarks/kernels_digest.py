"""Digest of the sources of the compiled extension (every file under kernels/, and setup.py).

``python benchmarks/kernels_digest.py`` prints it (16 hex digits). benchmarks/gpu_fetch.sh records it
beside a prebuilt CUDA extension and benchmarks/gpu_session.sh uses that extension only when the
digest of its own checkout (and the torch version) match.
"""
import hashlib
import pathlib
import sys


def kernels_digest(root: pathlib.Path) -> str:
    h = hashlib.sha256()
    paths = [*(root / "kernels").rglob("*"), root / "setup.py"]
    for p in sorted(paths, key=lambda q: q.relative_to(root).as_posix()):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


if __name__ == "__main__":
    print(kernels_digest(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
