"""Acceptance: ``geomdl train`` under a 2-process CPU torchrun ends with the same weights on both
ranks, equal (float tolerance) to a 1-process run on the same global batches."""
import json
import os
import socket
import subprocess
import sys

import torch
import yaml

from geomdl.pipelines.checkpoint import load_checkpoint
from geomdl.pipelines.config import load_config
from geomdl.pipelines.trainer import Trainer

SETTINGS = {
    "seed": 3,
    "data": {"name": "toy_shapes", "kwargs": {"num_samples": 16, "num_points": 16}},
    "model": {"name": "tiny_pointnet", "kwargs": {"hidden_channels": 16}},
    "optim": {"lr": 0.01, "grad_clip": 1.0, "schedule": "cosine", "warmup_steps": 1},
    "train": {"epochs": 2, "batch_size": 8, "progress": "off", "tensorboard": False, "plots": False, "ema_decay": 0.9},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_train(settings: dict, tmp_path):
    """``geomdl train`` of ``settings`` under a 2-process CPU torchrun into ``tmp_path / "ddp"``; the config path."""
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(settings))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "geomdl", "train", str(cfg_path), "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cfg_path


def test_two_process_torchrun_matches_one_process_run(tmp_path):
    cfg_path = _torchrun_train(SETTINGS, tmp_path)

    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    prints = results["weights_sha256_per_rank"]
    assert len(prints) == 2 and prints[0] == prints[1]  # both ranks hold bit-identical weights
    assert results["step"] == 4  # 16 samples / global batch 8 = 2 steps per epoch

    single = Trainer(load_config(cfg_path, [f"train.out_dir={tmp_path / 'one'}"])).fit()
    ddp_ckpt, one_ckpt = load_checkpoint(tmp_path / "ddp" / "last.pt"), load_checkpoint(tmp_path / "one" / "last.pt")
    assert ddp_ckpt["world_size"] == 2 and one_ckpt["world_size"] == 1
    for key, value in one_ckpt["model"].items():
        torch.testing.assert_close(ddp_ckpt["model"][key], value, rtol=1e-5, atol=1e-6)
    for key, value in one_ckpt["ema"]["module"].items():
        torch.testing.assert_close(ddp_ckpt["ema"]["module"][key], value, rtol=1e-5, atol=1e-6)
    # the run really trained: the weights moved away from the seeded initialisation
    Trainer(load_config(cfg_path, [f"train.out_dir={tmp_path / 'init'}", "optim.lr=1e-30", "train.epochs=1"])).fit()
    init_w = load_checkpoint(tmp_path / "init" / "last.pt")["model"]
    assert any((init_w[k] - one_ckpt["model"][k]).abs().max() > 1e-3 for k in init_w)
    # metrics are reduced over the ranks: validation on 16 samples sharded 8/8 equals the 1-process value
    for key, value in single["metrics"]["val"].items():
        assert abs(results["metrics"]["val"][key] - value) < 1e-5, key


def test_two_process_time_budget_stops_both_ranks_at_the_same_step(tmp_path):
    """Each rank reads its own clock; the ranks agree on the largest reading, so both stop after the same
    step (a rank that stopped alone would hang the other in its next all-reduce) with the same weights."""
    _torchrun_train({**SETTINGS, "train": {**SETTINGS["train"], "epochs": 100000, "time_budget": 2.0}}, tmp_path)
    results = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert results["time_budget_spent"] and results["epoch"] < 100000 and results["elapsed_s"] >= 2.0
    prints = results["weights_sha256_per_rank"]
    assert len(prints) == 2 and prints[0] == prints[1]


def test_cleanup_frees_a_ddp_wrapper_held_by_a_reference_cycle_before_leaving_the_group():
    """A DDP wrapper kept alive by a cycle (as the trainer's scheduler callback does) used to survive
    ``cleanup`` and be torn down at interpreter shutdown, where gloo aborted the process now and then."""
    import gc
    import weakref

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from geomdl.pipelines.distributed import DistInfo, cleanup

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        gc.disable()  # only cleanup() may collect the cycle
        holder = {"ddp": DistributedDataParallel(torch.nn.Linear(3, 2))}
        holder["self"] = holder
        ddp = weakref.ref(holder["ddp"])
        del holder
        assert ddp() is not None
        cleanup(DistInfo(backend="gloo"))
        assert ddp() is None and not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()


