"""geomdl.utils.memory: the memory a guard may count on, a container's cgroup limit included (before, only
``MemAvailable`` was read, which shows the host's memory inside a container with a smaller limit)."""
import os

import torch

from geomdl.utils import memory


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_cgroup_v2_limit_less_working_set(tmp_path):
    root = tmp_path / "cg"
    _write(root / "memory.max", "max\n")  # the namespace root: no limit
    _write(root / "job" / "memory.max", str(8 * 2**30))
    _write(root / "job" / "memory.current", str(3 * 2**30))
    _write(root / "job" / "memory.stat", f"anon 123\ninactive_file {2**30}\nactive_file {2**29 + 2**28}\nshmem 7\nfile_dirty {2**27}\n"
           f"file_writeback {2**27}\n")
    _write(tmp_path / "self_cgroup", "0::/job\n")
    # 8 GiB limit - (3 GiB used - 1.5 GiB reclaimable page cache, active included: a container that has read its
    # dataset twice holds it as active cache, which new allocations reclaim; dirty and writeback pages are not)
    assert memory.cgroup_available(str(root), str(tmp_path / "self_cgroup")) == 6 * 2**30 + 2**29


def test_cgroup_v2_parent_limit_counts(tmp_path):
    root = tmp_path / "cg"
    _write(root / "outer" / "memory.max", str(2 * 2**30))
    _write(root / "outer" / "memory.current", str(2**30))
    _write(root / "outer" / "inner" / "memory.max", "max")
    _write(root / "outer" / "inner" / "memory.current", str(2**29))
    _write(tmp_path / "self_cgroup", "0::/outer/inner\n")
    assert memory.cgroup_available(str(root), str(tmp_path / "self_cgroup")) == 2**30


def test_cgroup_v1_in_a_container_reads_the_mount_root(tmp_path):
    """Inside a container /proc/self/cgroup names a host path that the container's mount does not show;
    the mount's top directory is the container's own group."""
    root = tmp_path / "cg"
    _write(root / "memory" / "memory.limit_in_bytes", str(4 * 2**30))
    _write(root / "memory" / "memory.usage_in_bytes", str(2**30))
    _write(root / "memory" / "memory.stat", f"cache 7\ntotal_inactive_file 0\ntotal_active_file {2**29}\n")
    _write(tmp_path / "self_cgroup", "7:blkio:/\n4:memory:/host/path/abc\n1:cpu:/\n")
    assert memory.cgroup_available(str(root), str(tmp_path / "self_cgroup")) == 3 * 2**30 + 2**29


def test_cgroup_v1_unlimited_and_unreadable(tmp_path):
    root = tmp_path / "cg"
    _write(root / "memory" / "memory.limit_in_bytes", "9223372036854771712")  # "no limit"
    _write(root / "memory" / "memory.usage_in_bytes", str(2**30))
    _write(tmp_path / "self_cgroup", "4:memory:/\n")
    assert memory.cgroup_available(str(root), str(tmp_path / "self_cgroup")) is None
    assert memory.cgroup_available(str(root), str(tmp_path / "missing")) is None
    _write(root / "memory" / "memory.limit_in_bytes", "garbage")
    assert memory.cgroup_available(str(root), str(tmp_path / "self_cgroup")) is None


def test_available_bytes_is_the_smaller_reading(monkeypatch):
    monkeypatch.setattr(memory, "meminfo_available", lambda: 10 * 2**30)
    monkeypatch.setattr(memory, "cgroup_available", lambda: 2**30)
    assert memory.available_bytes("cpu") == 2**30
    monkeypatch.setattr(memory, "cgroup_available", lambda: None)
    assert memory.available_bytes(torch.device("cpu")) == 10 * 2**30
    monkeypatch.setattr(memory, "meminfo_available", lambda: None)
    assert memory.available_bytes("cpu") is None
    assert memory.available_bytes("meta") is None


def test_meminfo_parse(tmp_path):
    _write(tmp_path / "meminfo", "MemTotal:       24000000 kB\nMemAvailable:    1000 kB\n")
    assert memory.meminfo_available(str(tmp_path / "meminfo")) == 1000 * 1024
    assert memory.meminfo_available(str(tmp_path / "nothing")) is None


def test_tinv_dense_limit_follows_a_container_limit(monkeypatch):
    """TinvNN's dense n x n guard caps its work at what the container allows."""
    from geomdl.nn.tinv import mds

    monkeypatch.setattr(memory, "meminfo_available", lambda: 64 * 2**30)
    monkeypatch.setattr(memory, "cgroup_available", lambda: 2**30)
    limit, origin = mds.dense_limit(None, torch.device("cpu"))
    assert limit == 2**30 and "available" in origin
