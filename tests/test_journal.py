"""The durable journal (``persist_dir``, issue #12): options, spill, restart, credentials,
fork, eviction, disk errors and power loss, each against a real local DevServer."""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer
from rudder_analytics.exceptions import ConfigurationError
from rudder_analytics.journal import fs as journal_fs
from rudder_analytics.journal import writer
from rudder_analytics.journal.inspect import inspect_dir

KEY = "jkey"
OUTAGE = {"upload_interval": 0.02, "retry_base_delay": 0.01, "retry_max_delay": 0.02,
          "max_retries": 100_000, "retry_deadline": 3600.0, "timeout": 2.0}


@pytest.fixture
def server() -> Iterator[DevServer]:
    with DevServer(write_keys=[KEY, "other"]) as dev:
        yield dev


def _ids(server: DevServer) -> set[str]:
    return {e["messageId"] for e in server.events()}


def _track(client: Client, prefix: str, n: int) -> None:
    for i in range(n):
        ok, _ = client.track("u", "e", {"i": i}, message_id=f"{prefix}-{i}")
        assert ok


def _leave_undelivered(server: DevServer, persist: Path, prefix: str, n: int,
                       key: str = KEY, **options: Any) -> None:
    """A client that could deliver nothing (outage) and stopped: its journal stays."""
    server.fail_fraction(1.0)
    client = Client(key, server.url, persist_dir=str(persist), max_queue_size=100,
                    **{**OUTAGE, **options})
    _track(client, prefix, n)
    client.shutdown(timeout=0.3)
    server.clear_faults()


