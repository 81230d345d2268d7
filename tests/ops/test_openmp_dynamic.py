"""CPU kernels when the OpenMP runtime starts fewer threads than asked for.

The kernels split their work into T parts (T from omp_get_max_threads()) and open
``#pragma omp parallel num_threads(T)``; with ``OMP_DYNAMIC=true`` (or OMP_THREAD_LIMIT, or inside a nested
region) the runtime may start a smaller team. Every part must still be processed (each thread takes the parts
t, t + team, ...), and since each part is still reduced by one thread in the same order, the results must be
bit for bit those of a full team. Each configuration runs in a fresh interpreter (the OpenMP settings are read
once, at start-up), on inputs large enough to be split.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import torch

from geomdl import ops

pytestmark = pytest.mark.skipif(
    not (ops.has_kernel("scatter_reduce") and ops.has_kernel("segment_softmax") and ops.has_kernel("fps") and ops.has_kernel("radius")),
    reason="geomdl._C not built (reference mode)")

PACKAGE_PARENT = str(pathlib.Path(ops.__file__).resolve().parents[2])

SCRIPT = r"""
import sys
import torch
from geomdl import ops

out_path = sys.argv[1]
results, failures = {}, []


def check(name, got, want, exact):
    results[name] = got
    try:
        if exact:
            assert torch.equal(got, want), "differs"
        else:
            torch.testing.assert_close(got, want)
    except AssertionError as e:
        failures.append(f"{name}: {str(e).splitlines()[0]}")


gen = torch.Generator().manual_seed(0)
with ops.use_backend("compiled"):
    # scatter sum/mean: few segments (row split: T private accumulators) and many (segments balanced over T).
    for N, C, S in [(200_000, 8, 1000), (60_000, 4, 20_000)]:
        src = torch.randn(N, C, generator=gen, dtype=torch.float64)
        index = torch.randint(0, S, (N,), generator=gen)
        for reduce in ["sum", "mean", "max", "min"]:
            check(f"scatter_{reduce}_{S}", ops.scatter(src, index, 0, S, reduce),
                  ops.scatter_reference(src, index, 0, S, reduce), exact=reduce in ("max", "min"))
        check(f"segment_softmax_{S}", ops.segment_softmax(src, index, S),
              ops.segment_softmax_reference(src, index, S), exact=False)
    pos = torch.rand(6000, 3, generator=gen, dtype=torch.float64)
    batch = torch.sort(torch.randint(0, 3, (6000,), generator=gen)).values
    check("radius_graph", ops.radius_graph(pos, 0.08, batch, max_num_neighbors=16),
          ops.radius_graph_reference(pos, 0.08, batch, max_num_neighbors=16), exact=True)
    check("knn_graph", ops.knn_graph(pos, 6, batch), ops.knn_graph_reference(pos, 6, batch), exact=True)
    big = torch.rand(1 << 18, 3, generator=gen, dtype=torch.float64)  # one cloud on all threads
    check("fps", ops.fps(big, num=24, start=torch.tensor([5])),
          ops.fps_reference(big, num=24, start=torch.tensor([5])), exact=True)
torch.save(results, out_path)
print("FAILURES:" if failures else "OK", *failures, sep="\n")
sys.exit(1 if failures else 0)
"""


def _run(tmp_path, name, omp_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(omp_env)
    env["GEOMDL_KERNELS"] = "compiled"
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, env.get("PYTHONPATH", "")])
    out = tmp_path / f"{name}.pt"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{omp_env}:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return torch.load(out)


@pytest.fixture(scope="module")
def full_team(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("omp"), "full", {"OMP_NUM_THREADS": "4", "OMP_DYNAMIC": "false"})


@pytest.mark.parametrize("omp_env", [
    {"OMP_NUM_THREADS": "4", "OMP_DYNAMIC": "true"},
    {"OMP_NUM_THREADS": "4", "OMP_THREAD_LIMIT": "1"},
], ids=["dynamic", "thread_limit_1"])
def test_smaller_team_matches_reference_and_full_team(tmp_path, full_team, omp_env):
    got = _run(tmp_path, "small", omp_env)
    assert got.keys() == full_team.keys()
    for name, value in got.items():
        assert torch.equal(value, full_team[name]), f"{name}: differs from the full team's result"
