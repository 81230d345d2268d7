"""Verified, resumable downloads from a local HTTP server on 127.0.0.1 and file:// URLs (never the network)."""
import hashlib
import http.server
import threading

import pytest

from geomdl.datasets.download import ChecksumError, download, fetch, read_manifest, status

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    ranges: list = []

    def do_GET(self):  # noqa: N802
        body = PAYLOAD if self.path == "/good.bin" else b"tampered" + PAYLOAD[8:]
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.split("=")[1].split("-")[0]) if header else 0
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_verifies_and_places_file(server, tmp_path):
    dest = fetch(f"{server}/good.bin", tmp_path / "a" / "good.bin", len(PAYLOAD), SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "a" / "good.bin.part").exists()
    fetch(f"{server}/good.bin", dest, len(PAYLOAD), SHA, progress=False)  # present and verified: no request
    assert _Handler.ranges == [None]


def test_fetch_resumes_partial_download(server, tmp_path):
    dest = tmp_path / "good.bin"
    (tmp_path / "good.bin.part").write_bytes(PAYLOAD[:300_000])
    fetch(f"{server}/good.bin", dest, len(PAYLOAD), SHA, progress=False)
    assert _Handler.ranges == ["bytes=300000-"]
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_partial_and_raises(server, tmp_path):
    dest = tmp_path / "bad.bin"
    with pytest.raises(ChecksumError, match="sha256 mismatch: expected " + SHA):
        fetch(f"{server}/bad.bin", dest, len(PAYLOAD), SHA, progress=False)
    assert not dest.exists() and not (tmp_path / "bad.bin.part").exists()


def test_placed_file_with_wrong_checksum_is_caught(tmp_path):
    dest = tmp_path / "placed.bin"
    dest.write_bytes(b"x" * len(PAYLOAD))
    with pytest.raises(ChecksumError, match="placed.bin: sha256 mismatch"):
        fetch("https://unused.invalid/placed.bin", dest, len(PAYLOAD), SHA, progress=False)
    with pytest.raises(ChecksumError, match="expected 1048576 bytes, found 3"):
        dest.write_bytes(b"abc")
        fetch("https://unused.invalid/placed.bin", dest, len(PAYLOAD), SHA, progress=False)


def test_file_url_and_manifest_download(tmp_path):
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    manifest = tmp_path / "manifest"
    manifest.write_text(f"# comment\n\ntoy  toy/data.bin  {len(PAYLOAD)}  {SHA}  {src.as_uri()}\n"
                        f"other  other/x.bin  3  {'0' * 64}  {src.as_uri()}\n")
    root = tmp_path / "root"
    entries = read_manifest(manifest)
    assert [e.dataset for e in entries] == ["toy", "other"]
    assert status(entries[0], root) == "missing"
    (root / "toy").mkdir(parents=True)
    (root / "toy" / "data.bin.part").write_bytes(PAYLOAD[:1000])
    assert status(entries[0], root) == "partial"
    paths = download("toy", root, manifest=manifest, progress=False)  # resumes the partial file by offset
    assert paths == [root / "toy" / "data.bin"] and paths[0].read_bytes() == PAYLOAD
    assert status(entries[0], root, check_hash=True) == "verified"
    with pytest.raises(ValueError, match="dataset 'nope' has no files in the manifest"):
        download("nope", root, manifest=manifest)


@pytest.mark.parametrize("line, message", [
    ("toy toy/a 12 abc https://x", "SHA256 must be 64 hex"),
    ("toy toy/a twelve " + "0" * 64 + " https://x", "SIZE must be a byte count"),
    ("toy toy/a 1\u00b2 " + "0" * 64 + " https://x", "SIZE must be a byte count"),  # a superscript: isdigit() but no int
    ("toy ../a 1 " + "0" * 64 + " https://x", "inside the data root"),
    ("toy toy/a 1", "expected 5 fields"),
])
def test_malformed_manifest(tmp_path, line, message):
    manifest = tmp_path / "manifest"
    manifest.write_text(line + "\n")
    with pytest.raises(ValueError, match=f"{manifest}:1: .*{message}"):
        read_manifest(manifest)


def test_repository_manifest_is_valid_and_matches_shared_data(shared_data):
    entries = read_manifest()  # datasets/manifest of the checkout
    assert len(entries) >= 90 and all(e.url.startswith("https://") for e in entries)
    # every listed file is one of the real samples: sizes match exactly, sha256 of a few small ones too
    for e in entries:
        assert status(e, shared_data) in ("present", "verified"), e.path
    small = [e for e in entries if e.size < 2000]
    assert small and all(status(e, shared_data, check_hash=True) == "verified" for e in small)