_BARRIER_SCRIPT = r"""
import datetime, sys, time
import torch.distributed as dist
from geomdl.pipelines.distributed import DistInfo, barrier

rank, port, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=2))
info = DistInfo(rank=rank, world_size=2, local_rank=rank, backend="gloo")
if rank == 0:
    time.sleep(5)  # "building the datasets" for longer than the process group's 2 s timeout
barrier(info, timeout=None if timeout == "none" else float(timeout))
barrier(info)  # the default group still works after the long wait
dist.destroy_process_group()
print("passed", rank)
"""


def _run_barrier_pair(tmp_path, timeout: str):
    script = tmp_path / "barrier.py"
    script.write_text(_BARRIER_SCRIPT)
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), port, timeout], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    return [p.returncode for p in procs], outs


def test_barrier_waits_under_its_own_timeout_not_the_process_groups(tmp_path):
    """The trainer's dataset barrier: the ranks wait for local rank 0 to process the data under
    ``train.prepare_timeout``. Before, the wait ran under the process group's timeout (30 min for gloo,
    10 for nccl), so a long first processing ended the waiting ranks with a timeout error."""
    codes, outs = _run_barrier_pair(tmp_path, "60")
    assert codes == [0, 0], [err[-2000:] for _, err in outs]
    # the same wait under the group's 2 s timeout fails: the test can tell the two apart
    codes, _ = _run_barrier_pair(tmp_path, "none")
    assert codes != [0, 0]


def test_barrier_rejects_a_bad_timeout():
    import pytest

    from geomdl.pipelines.distributed import DistInfo, barrier

    barrier(DistInfo(), timeout=-1)  # single process: a no-op whatever the arguments
    for bad in (0, -1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(ValueError, match="timeout"):
            barrier(DistInfo(backend="gloo"), timeout=bad)


def test_barrier_falls_back_to_the_default_group_when_gloo_cannot_connect(monkeypatch):
    """Under nccl, a gloo group needs its own connections (GLOO_SOCKET_IFNAME on some networks); when making
    it fails the wait still happens, under the process group's timeout, with a warning saying so."""
    import pytest
    import torch.distributed as dist

    from geomdl.pipelines.distributed import DistInfo, barrier

    calls = []

    def no_gloo(**kwargs):
        raise RuntimeError("Gloo connectFullMesh failed")

    monkeypatch.setattr(dist, "new_group", no_gloo)
    monkeypatch.setattr(dist, "barrier", lambda group=None: calls.append(group))
    monkeypatch.setattr(dist, "all_reduce", lambda t, op=None: calls.append(("agree", float(t))))
    with pytest.warns(RuntimeWarning, match="connectFullMesh"):
        barrier(DistInfo(backend="nccl"), timeout=5)
    assert calls == [("agree", 0.0), None]  # the ranks agree on the fallback before waiting


def test_barrier_falls_back_on_every_rank_when_one_rank_cannot_make_the_group(tmp_path):
    """Two real processes: rank 1 cannot make the gloo group, rank 0 can. Both must wait on the same group
    (the default one), or each would wait for the other forever."""
    script = tmp_path / "split.py"
    script.write_text(r"""
import datetime, sys, warnings
import torch.distributed as dist
from geomdl.pipelines import distributed
from geomdl.pipelines.distributed import DistInfo, barrier

rank, port = int(sys.argv[1]), sys.argv[2]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                        timeout=datetime.timedelta(seconds=20))
if rank == 1:
    real = dist.new_group

    def failing(**kwargs):
        real(**kwargs)  # take part in the collective creation, then fail as a broken connection would
        raise RuntimeError("Gloo connectFullMesh failed")

    dist.new_group = failing
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    barrier(DistInfo(rank=rank, world_size=2, local_rank=rank, backend="gloo"), timeout=5)
assert any("no gloo group" in str(w.message) for w in caught), [str(w.message) for w in caught]
dist.destroy_process_group()
print("passed", rank)
""")
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), port], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