def test_bad_directory_is_a_configuration_error(tmp_path: Path) -> None:
    """persist_dir that cannot hold files fails at construction, with the reason."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigurationError, match="cannot hold a journal"):
        Client(KEY, "http://127.0.0.1:9", persist_dir=str(blocker / "sub"))
    with pytest.raises(ConfigurationError, match="persist_fsync"):
        Client(KEY, "http://127.0.0.1:9", persist_dir=str(tmp_path), persist_fsync="often")


def test_environment_variable_sets_persist_dir(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """RUDDER_PERSIST_DIR turns the journal on."""
    monkeypatch.setenv("RUDDER_PERSIST_DIR", str(tmp_path / "env"))
    client = Client(KEY, "http://127.0.0.1:9", send=False)
    assert client.config.persist_dir == str(tmp_path / "env")


def test_default_has_no_journal_and_no_files(tmp_path: Path, server: DevServer) -> None:
    """Without persist_dir nothing is written and stats show zero persisted."""
    with Client(KEY, server.url, upload_interval=0.02) as client:
        client.track("u", "e")
        client.flush(5)
        assert client.stats()["persisted"] == 0


def test_outage_spills_to_disk_then_delivers_and_deletes(tmp_path: Path,
                                                        server: DevServer) -> None:
    """Beyond the in-memory queue events go to disk (not queue_full), come back in order
    of arrival when the data plane does, and the segments are deleted afterwards."""
    server.fail_fraction(1.0)
    client = Client(KEY, server.url, persist_dir=str(tmp_path), max_queue_size=100, **OUTAGE)
    _track(client, "s", 3000)
    assert client.stats()["dropped"]["queue_full"] == 0
    assert client.stats()["queue_depth"] <= 100
    server.clear_faults()
    assert server.wait_for_events(3000, timeout=20)
    client.shutdown(timeout=5)
    assert {f"s-{i}" for i in range(3000)} <= _ids(server)
    assert client.stats()["persisted"] == 3000
    assert not list(tmp_path.rglob("seg-*.log"))  # delivered means deleted
    assert not list(tmp_path.iterdir())


def test_restart_delivers_what_an_earlier_process_left(tmp_path: Path,
                                                      server: DevServer) -> None:
    """A new client with the same persist_dir delivers the old journal, same messageIds."""
    _leave_undelivered(server, tmp_path, "old", 500)
    assert sum(i.events for i in inspect_dir(str(tmp_path))) == 500
    assert not server.count()
    with Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02) as client:
        assert server.wait_for_events(500, timeout=10)
        client.flush(5)
    assert {f"old-{i}" for i in range(500)} <= _ids(server)
    assert client.stats()["recovered"] == 500
    assert not list(tmp_path.rglob("seg-*.log"))


def test_other_credentials_never_adopt(tmp_path: Path, server: DevServer) -> None:
    """A client with another write key leaves a journal of another key alone."""
    _leave_undelivered(server, tmp_path, "a", 200)
    with Client("other", server.url, persist_dir=str(tmp_path), upload_interval=0.02) as other:
        other.track("u", "e", message_id="b-0")
        other.flush(5)
    assert _ids(server) == {"b-0"}
    assert other.stats()["recovered"] == 0
    assert sum(i.events for i in inspect_dir(str(tmp_path))) == 200


def test_forked_child_gets_its_own_journal(tmp_path: Path, server: DevServer) -> None:
    """After fork the child journals into a directory of its own, never the parent's."""
    client = Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02)
    client.track("u", "e", message_id="parent")
    client.flush(5)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            client.track("u", "e", message_id="child")
            client.flush(5)
            dirs = sorted(p.name for p in tmp_path.iterdir())
            os.write(write, ",".join(dirs).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    seen = os.read(read, 10_000).decode().split(",")
    os.close(read)
    assert status == 0
    assert any(f"j-{pid}-" in name for name in seen)
    assert any(f"j-{os.getpid()}-" in name for name in seen)
    assert {"parent", "child"} <= _ids(server)
    mine = [i for i in inspect_dir(str(tmp_path)) if i.pid == os.getpid()]
    assert mine and mine[0].owner_alive  # the child did not release the parent's lock
    client.shutdown(timeout=5)


def test_eviction_keeps_disk_bounded_and_counts(tmp_path: Path, server: DevServer) -> None:
    """Past persist_max_bytes the oldest whole segment goes, counted as evicted."""
    server.fail_fraction(1.0)
    limit = 1024 * 1024
    client = Client(KEY, server.url, persist_dir=str(tmp_path), max_queue_size=100,
                    persist_max_bytes=limit, **OUTAGE)
    done = threading.Event()
    writer_seen: list[int] = []
    writer.on_commit = lambda n: (writer_seen.append(n), n >= 20_000 and done.set())
    try:
        _track(client, "x", 20_000)
        assert done.wait(10)
        client.flush(0.5)  # a few more commits: eviction runs after each
        files = [p.stat() for p in tmp_path.rglob("*") if p.is_file()]
        assert sum(f.st_size for f in files) <= limit + 256 * 1024
        # and the blocks on disk: a reservation never runs past its segment's end
        assert sum(f.st_blocks * 512 for f in files) <= limit + 256 * 1024
        assert client.stats()["dropped"]["evicted"] > 0
        assert client.stats()["queue_depth"] <= 100
    finally:
        writer.on_commit = None
        client.shutdown(timeout=0.3)


class FullDisk(journal_fs.FileSystem):
    """A file system whose writes fail with ENOSPC while ``full`` is set."""

    full = threading.Event()

    def write(self, fd: int, *parts: bytes) -> None:
        if self.full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write(fd, *parts)


def test_disk_full_falls_back_to_memory_and_resumes(
        tmp_path: Path, server: DevServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """ENOSPC never reaches the caller: events go on in memory, one line says so, and
    journaling resumes when the disk has room again."""
    monkeypatch.setattr(writer, "FileSystem", FullDisk)
    monkeypatch.setattr(writer, "RETRY_AFTER_ERROR", 0.05)
    FullDisk.full.set()
    committed = threading.Event()
    all_seen = threading.Event()
    monkeypatch.setattr(writer, "on_commit",
                        lambda n: (committed.set(), n >= 200 and all_seen.set()))
    with Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02) as client:
        _track(client, "f", 200)
        assert client.flush(5)
        assert all_seen.wait(5)  # the journal thread has been through all 200
        assert client.stats()["persisted"] == 0
        assert client.stats()["not_persisted"] == 200  # counted, and still delivered
        FullDisk.full.clear()
        for i in range(200):  # one event per commit until a write succeeds again
            committed.clear()
            client.track("u", "e", message_id=f"g-{i}")
            assert committed.wait(5)
            if client.stats()["persisted"]:
                break
        assert client.flush(5)
        assert client.stats()["persisted"] >= 1
        assert client.stats()["dropped_total"] == 0
    assert {f"f-{i}" for i in range(200)} <= _ids(server)
    lines = [r.getMessage() for r in caplog.records if "journal" in r.getMessage()]
    assert sum("disk full" in line for line in lines) == 1
    assert any("writing again" in line for line in lines)


class LossyDisk(journal_fs.FileSystem):
    """Simulates power loss: remembers each file's synced length; ``power_off`` makes
    later writes vanish and cuts every file back to what was synced."""

    synced: dict[str, int] = {}
    paths: dict[int, str] = {}
    off = False

    def open_append(self, path: str) -> int:
        fd = super().open_append(path)
        self.paths[fd] = path
        self.synced.setdefault(path, 0)
        return fd

    def write(self, fd: int, *parts: bytes) -> None:
        if not LossyDisk.off:
            super().write(fd, *parts)

    def fsync(self, fd: int) -> None:
        if not LossyDisk.off:
            super().fsync(fd)
            self.synced[self.paths[fd]] = os.fstat(fd).st_size

    @classmethod
    def power_off(cls) -> None:
        cls.off = True
        for path, size in cls.synced.items():
            if os.path.exists(path):
                os.truncate(path, size)


def _after_power_loss(client: Client, persist: Path, server: DevServer,
                      monkeypatch: pytest.MonkeyPatch, expected: set[str]) -> None:
    """The powered-off client ends; a fresh one on the real disk delivers ``expected``."""
    client.shutdown(timeout=0.2)
    server.clear_faults()
    monkeypatch.setattr(writer, "FileSystem", journal_fs.FileSystem)
    with Client(KEY, server.url, persist_dir=str(persist), upload_interval=0.02) as again:
        assert server.wait_for_events(len(expected), timeout=10)
        again.flush(5)
    assert expected <= _ids(server)


@pytest.mark.parametrize("policy", ["always", "interval"])
def test_power_loss(tmp_path: Path, server: DevServer, monkeypatch: pytest.MonkeyPatch,
                    policy: str) -> None:
    """always: every committed event survives losing unsynced writes; interval: events
    committed more than a second before the loss survive."""
    LossyDisk.synced, LossyDisk.paths, LossyDisk.off = {}, {}, False
    monkeypatch.setattr(writer, "FileSystem", LossyDisk)
    server.fail_fraction(1.0)
    client = Client(KEY, server.url, persist_dir=str(tmp_path), persist_fsync=policy,
                    **OUTAGE)
    committed = threading.Event()
    writer.on_commit = lambda n: n >= 300 and committed.set()
    try:
        _track(client, "p", 300)
        assert committed.wait(5)
        if policy == "interval":
            synced = threading.Event()
            original = LossyDisk.fsync
            monkeypatch.setattr(LossyDisk, "fsync",
                                lambda self, fd: (original(self, fd), synced.set())[0])
            assert synced.wait(3)  # the once-a-second sync covered them
            _track(client, "late", 50)
        LossyDisk.power_off()
    finally:
        writer.on_commit = None
    _after_power_loss(client, tmp_path, server, monkeypatch, {f"p-{i}" for i in range(300)})


def test_unknown_format_is_set_aside_with_a_warning(
        tmp_path: Path, server: DevServer, caplog: pytest.LogCaptureFixture) -> None:
    """A journal of another format version is renamed out of the way, said once, and the
    client starts and delivers as usual."""
    future = tmp_path / "j-1-future"
    future.mkdir()
    (future / "meta.json").write_text('{"format": 99}')
    (future / "seg-00000001.log").write_bytes(b"RSJ\x63" + b"\0" * 100)
    with Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02) as client:
        client.track("u", "e", message_id="ok")
        assert client.flush(5)
        client.flush(0.3)  # the journal thread's first cycle has run
    assert not future.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("set-aside-")]
    assert any("format 99" in r.getMessage() for r in caplog.records)
    assert _ids(server) == {"ok"}