def test_cli_reports_corrupt_file(tmp_path, capsys):
    from geomdl.cli import main

    good = tmp_path / "root" / "toy" / "a.bin"
    good.parent.mkdir(parents=True)
    good.write_bytes(b"abc")
    manifest = tmp_path / "manifest"
    manifest.write_text(f"toy  toy/a.bin  3  {'0' * 64}  https://unused.invalid/a\n")
    rc = main(["datasets", "--root", str(tmp_path / "root"), "--manifest", str(manifest), "--verify"])
    out = capsys.readouterr().out
    assert rc == 1 and "CORRUPT" in out and "synthetic_shapes" in out
    rc = main(["datasets", "--root", str(tmp_path / "root"), "--manifest", str(manifest), "--download", "toy"])
    assert rc == 2 and "sha256 mismatch" in capsys.readouterr().err


def test_hashing_a_large_file_shows_a_progress_bar(tmp_path, monkeypatch):
    """``sha256_file(progress=True)`` (used by ``geomdl datasets --verify``) asks for a terminal-only byte bar
    for files of at least PROGRESS_MIN_BYTES and for none below, with the same digest either way."""
    import hashlib

    from geomdl.datasets import download as dl

    calls = []
    real = dl._progress
    monkeypatch.setattr(dl, "_progress", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    monkeypatch.setattr(dl, "PROGRESS_MIN_BYTES", 1000)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"x" * 999)
    big.write_bytes(bytes(range(256)) * 40)
    assert dl.sha256_file(big, progress=True) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert dl.sha256_file(small, progress=True) == hashlib.sha256(small.read_bytes()).hexdigest()
    assert dl.sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()
    enabled = [a[3] for a, _ in calls]
    assert enabled == [True, False, False]
    assert calls[0][0][0] == 10240 and calls[0][1] == {"tty_only": True}
    entry = dl.ManifestEntry("d", "big.bin", 10240, hashlib.sha256(big.read_bytes()).hexdigest(), "file:///none")
    calls.clear()
    assert dl.status(entry, tmp_path, check_hash=True, progress=True) == "verified"
    assert [a[3] for a, _ in calls] == [True]


def test_two_fetches_of_one_file_take_turns(tmp_path, monkeypatch):
    """Two fetches of the same file at once (DDP ranks, sweep jobs, threads) share ``dest.part``. Forced
    interleaving: the first has written part of the file when the second starts. Unlocked, the second resumed
    the first's partial file, completed it and renamed it onto ``dest``, and the first then failed
    (FileNotFoundError: its ``.part`` was gone). With the lock the second waits, then finds ``dest`` and
    verifies it; both return ``dest``."""
    import time

    fcntl = pytest.importorskip("fcntl")
    from geomdl.datasets import download as dl

    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    dest = tmp_path / "root" / "data.bin"
    main = threading.current_thread()
    second_waits = threading.Event()
    outcome = {}

    def second():
        try:
            outcome["second"] = fetch(src.as_uri(), dest, len(PAYLOAD), SHA, progress=False)
        except BaseException as exc:  # reported by the assertion below
            outcome["second"] = exc

    real_flock = fcntl.flock

    def flock(fd, op):
        if threading.current_thread() is not main:
            second_waits.set()  # about to block on the first fetch's lock
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    real_open = dl._open

    def slow_open(url, offset, timeout):
        stream, resumed = real_open(url, offset, timeout)
        if threading.current_thread() is not main:
            return stream, resumed
        reads = []

        class Stream:
            def read(self, n):
                if len(reads) == 1:  # 300000 bytes are in the first fetch's .part: start the second fetch
                    thread.start()
                    deadline = time.monotonic() + 30
                    while not second_waits.is_set() and thread.is_alive() and time.monotonic() < deadline:
                        time.sleep(0.005)
                reads.append(n)
                return stream.read(min(n, 300_000))

            def close(self):
                stream.close()

        return Stream(), resumed

    monkeypatch.setattr(dl, "_open", slow_open)
    thread = threading.Thread(target=second)
    first = fetch(src.as_uri(), dest, len(PAYLOAD), SHA, progress=False)
    thread.join(30)
    assert not thread.is_alive()
    assert first == dest and outcome["second"] == dest, outcome
    assert dest.read_bytes() == PAYLOAD and not dest.with_name("data.bin.part").exists()
