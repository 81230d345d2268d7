"""What a user gets from ``python -m benchmarks`` on a wrong command line, a missing optional peer or an
interrupted write: a one-line usage error (exit 2, no traceback), a row saying "skipped", never a
half-written results file. No real benchmark runs here."""
import argparse
import json
import pathlib
import sys
import types

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is not installed with the package
    sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import main  # noqa: E402


@pytest.fixture
def no_run(monkeypatch):
    """Every benchmark's ``run`` fails at once: a command line that is not refused must not start a measurement."""
    import importlib

    from benchmarks.__main__ import BENCHMARKS

    def ran(args):
        raise AssertionError("the benchmark ran")

    for module in BENCHMARKS.values():
        monkeypatch.setattr(importlib.import_module(module), "run", ran)


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, expect", [
    (["ops", "--threads", "0"], "--threads: expected a positive integer, got '0'"),
    (["ops", "--threads", "-1"], "--threads: expected a positive integer, got '-1'"),
    (["ops", "--repeats", "-1"], "--repeats: expected a positive integer, got '-1'"),
    (["ops", "--repeats", "0"], "--repeats: expected a positive integer, got '0'"),
    (["layers", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["trainer", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["tinvnn_embedding", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["compile", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["cg_product", "--repeats", "0"], "--repeats: expected a positive integer"),
    (["tensor_product", "--slow-repeats", "0"], "--slow-repeats: expected a positive integer"),
    # misspelt names
    (["layers", "--only", "EdgConv"], "invalid choice: 'EdgConv' (choose from 'PointNetConv', 'EdgeConv'"),
    (["compile", "--only", "egn"], "invalid choice: 'egn' (choose from 'egnn'"),
    (["cg_product", "--passes", "forward,fwd"], "--passes: unknown 'fwd' (choose from forward, forward+backward"),
    (["cg_product", "--cases", "nope"], "--cases: unknown 'nope' (choose from nequip_conv"),
    (["tensor_product", "--peers", "gaunt,e3n"], "--peers: unknown 'e3n' (choose from gaunt, gaunt_fft, e3nn, cueq)"),
    (["tensor_product", "--device", "cdua"], "invalid choice: 'cdua' (choose from 'cpu', 'cuda')"),
    (["ops", "--device", "cdua"], "--device: expected cpu, cuda or cuda:N, got 'cdua'"),
    (["ops", "--device", "cuda:x"], "--device: expected cpu, cuda or cuda:N, got 'cuda:x'"),
    (["ops", "--device", "cuda:"], "--device: expected cpu, cuda or cuda:N, got 'cuda:'"),
    (["ops", "--device", "cpu:0"], "--device: expected cpu, cuda or cuda:N, got 'cpu:0'"),
    (["qm9_short", "--models", "egn"], "invalid choice: 'egn' (choose from 'egnn'"),
    (["ponita_step", "--models", "ponit"], "invalid choice: 'ponit' (choose from 'egnn'"),
    (["ponita_step", "--repeats", "0"], "--repeats: expected a positive integer, got '0'"),
    (["qm9_short", "--target", "u0"], "invalid choice: 'u0' (choose from 'mu'"),
    (["registration", "--methods", "geomd"], "invalid choice: 'geomd' (choose from 'geomdl'"),
    (["memory", "--only", "radius_grap"], "invalid choice: 'radius_grap' (choose from 'cg_uvw', 'ponita_grid'"),
    (["memory", "--threads", "0"], "--threads: expected a positive integer, got '0'"),
    (["memory", "--timeout", "0"], "--timeout: expected a positive integer, got '0'"),
    (["ponita_grid", "--grids", "fibonaci"], "invalid choice: 'fibonaci' (choose from 'fibonacci', 'repulsion')"),
    (["ops", "--only"], "--only: expected at least one argument"),  # was: every part, silently
    (["tensor_product", "--ls", "0"], "--ls: expected comma-separated ints >= 1 such as 6,10, got '0'"),  # was exit 1
    (["tensor_product", "--ls", "a"], "--ls: expected comma-separated ints >= 1 such as 6,10, got 'a'"),
    (["compile", "--only"], "--only: expected at least one argument"),
])
def test_bad_numbers_and_misspelt_names_are_usage_errors(capsys, no_run, argv, expect):
    assert expect in _usage_error(capsys, argv)


def test_layer_choices_are_the_layers_run():
    from benchmarks import compile as bench_compile

    g = torch.Generator().manual_seed(0)
    assert bench_compile.LAYERS == tuple(bench_compile._cases(4, torch.rand(4, 3), None, g))


def test_threads_help_states_the_benchmark_default(capsys, no_run):
    with pytest.raises(SystemExit):
        main(["ops", "--help"])
    assert "torch threads (default: 2)" in " ".join(capsys.readouterr().out.split())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_tensor_product_cuda_without_cuda_is_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        main(["tensor_product", "--ls", "1", "--device", "cuda", "--out", "/nonexistent/never-written.json"])
    assert info.value.code == "--device cuda: torch sees no CUDA device"


def test_unavailable_benchmark_says_why(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "benchmarks.cg_product", None)  # as if e3nn were missing
    with pytest.raises(SystemExit) as info:
        main(["cg_product", "--repeats", "1"])
    assert str(info.value.code).startswith("benchmark cg_product is unavailable: ")


def test_results_json_is_written_atomically(tmp_path, monkeypatch):
    fake = types.ModuleType("fake_benchmark")  # a benchmark that takes no time
    fake.HELP, fake.add_arguments = "fake", lambda parser: None
    fake.run = lambda args: [{"op": "x" * 1000, "median_ms": 1.0}]
    monkeypatch.setitem(sys.modules, "fake_benchmark", fake)
    monkeypatch.setattr("benchmarks.__main__.BENCHMARKS", {"fake": "fake_benchmark"})
    out = tmp_path / "fake.json"
    out.write_text(json.dumps({"rows": ["previous"]}))
    import builtins

    import geomdl.utils.io

    class Interrupting:  # the process is killed half way through the write
        def __init__(self, file, mode="r", *a, **k):
            self.fh = builtins.open(file, mode, *a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise KeyboardInterrupt

    monkeypatch.setattr(geomdl.utils.io, "open", Interrupting, raising=False)
    with pytest.raises(KeyboardInterrupt):
        main(["fake", "--out", str(out)])
    monkeypatch.delattr(geomdl.utils.io, "open")
    assert json.loads(out.read_text()) == {"rows": ["previous"]}
    assert [p.name for p in tmp_path.iterdir()] == ["fake.json"]  # no temporary file left behind
    main(["fake", "--out", str(out)])
    assert json.loads(out.read_text())["rows"] == [{"op": "x" * 1000, "median_ms": 1.0}]


def test_missing_torch_scatter_gives_skip_rows(monkeypatch):
    from benchmarks import ops as bench_ops
    from geomdl import ops

    if not ops.has_kernel("scatter_reduce"):
        pytest.skip("compiled kernels not loaded")
    real_optional = bench_ops._optional
    monkeypatch.setattr(bench_ops, "_optional", lambda name: None if name == "torch_scatter" else real_optional(name))
    monkeypatch.setattr("benchmarks.ops_scatter_cpu.measure",
                        lambda fn, **kw: {"median_ms": 1.0, "min_ms": 1.0, "iqr_ms": 0.0, "repeats": 1})
    args = argparse.Namespace(quick=True, only=["scatter_max", "scatter_small"], repeats=1, device="cpu")
    rows = bench_ops.run(args)
    ops_seen = {r["op"] for r in rows}
    skipped = {r["op"] for r in rows if r["impl"] == "torch_scatter"}
    assert skipped == ops_seen
    assert all(r["agrees"].startswith("not installed") for r in rows if r["impl"] == "torch_scatter")


def test_registration_without_open3d_skips_it(tmp_path, monkeypatch):
    import geomdl.pipelines.registration as reg
    from benchmarks import registration as bench_reg

    class Result:
        pose, success = torch.eye(4, dtype=torch.float64), True

    def fake_register(src, tgt, method="geomdl", **kw):
        if method == "open3d":
            raise ImportError("open3d is not installed: pip install 'geomdl[data]' (or open3d-cpu)")
        return Result()

    monkeypatch.setattr(reg, "register", fake_register)
    monkeypatch.setattr(bench_reg, "DATA", tmp_path)
    monkeypatch.setattr(bench_reg, "synthetic_pairs", lambda num, seed: (
        ("synthetic", torch.rand(10, 3), torch.rand(10, 3), torch.eye(4, dtype=torch.float64), None) for _ in range(num)))
    args = argparse.Namespace(synthetic=2, crops=0, methods=["geomdl", "open3d"], voxel=0.05, seed=0)
    rows = bench_reg.run(args)
    assert [r["method"] for r in rows] == ["geomdl", "geomdl", "open3d"]
    assert rows[-1]["skipped"].startswith("open3d is not installed")
    assert all(r["time_ratio_vs_open3d"] is None for r in rows[:-1])


def test_registration_with_no_pairs_is_one_line(tmp_path, monkeypatch):
    from benchmarks import registration as bench_reg

    monkeypatch.setattr(bench_reg, "DATA", tmp_path)  # no real data there
    args = argparse.Namespace(synthetic=0, crops=0, methods=["geomdl"], voxel=0.05, seed=0)
    with pytest.raises(SystemExit, match="--synthetic 0 and no real data at .*: no pairs to register"):
        bench_reg.run(args)  # was an IndexError from the warm-up's problems[0]


def test_ops_cpu_only_part_on_cuda_is_refused():
    from benchmarks import ops as bench_ops

    args = argparse.Namespace(quick=True, only=["fps", "knn_features"], repeats=1, device="cuda")
    with pytest.raises(SystemExit) as info:
        bench_ops.run(args)
    assert info.value.code == "--only knn_features: CPU only; with --device cuda choose from scatter, radius, knn, fps"


@pytest.mark.parametrize("argv, match", [
    (["ops", "--k", "0"], "argument --k: expected a positive integer"),
    (["ops", "--neighbors", "-5"], "argument --neighbors: expected a positive finite number"),
    (["layers", "--radius", "nan"], "argument --radius: expected a positive finite number"),
    (["ponita_step", "--warmup", "-1"], "argument --warmup: expected an integer >= 0"),
    (["tinvnn_embedding", "--clouds", "0"], "argument --clouds: expected a positive integer"),
    # these used to start the run and end in a traceback (or, refine --synthetic -1, in a -0 success rate)
    (["trainer", "--batch", "0"], "argument --batch: expected a positive integer, got '0'"),
    (["trainer", "--samples", "0"], "argument --samples: expected a positive integer, got '0'"),
    (["tinvnn_tsp", "--n", "2"], "argument --n: expected an integer from 3 to 16, got '2'"),
    (["tinvnn_tsp", "--n", "17"], "argument --n: expected an integer from 3 to 16, got '17'"),  # held_karp's limit
    (["tinvnn_tsp", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["tinvnn_tsp", "--num-test", "0"], "argument --num-test: expected a positive integer, got '0'"),
    (["registration_refine", "--synthetic", "-1"], "argument --synthetic: expected an integer >= 0, got '-1'"),
    (["registration_refine", "--voxel", "0"], "argument --voxel: expected a positive finite number, got '0'"),
    # these were plain int/float: a traceback after the data or the training (--holdout -1: 1 training frame)
    (["nbody", "--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
    (["nbody", "--eval-every", "0"], "argument --eval-every: expected a positive integer, got '0'"),
    (["nbody", "--ema", "1.5"], "argument --ema: expected a number in [0, 1), got '1.5'"),
    (["nbody", "--test-rotations", "-1"], "argument --test-rotations: expected an integer >= 0, got '-1'"),
    (["nbody", "--weight-decay", "-1"], "argument --weight-decay: expected a finite number >= 0, got '-1'"),
    (["ponita_3bpa", "--holdout", "-1"], "argument --holdout: expected a positive integer, got '-1'"),
    (["ponita_3bpa", "--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
    (["ponita_3bpa", "--time-budget", "-1"], "argument --time-budget: expected a positive finite number, got '-1'"),
    (["registration_train_descriptor", "--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
    (["registration_train_descriptor", "--scenes", "-1"], "argument --scenes: expected an integer >= 0, got '-1'"),
    (["apen_segmentation", "--measure-scenes", "0"], "argument --measure-scenes: expected a positive integer, got '0'"),
])
def test_size_options_are_checked_before_anything_runs(capsys, no_run, argv, match):
    assert match in _usage_error(capsys, argv)


def test_ponita_3bpa_without_frames_to_train_on_is_one_line(tmp_path, monkeypatch):
    import geomdl.utils.allocator
    from benchmarks import ponita_3bpa

    monkeypatch.setattr(geomdl.utils.allocator, "keep_freed_memory", lambda: False)  # not this test process's malloc
    args = argparse.Namespace(data=str(tmp_path / "missing.xyz"), holdout=50, seed=0, init=None)
    with pytest.raises(SystemExit, match=r"^--data: .*missing\.xyz: no such file"):
        ponita_3bpa.run(args)  # was a FileNotFoundError traceback (the default --data is ../shared/data/...)
    monkeypatch.setattr(ponita_3bpa, "_read", lambda path: [object()] * 3)
    args.holdout = 3
    with pytest.raises(SystemExit, match=r"^--holdout 3: leaves no training frame \(3 frames in --data "):
        ponita_3bpa.run(args)  # was an empty training set, failing after the baseline timing


def test_ponita_3bpa_bad_init_is_one_line_before_the_data_are_read(tmp_path, monkeypatch):
    from benchmarks import ponita_3bpa

    def never(path):
        raise AssertionError("the data were read")

    monkeypatch.setattr(ponita_3bpa, "_read", never)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    torch.save({"kind": "other"}, tmp_path / "other.pt")
    for name, message in (("missing.pt", "cannot read it"), ("text.pt", "cannot read it"),
                          ("other.pt", "not a PonitaPotential checkpoint")):
        args = argparse.Namespace(data="unused.xyz", holdout=50, seed=0, init=str(tmp_path / name))
        with pytest.raises(SystemExit, match=rf"^--init .*{name}: {message}"):
            ponita_3bpa.run(args)  # was a traceback of torch.load (or a ValueError) after reading the data


def test_ponita_3bpa_finds_its_data_where_the_other_benchmarks_do(tmp_path, monkeypatch):
    import importlib

    from benchmarks import ponita_3bpa

    monkeypatch.setenv("GEOMDL_SHARED_DATA", str(tmp_path))  # as benchmarks/registration.py and the tests read it
    try:
        assert importlib.reload(ponita_3bpa).DEFAULT_DATA == tmp_path / "3bpa" / "dataset_3BPA" / "train_300K.xyz"
    finally:
        monkeypatch.undo()
        importlib.reload(ponita_3bpa)


@pytest.mark.parametrize("bench, argv, match", [
    ("tinvnn_classification", ["--set", "train.epochz=2"], r"^--config/--set: tinvnn_shapes: train\.epochz: unknown key"),
    ("tinvnn_classification", ["--set", "foo"], r"^--config/--set: tinvnn_shapes: --set 'foo': expected key=value"),
    ("tinvnn_classification", ["--config", "tinvnn_shape"], r"^--config/--set: tinvnn_shape: config file not found"),
    ("apen_segmentation", ["--set", "train.epochz=2"], r"^--config/--set: apen_segmentation: train\.epochz: unknown key"),
])
def test_a_bad_config_override_is_one_line(tmp_path, monkeypatch, bench, argv, match):
    import importlib

    import geomdl.pipelines.runs

    def train(*a, **k):
        raise AssertionError("a training run started")

    monkeypatch.setattr(geomdl.pipelines.runs, "train", train)
    parser = argparse.ArgumentParser()
    module = importlib.import_module(f"benchmarks.{bench}")
    module.add_arguments(parser)
    args = parser.parse_args([*argv, "--out-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match=match):
        module.run(args)  # was a ConfigError traceback


def test_an_unusable_out_path_stops_before_the_run(no_run, tmp_path):
    with pytest.raises(SystemExit, match="is a folder"):
        main(["trainer", "--out", str(tmp_path)])
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(SystemExit, match="is a file"):
        main(["trainer", "--out", str(blocker / "sub" / "r.json")])


def test_quartiles_of_few_timings_stay_within_the_data(monkeypatch):
    import benchmarks.timing as timing

    # perf_counter readings: the loop start, (t0, t1) per call (10 ms and 20 ms), the loop test after them
    clock = iter([0.0, 0.0, 0.010, 0.010, 0.030, 0.030])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    t = timing.measure(lambda: None, repeats=2, warmup=0)
    assert t["repeats"] == 2 and t["median_ms"] == pytest.approx(15.0)
    assert t["iqr_ms"] <= 10.0 + 1e-9  # the exclusive quartiles extrapolated to 15 ms, wider than the data


def test_trainer_benchmark_synchronises_on_the_training_device(monkeypatch):
    from benchmarks import trainer as bench_trainer

    seen = []

    def fake_measure(fn, **kw):  # one call instead of an epoch's timing; records where it synchronises
        seen.append(kw.get("device"))
        return {"median_ms": 1.0, "min_ms": 1.0, "iqr_ms": 0.0, "repeats": 1}

    monkeypatch.setattr(bench_trainer, "measure", fake_measure)
    args = argparse.Namespace(samples=4, points=8, hidden=4, batch=2, repeats=1)
    rows = bench_trainer.run(args)
    assert len(seen) == 4 and all(d is not None and str(d) == rows[0]["device"] for d in seen)  # was None: on a
    # GPU the bare loop was timed to its last launch, the engine (which reads its loss sums) to its last kernel


def test_quick_keeps_the_options_given_on_the_command_line(monkeypatch, tmp_path):
    # --quick replaced explicit options silently: "--quick --epochs 5" trained 2 epochs
    import importlib

    from benchmarks.timing import quick_settings

    seen = {}

    def record(args):
        quick_settings(args, train=100, epochs=2, time_budget=None)
        seen.update(vars(args))
        return [{"ok": 1}]

    monkeypatch.setattr(importlib.import_module("benchmarks.nbody"), "run", record)
    assert main(["nbody", "--quick", "--epoch", "5", "--time-budget=60", "--out", str(tmp_path / "n.json")]) == 0
    assert (seen["epochs"], seen["time_budget"], seen["train"]) == (5, 60.0, 100)
    assert {"epochs", "time_budget", "quick", "out"} <= seen["given"] and "train" not in seen["given"]


def test_ponita_3bpa_quick_keeps_a_time_budget_given_on_the_command_line(monkeypatch, tmp_path):
    # --quick dropped the time budget whatever the command line said: "--quick --time-budget 60" trained without one
    import geomdl.pipelines.molecular as molecular
    from torch_geometric.data import Data

    class Stop(Exception):
        pass

    seen = {}

    def fake_train(model, train, test, **kwargs):
        seen.update(kwargs)
        raise Stop

    frames = [Data(z=torch.tensor([1, 8]), pos=torch.randn(2, 3, dtype=torch.float64)) for _ in range(3)]
    monkeypatch.setattr(molecular, "read_frames", lambda path: frames)
    monkeypatch.setattr(molecular, "train_potential", fake_train)
    argv = ["ponita_3bpa", "--quick", "--no-baseline", "--holdout", "1", "--hidden", "8", "--layers", "1",
            "--num-ori", "4", "--basis-dim", "8", "--out", str(tmp_path / "p.json")]
    for extra, budget in (([], None), (["--time-budget", "60"], 60.0)):
        seen.clear()
        with pytest.raises(Stop):
            main(argv + extra)
        assert (seen["time_budget"], seen["epochs"]) == (budget, 2)


def test_nbody_quick_keeps_a_cache_given_on_the_command_line(monkeypatch, tmp_path):
    # --quick never used the cache folder, even one given explicitly
    import geomdl.datasets.nbody as nbody

    class Stop(Exception):
        pass

    seen = []

    def fake_split(split, n, cache):
        seen.append(cache)
        raise Stop

    monkeypatch.setattr(nbody, "nbody_split", fake_split)
    for extra, cache in (([], None), (["--cache", str(tmp_path / "c")], str(tmp_path / "c"))):
        seen.clear()
        with pytest.raises(Stop):
            main(["nbody", "--quick", "--out", str(tmp_path / "n.json"), *extra])
        assert seen == [cache]


def test_given_options_handles_accumulating_actions():
    # an append/count option would have failed on the placeholder value (no benchmark has one yet)
    import argparse

    from benchmarks.__main__ import given_options

    p = argparse.ArgumentParser()
    p.add_argument("--a", action="append")
    p.add_argument("--v", action="count")
    p.add_argument("--n", type=int, default=3)
    assert given_options(p, ["--a", "x", "--v", "--n", "3"]) == {"a", "v", "n"}
    assert given_options(p, []) == set()