def test_torn_tail_is_truncated_and_the_rest_delivered(tmp_path: Path,
                                                       server: DevServer) -> None:
    """A segment cut in the middle of its last frame (a group commit that did not
    finish) loses only that commit's events; the earlier commits are delivered."""
    committed: list[int] = []
    seen = threading.Condition()

    def on_commit(n: int) -> None:
        with seen:
            committed.append(n)
            seen.notify_all()

    writer.on_commit = on_commit
    try:
        server.fail_fraction(1.0)
        client = Client(KEY, server.url, persist_dir=str(tmp_path), max_queue_size=100,
                        **OUTAGE)
        _track(client, "t", 60)
        with seen:
            assert seen.wait_for(lambda: committed and committed[-1] >= 60, timeout=10)
        for i in range(60, 100):
            client.track("u", "e", message_id=f"t-{i}")
        with seen:
            assert seen.wait_for(lambda: committed[-1] >= 100, timeout=10)
        client.shutdown(timeout=0.3)
        server.clear_faults()
    finally:
        writer.on_commit = None
    segment = next(tmp_path.rglob("seg-*.log"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])
    with Client(KEY, server.url, persist_dir=str(tmp_path), upload_interval=0.02) as client:
        assert server.wait_for_events(60, timeout=10)
        client.flush(5)
    ids = _ids(server)
    kept = len(ids)
    assert 60 <= kept < 100  # the torn frame's events, at least one, are gone
    assert ids == {f"t-{i}" for i in range(kept)}
    assert client.stats()["dropped"]["corrupt"] == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fallocate(2) is Linux's")
