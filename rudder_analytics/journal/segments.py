"""One segment file and its acknowledgements: sizes, frames, live events, what to read back."""

from __future__ import annotations

import contextlib
import os
from bisect import bisect_right
from collections.abc import Sequence
from typing import Optional

from .format import HEADER, decode_acks, encode_ack, scan, version_of
from .fs import FileSystem

__all__ = ["FrameRef", "Segment", "ack_ranges"]


def ack_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted sequence numbers folded into ``(first, last)`` runs."""
    seqs = sorted(seqs)
    if seqs and seqs[-1] - seqs[0] + 1 == len(seqs) == len(set(seqs)):
        return [(seqs[0], seqs[-1])]  # the usual case: one contiguous batch
    runs: list[tuple[int, int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


class FrameRef:
    """One frame of a segment: where it lies, and which of its events are in memory.

    ``messages`` holds the events that are queued or in flight (None where an event
    is settled or on disk only); holding them keeps each one's ``id()`` unique while
    the journal's table maps it here. ``live`` counts them.
    """

    __slots__ = ("count", "first", "live", "messages", "next", "offset", "segment", "size")

    segment: Segment
    first: int
    count: int
    offset: int
    size: int
    messages: Optional[list[Optional[bytes]]]
    live: int
    next: Optional[FrameRef]

    def __init__(self, segment: Segment, first: int, count: int, offset: int, size: int,
                 messages: Optional[list[Optional[bytes]]]) -> None:
        self.segment = segment
        self.first = first
        self.count = count
        self.offset = offset
        self.size = size
        self.messages = messages
        self.live = 0 if messages is None else count
        self.next = None  # the frame written after this one (own frames only)

    def settle(self, indexes: Sequence[int]) -> None:
        """Events at ``indexes`` left memory (delivered, dropped, spilled)."""
        self.live -= len(indexes)
        self.segment.in_memory -= len(indexes)
        messages = self.messages
        if messages is None:
            return
        if self.live <= 0:
            self.messages = None
        elif indexes[-1] - indexes[0] + 1 == len(indexes):
            messages[indexes[0]:indexes[-1] + 1] = [None] * len(indexes)
        else:
            for index in indexes:
                messages[index] = None

    def hold(self, index: int, message: bytes) -> None:
        """An event read back into the queue from disk."""
        if self.messages is None:
            self.messages = [None] * self.count
        self.messages[index] = message
        self.live += 1
        self.segment.in_memory += 1


class Segment:
    """A segment's bookkeeping, kept by the journal thread only (no lock).

    ``live`` counts events neither acknowledged nor evicted; ``in_memory`` those of
    them that are queued or in flight. ``unread`` lists ``[first, last]`` runs of
    sequence numbers that are on disk only (spilled, or left by a dead process)
    and must be read back into the queue.
    """

    size: int
    records: int
    live: int
    in_memory: int
    sealed: bool
    deleted: bool
    loaded: bool

    def __init__(self, path: str, fs: FileSystem, reserve_step: int = 0,
                 reserve_end: int = 0, reserve_from: int = 0) -> None:
        self.path = path
        self.fs = fs
        self.size = 0
        self._reserve_step = reserve_step
        """Bytes of disk reserved ahead of the writes at a time (0: none), up to
        ``reserve_end`` (where the segment will be sealed) unless one write needs more."""
        self._reserve_end = reserve_end
        self._reserve_from = reserve_from
        """Only a frame of at least this many bytes makes a reservation."""
        self._reserved = 0
        self.records = 0
        self.live = 0
        self.frames: list[FrameRef] = []
        self._firsts: list[int] = []
        self.unread: list[list[int]] = []
        self.acked: set[int] = set()
        """Sequence numbers acknowledged by an earlier owner (recovered segments only)."""
        self.fd: Optional[int] = None
        self.sealed = False
        self.ack_fd: Optional[int] = None
        self.in_memory = 0
        self.deleted = False
        self.loaded = True
        """False for an adopted segment not read yet (see :meth:`defer_load`)."""

    @property
    def ack_path(self) -> str:
        return self.path[:-4] + ".ack"

    # --- writing ---------------------------------------------------------------------

    def create(self) -> None:
        fd = self.fs.open_append(self.path)
        try:
            self.fs.write(fd, HEADER)
        except OSError:
            self.fs.close(fd)
            self.fs.remove(self.path)
            raise
        self.fd = fd
        self.size = len(HEADER)

    def append(self, parts: tuple[bytes, ...], first: int,
               messages: list[Optional[bytes]]) -> FrameRef:
        """Write one frame (``parts``) holding ``messages``; returns its bookkeeping."""
        assert self.fd is not None
        size = sum(map(len, parts))
        if (self.size + size > self._reserved and self._reserve_step
                and size >= self._reserve_from):
            ahead = max(size, min(self._reserve_step, self._reserve_end - self.size))
            self._reserved = self.size + ahead
            self.fs.preallocate(self.fd, self.size, ahead)
        self.fs.write(self.fd, *parts)
        frame = self._add(first, len(messages), self.size, size, messages)
        self.size += size
        self.in_memory += frame.count
        return frame

    def _add(self, first: int, count: int, offset: int, size: int,
             messages: Optional[list[Optional[bytes]]]) -> FrameRef:
        frame = FrameRef(self, first, count, offset, size, messages)
        self.frames.append(frame)
        self._firsts.append(first)
        self.records += count
        self.live += count
        return frame

    def frame_of(self, seq: int) -> Optional[FrameRef]:
        """The frame holding sequence number ``seq``, if any."""
        at = bisect_right(self._firsts, seq) - 1
        if at < 0:
            return None
        frame = self.frames[at]
        return frame if seq < frame.first + frame.count else None

    def mark_unread(self, seq: int) -> None:
        """The event ``seq`` is on disk only: read it back later."""
        if self.unread and self.unread[-1][1] == seq - 1:
            self.unread[-1][1] = seq
        else:
            self.unread.append([seq, seq])

    def acknowledge(self, ranges: list[tuple[int, int]], count: int) -> None:
        """``count`` events in ``ranges`` delivered or dropped: append to the ack file."""
        self.live -= count
        if self.ack_fd is None:
            self.ack_fd = self.fs.open_append(self.ack_path)
        self.fs.write(self.ack_fd, b"".join(encode_ack(a, b) for a, b in ranges))

    def release_reserved(self) -> None:
        """Give back disk reserved past the data (an idle journal, a segment left on
        disk at close)."""
        if self._reserved > self.size and not self.deleted:
            with contextlib.suppress(OSError):
                self.fs.truncate(self.path, self.size)
            self._reserved = 0

    def sync(self) -> None:
        for fd in (self.fd, self.ack_fd):
            if fd is not None:
                self.fs.fsync(fd)

    def close(self) -> None:
        for fd in (self.fd, self.ack_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    self.fs.close(fd)
        self.fd = self.ack_fd = None

    def delete(self) -> None:
        self.deleted = True
        self.close()
        self.fs.remove(self.path)
        self.fs.remove(self.ack_path)

    # --- reading back ----------------------------------------------------------------

    def defer_load(self, size: int) -> None:
        """An adopted segment, read only when its turn comes (start-up reads nothing)."""
        self.loaded = False
        self.size = size
        self.sealed = True
        self.live = 1  # unknown until loaded: never deleted unread

    def load(self) -> tuple[int, int]:
        """A segment left by a dead process: (unread events, corrupt count).

        Returns ``(-1, 0)`` when the file is not of our format (it is set aside).
        A torn tail is truncated; frames are indexed (their bodies are read again
        when their turn comes), acks loaded.
        """
        self.loaded = True
        self.live = 0
        data = self.fs.read(self.path)
        if version_of(data[:len(HEADER)]) != HEADER[3]:
            return -1, 0
        try:
            acks = self.fs.read(self.ack_path)
        except FileNotFoundError:
            acks = b""
        for first, last in decode_acks(acks):
            if last - first < 10_000_000:
                self.acked.update(range(first, last + 1))
        result = scan(data, len(HEADER))
        if result.good_end < len(data) and not result.corrupt:
            with contextlib.suppress(OSError):
                self.fs.truncate(self.path, result.good_end)
        acked = self.acked
        for found in result.frames:
            self._add(found.first, found.events, found.offset, found.end - found.offset, None)
            last = found.first + found.events - 1
            if self.unread and self.unread[-1][1] == found.first - 1:
                self.unread[-1][1] = last
            else:
                self.unread.append([found.first, last])
        self.live = self.records = self.records - sum(
            1 for f in result.frames for s in range(f.first, f.first + f.events) if s in acked)
        self.size = len(data)
        self.sealed = True
        if not self.live:
            self.unread.clear()
        return self.live, result.corrupt


def segment_index(name: str) -> Optional[int]:
    """The number in ``seg-<n>.log``, or None for any other name."""
    if not (name.startswith("seg-") and name.endswith(".log")):
        return None
    digits = name[4:-4]
    return int(digits) if digits.isdigit() else None


def segment_name(directory: str, index: int) -> str:
    return os.path.join(directory, f"seg-{index:08d}.log")
