"""When the journal's segment files are synced (journal/files.py), on an in-memory
file system and a fake clock: a sealed segment waits for the periodic sync, so one
settled and deleted before it is never written back."""

from __future__ import annotations

from typing import Any

import pytest

from rudder_analytics.journal.files import RESERVE_STEP, UNSYNCED_SEALED, SegmentFiles
from rudder_analytics.journal.format import encode_frame
from rudder_analytics.journal.fs import FileSystem
from rudder_analytics.journal.segments import Segment
from rudder_analytics.stats import Stats

from .fakes import FakeClock


class MemoryFS(FileSystem):
    """Files as byte strings; records which paths were fsynced."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.paths: dict[int, str] = {}
        self.synced: list[str] = []
        self.reserved: list[tuple[str, int, int]] = []
        self.truncated: list[tuple[str, int]] = []
        self._next_fd = 100

    def open_append(self, path: str) -> int:
        self._next_fd += 1
        self.paths[self._next_fd] = path
        self.data.setdefault(path, b"")
        return self._next_fd

    def write(self, fd: int, *parts: bytes) -> None:
        self.data[self.paths[fd]] += b"".join(parts)

    def fsync(self, fd: int) -> None:
        self.synced.append(self.paths[fd])

    def preallocate(self, fd: int, offset: int, length: int) -> bool:
        self.reserved.append((self.paths[fd], offset, length))
        return True

    def close(self, fd: int) -> None:
        del self.paths[fd]

    def truncate(self, path: str, size: int) -> None:
        self.truncated.append((path, size))
        self.data[path] = self.data[path][:size]

    def remove(self, path: str) -> None:
        self.data.pop(path, None)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _fill(files: SegmentFiles, first: int) -> None:
    """Write frames until the active segment is full (the next active() seals it)."""
    segment = files.active()
    while segment.size < 64 * 1024:
        events = [b'"n":%d}' % n + b"x" * 1000 for n in range(first, first + 10)]
        segment.append(encode_frame(first, events), first, list(events))
        first += 10
        files.dirty = True


def _settle_all(files: SegmentFiles, index: int) -> None:
    segment = files.own[index]
    segment.acknowledge([(segment.frames[0].first, segment.frames[-1].first + 9)],
                        segment.live)


def test_sealed_segment_settled_before_the_sync_is_never_synced(clock: FakeClock) -> None:
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, "interval", 1 << 20, Stats(), clock)
    _fill(files, 1)
    first = files.own[0]
    _fill(files, 10_000)  # active() sealed the first segment: no fsync for it yet
    assert first.sealed and fs.synced == []
    _settle_all(files, 0)
    files.delete_settled()
    assert first.deleted and first.path not in fs.data
    clock.now += 1.5
    files.sync()
    assert first.path not in fs.synced  # deleted before the sync: never written back
    assert fs.synced == [files.own[-1].path]


def test_sealed_segment_is_synced_and_closed_at_the_next_periodic_sync(
        clock: FakeClock) -> None:
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, "interval", 1 << 20, Stats(), clock)
    _fill(files, 1)
    first = files.own[0]
    _fill(files, 10_000)
    assert first.fd is not None  # kept open for the sync
    files.sync()
    assert fs.synced == []  # within the second since the last one
    clock.now += 1.5
    files.sync()
    assert first.path in fs.synced and first.fd is None
    assert files.own[-1].fd is not None  # the active segment stays open


def test_many_sealed_segments_are_synced_at_once(clock: FakeClock) -> None:
    """Small segments written fast never pile up open descriptors."""
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, "interval", 1 << 20, Stats(), clock)
    for n in range(UNSYNCED_SEALED + 2):
        _fill(files, 1 + n * 10_000)
    assert len(fs.synced) > 0
    assert sum(1 for s in files.own if s.sealed and s.fd is not None) <= UNSYNCED_SEALED


@pytest.mark.parametrize("policy", ["always", "never"])
def test_other_policies_close_sealed_segments_at_once(clock: FakeClock, policy: str) -> None:
    """"always" synced every commit already; "never" does not sync."""
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, policy, 1 << 20, Stats(), clock)
    _fill(files, 1)
    _fill(files, 10_000)
    assert files.own[0].sealed and files.own[0].fd is None
    assert fs.synced == []


def _frame(segment: Segment, first: int, events: int, size: int) -> None:
    data = [b'"n":%d}' % n + b"x" * size for n in range(first, first + events)]
    segment.append(encode_frame(first, data), first, list(data))


def test_disk_is_reserved_ahead_of_large_commits(clock: FakeClock) -> None:
    """A commit of at least RESERVE_FROM bytes reserves RESERVE_STEP ahead, never past
    where the segment will be sealed unless one write needs more, and again only when
    the writes reach the end of what is reserved; small commits reserve nothing."""
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, "interval", 16 << 20, Stats(), clock)  # 1 MiB segments
    segment = files.active()
    _frame(segment, 1, 10, 100)  # a small commit
    assert fs.reserved == []
    assert RESERVE_STEP > 1 << 20
    _frame(segment, 11, 70, 1000)  # a large one: reserves up to the seal
    offset = segment.frames[1].offset
    assert fs.reserved == [(segment.path, offset, (1 << 20) - offset)]
    while segment.size < 1 << 20:
        _frame(segment, segment.frames[-1].first + 70, 70, 1000)
    assert len(fs.reserved) == 2  # the write that crossed the end needed its own
    assert max(offset + length for _, offset, length in fs.reserved) == segment.size


def test_reservation_is_given_back_when_idle_and_at_close(clock: FakeClock) -> None:
    fs = MemoryFS()
    files = SegmentFiles("/j", fs, "interval", 16 << 20, Stats(), clock)
    segment = files.active()
    _frame(segment, 1, 70, 1000)
    files.release_reserved()  # the journal went idle
    assert fs.truncated == [(segment.path, segment.size)]
    files.release_reserved()  # nothing more to give back: no system call
    assert len(fs.truncated) == 1
    _frame(segment, 71, 70, 1000)  # busy again: reserves again
    assert len(fs.reserved) == 2
    files.close()
    assert fs.truncated[-1] == (segment.path, segment.size)  # left on disk: given back


def test_no_ctypes_means_no_reservation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python built without ctypes journals as before, reserving nothing."""
    import builtins

    from rudder_analytics.journal import fs as fs_module

    real_import = builtins.__import__

    def no_ctypes(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ctypes":
            raise ImportError("no ctypes here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ctypes)
    monkeypatch.setattr(fs_module, "_fallocate_state", "untried")
    monkeypatch.setattr(fs_module, "_fallocate", None)
    assert FileSystem().preallocate(-1, 0, 4096) is False