def test_preallocation_reserves_blocks_and_keeps_the_size(tmp_path: Path) -> None:
    """FileSystem.preallocate reserves real blocks past the end of an appended file,
    and readers (and the journal's scan) still see only what was written."""
    path = str(tmp_path / "seg.log")
    fs = journal_fs.FileSystem()
    fd = fs.open_append(path)
    try:
        fs.write(fd, b"x" * 100)
        if not fs.preallocate(fd, 100, 1 << 20):
            pytest.skip("this file system has no fallocate")
        fs.write(fd, b"y" * 100)
        stat = os.fstat(fd)
    finally:
        fs.close(fd)
    assert stat.st_size == 200
    assert stat.st_blocks * 512 >= 1 << 20
    assert fs.read(path) == b"x" * 100 + b"y" * 100


def test_power_loss_keeps_sealed_segments_after_the_interval_sync(
        tmp_path: Path, server: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """interval: a full (sealed) segment is not fsynced as it is sealed but by the next
    once-a-second sync, which covers every segment on disk: after it, losing unsynced
    writes loses none of the events in any of them."""
    LossyDisk.synced, LossyDisk.paths, LossyDisk.off = {}, {}, False
    monkeypatch.setattr(writer, "FileSystem", LossyDisk)
    server.fail_fraction(1.0)
    client = Client(KEY, server.url, persist_dir=str(tmp_path), persist_max_bytes=1 << 20,
                    **OUTAGE)  # 64 KiB segments
    committed = threading.Event()
    all_synced = threading.Event()

    def segments() -> list[Path]:
        return list(tmp_path.glob("*/seg-*.log"))

    def fsync(self: LossyDisk, fd: int) -> None:
        original(self, fd)
        if committed.is_set() and all(
                LossyDisk.synced.get(str(p)) == p.stat().st_size for p in segments()):
            all_synced.set()

    original = LossyDisk.fsync
    try:
        for chunk in range(6):  # one group commit each: each fills a 64 KiB segment
            done = threading.Event()
            writer.on_commit = (lambda n, want=250 * (chunk + 1), done=done:
                                n >= want and done.set())
            _track(client, f"p{chunk}", 250)
            assert done.wait(5)
        committed.set()
        assert len(segments()) >= 4  # several sealed segments, not one
        monkeypatch.setattr(LossyDisk, "fsync", fsync)
        assert all_synced.wait(5)
        LossyDisk.power_off()
    finally:
        writer.on_commit = None
    _after_power_loss(client, tmp_path, server, monkeypatch,
                      {f"p{c}-{i}" for c in range(6) for i in range(250)})


class ReservingDisk(journal_fs.FileSystem):
    """Records whether any reservation took (the file system has fallocate)."""

    reserved = threading.Event()

    def preallocate(self, fd: int, offset: int, length: int) -> bool:
        done = super().preallocate(fd, offset, length)
        if done:
            self.reserved.set()
        return done


def test_disk_reserved_under_load_is_given_back_when_idle(
        tmp_path: Path, server: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast caller makes large commits, which reserve disk ahead of the writes; once
    the journal is idle (here in an outage, the events still undelivered) the blocks on
    disk are back to about what the files hold."""
    ReservingDisk.reserved.clear()
    monkeypatch.setattr(writer, "FileSystem", ReservingDisk)
    server.fail_fraction(1.0)
    client = Client(KEY, server.url, persist_dir=str(tmp_path), max_queue_size=50_000,
                    **OUTAGE)
    committed = threading.Event()
    writer.on_commit = lambda n: n >= 20_000 and committed.set()
    try:
        _track(client, "r", 20_000)
        assert committed.wait(10)
        if not ReservingDisk.reserved.is_set():
            pytest.skip("this file system has no fallocate")

        def reserved() -> int:
            return sum(max(0, p.stat().st_blocks * 512 - p.stat().st_size)
                       for p in tmp_path.rglob("seg-*.log"))

        deadline = time.monotonic() + 5
        while reserved() > 64 * 1024 and time.monotonic() < deadline:
            time.sleep(0.02)  # the journal goes idle within a commit interval or two
        assert reserved() <= 64 * 1024
    finally:
        writer.on_commit = None
        client.shutdown(timeout=0.2)
