"""The segment files a journal holds: its own (the newest one active) and those it
adopted from dead processes. Creating, sealing, syncing, evicting and deleting them,
on the journal thread only."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Callable

from ..stats import DropReason, Stats
from .format import HEADER
from .fs import FileSystem
from .recovery import Adopted, load_segment
from .segments import Segment, segment_name
from .store import release

__all__ = ["SegmentFiles"]

SMALLEST_DELETED = 64 * 1024
"""A settled active segment is deleted (and a new one started) only past this size."""
RESERVE_STEP = 4 * 1024 * 1024
"""Disk reserved ahead of an active segment's writes at a time (see FileSystem.preallocate),
by commits of at least RESERVE_FROM bytes (a caller sending fast), and given back when
the journal goes idle."""
RESERVE_FROM = 64 * 1024
UNSYNCED_SEALED = 16
"""Sealed segments left for the periodic sync, at most; one more syncs them all now."""


class SegmentFiles:
    """A journal's segments, oldest first; see the module docstring."""

    dirty: bool
    """Written since the last sync."""

    def __init__(self, path: str, fs: FileSystem, fsync: str, max_bytes: int,
                 stats: Stats, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.fs = fs
        self._fsync = fsync
        self._max_bytes = max_bytes
        self._segment_max = max(64 * 1024, min(8 * 1024 * 1024, max_bytes // 16))
        self._stats = stats
        self.own: list[Segment] = []
        self.adopted: list[Adopted] = []
        self._next_index = 1
        self.dirty = False
        self._clock = clock
        self._last_sync = clock()

    def all(self) -> list[Segment]:
        """Adopted segments first (they are older), then our own."""
        return [s for adopted in self.adopted for s in adopted.segments] + self.own

    def is_adopted(self, segment: Segment) -> bool:
        return any(segment in adopted.segments for adopted in self.adopted)

    def active(self) -> Segment:
        """The segment to append to: a new one when the last is sealed or full."""
        segment = self.own[-1] if self.own else None
        if segment is None or segment.sealed or segment.size >= self._segment_max:
            if segment is not None and not segment.sealed:
                self.seal(segment)
            segment = Segment(segment_name(self.path, self._next_index), self.fs,
                              RESERVE_STEP, self._segment_max, RESERVE_FROM)
            self._next_index += 1
            segment.create()
            self.own.append(segment)
        return segment

    def release_reserved(self) -> None:
        """Give back the disk the active segment reserved past its data (the journal is
        idle; the next large commit reserves again)."""
        if self.own:
            self.own[-1].release_reserved()

    def undo_partial(self) -> None:
        """A write failed: cut the active segment back to its last whole frame."""
        segment = self.own[-1] if self.own else None
        if segment is not None and segment.fd is not None:
            try:
                self.fs.truncate(segment.path, segment.size)
            except OSError:
                segment.sealed = True  # cannot undo: start a fresh segment next time

    def seal(self, segment: Segment) -> None:
        """No more frames go to ``segment``. Under "interval" its descriptor stays open
        until the next periodic sync, which makes it durable (most segments are settled
        and deleted before then, and never written back at all); under "always" every
        commit was synced already."""
        segment.sealed = True
        if segment.fd is None:
            return
        if self._fsync != "interval" or not self.dirty:
            self.fs.close(segment.fd)
            segment.fd = None
            return
        waiting = sum(1 for s in self.own if s.sealed and s.fd is not None)
        if waiting > UNSYNCED_SEALED:  # small segments, written fast: no pile of fds
            self.sync(now=True)

    def sync(self, now: bool = False) -> None:
        """fsync what was written, as ``persist_fsync`` says (``now``: whatever it says
        but "never")."""
        if not self.dirty or self._fsync == "never":
            return
        at = self._clock()
        if self._fsync == "interval" and not now and at - self._last_sync < 1.0:
            return
        for segment in self.all():
            if not segment.deleted:
                with contextlib.suppress(OSError):
                    segment.sync()
                if segment.sealed and segment.fd is not None:
                    with contextlib.suppress(OSError):
                        self.fs.close(segment.fd)
                    segment.fd = None
        self.dirty = False
        self._last_sync = at

    def evict(self) -> None:
        """Past ``persist_max_bytes``: remove the oldest whole sealed segment, counted."""
        while True:
            segments = [s for s in self.all() if not s.deleted]
            if sum(s.size for s in segments) <= self._max_bytes:
                return
            victim = next((s for s in segments if s.sealed), None)
            if victim is None:
                if segments and segments[-1].size > len(HEADER):
                    self.seal(segments[-1])
                    continue
                return
            if not victim.loaded:
                load_segment(victim, self._stats)
            lost = max(0, victim.live - victim.in_memory)
            victim.live = 0
            victim.unread.clear()
            victim.delete()
            if lost:
                self._stats.add_dropped(DropReason.EVICTED, lost, enqueued=False,
                                        cause=f"persist_max_bytes={self._max_bytes}")

    def delete_settled(self) -> None:
        """Delete segments whose every event is delivered or dropped."""
        for segment in self.all():
            if segment.deleted or segment.live > 0 or segment.unread:
                continue
            if not segment.sealed:
                if segment.size < SMALLEST_DELETED:
                    continue
                self.seal(segment)
            segment.delete()
        self.own = [s for s in self.own if not s.deleted]
        for adopted in list(self.adopted):
            adopted.segments = [s for s in adopted.segments if not s.deleted]
            if not adopted.segments:
                release(adopted.path, adopted.lock_fd, remove=True)
                self.adopted.remove(adopted)

    def close(self) -> bool:
        """Sync and close every file, delete settled own segments (the active one too),
        release adopted journals; True when nothing of ours is left on disk."""
        for segment in self.all():
            if not segment.deleted and self._fsync != "never":
                with contextlib.suppress(OSError):
                    segment.sync()
            segment.close()
        for segment in self.own:
            if not segment.deleted and segment.live <= 0 and not segment.unread:
                segment.delete()
            segment.release_reserved()
        for adopted in self.adopted:
            release(adopted.path, adopted.lock_fd, remove=False)
        self.adopted = []
        return not [s for s in self.own if not s.deleted]

    def forget_after_fork(self) -> None:
        """In a forked child: drop inherited descriptors without unlocking or touching
        the parent's files."""
        for segment in self.all():
            segment.close()  # closing a descriptor in the child leaves the parent's alone
        for adopted in self.adopted:
            with contextlib.suppress(OSError):
                os.close(adopted.lock_fd)
        self.adopted = []
        self.own = []
