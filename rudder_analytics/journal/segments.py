"""One segment file and its acknowledgements: sizes, live records, what to read back."""

from __future__ import annotations

import contextlib
import os
from typing import Optional

from .format import HEADER, decode_acks, encode_ack, scan, version_of
from .fs import FileSystem

__all__ = ["Segment", "ack_ranges"]


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


class Segment:
    """A segment's bookkeeping, kept by the journal thread only (no lock).

    ``live`` counts records neither acknowledged nor evicted. ``unread`` lists
    byte ranges holding records that are on disk only (spilled, or left by a dead
    process) and must be read back into the queue.
    """

    size: int
    records: int
    live: int
    sealed: bool
    deleted: bool
    loaded: bool

    def __init__(self, path: str, fs: FileSystem) -> None:
        self.path = path
        self.fs = fs
        self.size = 0
        self.records = 0
        self.live = 0
        self.unread: list[list[int]] = []
        self.acked: set[int] = set()
        """Sequence numbers acknowledged by an earlier owner (recovered segments only)."""
        self.fd: Optional[int] = None
        self.sealed = False
        self.ack_fd: Optional[int] = None
        self.in_memory = 0
        """Records whose event is in the queue or in flight now (not on disk only)."""
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

    def append(self, blob: bytes, count: int) -> int:
        """Write ``count`` records at once; returns the offset they start at."""
        assert self.fd is not None
        offset = self.size
        self.fs.write(self.fd, blob)
        self.size += len(blob)
        self.records += count
        self.live += count
        return offset

    def mark_unread(self, start: int, end: int) -> None:
        """Records in ``[start, end)`` are on disk only: read them back later."""
        if self.unread and self.unread[-1][1] == start:
            self.unread[-1][1] = end
        else:
            self.unread.append([start, end])

    def acknowledge(self, seqs: list[int]) -> None:
        """Records delivered or dropped: append their ranges to the ack file."""
        self.live -= len(seqs)
        if self.ack_fd is None:
            self.ack_fd = self.fs.open_append(self.ack_path)
        self.fs.write(self.ack_fd, b"".join(encode_ack(a, b) for a, b in ack_ranges(seqs)))

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
        """A segment left by a dead process: (unread records, torn/corrupt count).

        Returns ``(-1, 0)`` when the file is not of our format (it is set aside).
        A torn tail is truncated; records are counted, acks loaded.
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
        live = sum(1 for r in result.records if r.seq not in self.acked)
        self.size = len(data)
        self.records = self.live = live
        self.sealed = True
        if live:
            self.unread.append([len(HEADER), len(data)])
        return live, result.corrupt


def segment_index(name: str) -> Optional[int]:
    """The number in ``seg-<n>.log``, or None for any other name."""
    if not (name.startswith("seg-") and name.endswith(".log")):
        return None
    digits = name[4:-4]
    return int(digits) if digits.isdigit() else None


def segment_name(directory: str, index: int) -> str:
    return os.path.join(directory, f"seg-{index:08d}.log")
