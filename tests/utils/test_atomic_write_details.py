"""Atomic writes: fsync before the rename, permission bits of an existing target, writing through symlinks."""
from __future__ import annotations

import os
import stat

import pytest

from geomdl.utils import io as gio
from geomdl.utils.io import atomic_path, atomic_torch_save, atomic_write_text

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits and symlinks")


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_temp_file_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else fd))
        return real_fsync(fd)

    def replace(src, dst):
        with open(src, encoding="utf-8") as fh:  # the data is complete when it is synced and renamed
            events.append(("replace", os.fspath(src), fh.read()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "out.json"
    atomic_write_text(target, "payload\n")
    kinds = [e[0] for e in events]
    assert "fsync" in kinds and "replace" in kinds, events
    assert kinds.index("fsync") < kinds.index("replace"), events
    replaced = next(e for e in events if e[0] == "replace")
    assert replaced[2] == "payload\n"
    if os.path.isdir("/proc/self/fd"):  # the synced descriptor is the temporary file, not a directory
        synced = next(e for e in events if e[0] == "fsync")[1]
        assert synced == os.path.realpath(replaced[1])
    assert target.read_text(encoding="utf-8") == "payload\n"


def test_fsync_failure_leaves_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "keep.txt"
    target.write_text("old", encoding="utf-8")

    def broken(fd):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # no temporary file left


@posix_only
@pytest.mark.parametrize("mode", [0o640, 0o755, 0o600, 0o664])
def test_existing_target_keeps_its_permission_bits(tmp_path, mode):
    target = tmp_path / "results.json"
    target.write_text("old", encoding="utf-8")
    os.chmod(target, mode)
    atomic_write_text(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert mode_of(target) == mode


@posix_only
def test_new_target_gets_umask_default_not_mkstemp_0600(tmp_path):
    target = tmp_path / "fresh.txt"
    atomic_write_text(target, "x")
    assert mode_of(target) == 0o666 & ~gio._umask()


@posix_only
def test_symlink_target_is_written_through(tmp_path):
    real_dir = tmp_path / "store"
    real_dir.mkdir()
    real = real_dir / "config.yaml"
    real.write_text("old", encoding="utf-8")
    os.chmod(real, 0o640)
    link = tmp_path / "link.yaml"
    link.symlink_to(real)
    atomic_write_text(link, "new")
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text(encoding="utf-8") == "new"
    assert mode_of(real) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.yaml", "store"]  # temp file in the real folder
    assert sorted(p.name for p in real_dir.iterdir()) == ["config.yaml"]


@posix_only
def test_symlink_through_atomic_path_and_torch_save(tmp_path):
    torch = pytest.importorskip("torch")
    real = tmp_path / "ckpt-real.pt"
    real.write_bytes(b"")
    link = tmp_path / "last.pt"
    link.symlink_to(real.name)  # relative link
    atomic_torch_save({"a": torch.arange(3)}, link)
    assert link.is_symlink() and os.readlink(link) == real.name
    assert torch.equal(torch.load(real)["a"], torch.arange(3))
    with atomic_path(link, ".png") as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        with open(tmp, "wb") as fh:
            fh.write(b"png")
    assert link.is_symlink() and real.read_bytes() == b"png"


@posix_only
def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "dangling.txt"
    link.symlink_to(tmp_path / "made.txt")
    atomic_write_text(link, "hello")
    assert link.is_symlink()
    assert (tmp_path / "made.txt").read_text(encoding="utf-8") == "hello"
