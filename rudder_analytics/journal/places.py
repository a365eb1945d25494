"""Where each queued event lives in the journal, found again when it is settled.

A worker's batch is a run of consecutive queued events (the queue is FIFO), and
the caller appends each event to the journal just before queueing it. So the
events of a batch are found by identity in the frames that hold them, from where
the last batch ended: a few C-level comparisons per event, no hashing and no
table entry per event. Events read back from disk (spilled, or left by a dead
process) are few, and registered by ``id``.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Optional

from .segments import FrameRef

__all__ = ["Entry", "Places"]

Entry = tuple[FrameRef, int]
"""Where an event lives: its frame and its index in that frame."""
Group = tuple[FrameRef, range]
"""Consecutive events of one frame."""


class Places:
    """The journal thread's index of queued events (no lock: that thread only)."""

    def __init__(self) -> None:
        self._frames: deque[FrameRef] = deque()
        """Own frames with events in memory, oldest first."""
        self._read_back: dict[int, Entry] = {}
        self._unwritten: dict[int, bytes] = {}
        """Events whose write failed (memory only): held, so their ids stay unique."""
        self._hint: Optional[Entry] = None

    def added(self, frame: FrameRef) -> None:
        """A frame just written, its events queued (or about to be)."""
        if self._frames:
            self._frames[-1].next = frame
        self._frames.append(frame)

    def unwritten(self, events: list[bytes]) -> None:
        self._unwritten.update(zip(map(id, events), events))

    def read_back(self, message: bytes, frame: FrameRef, index: int) -> None:
        self._read_back[id(message)] = (frame, index)

    def newest(self, data: bytes) -> Optional[Entry]:
        """Where ``data``, appended lately, is: searched from the newest event back."""
        for frame in reversed(self._frames):
            messages = frame.messages
            if messages is None:
                continue
            for index in range(len(messages) - 1, -1, -1):
                if messages[index] is data:
                    return frame, index
        return None

    def settle(self, batch: list[bytes], written: bool) -> tuple[list[Group], list[bytes]]:
        """The runs of ``batch`` the journal holds, each in its frame (not settled yet:
        the caller settles them), and the events not found.

        ``written``: every event of ``batch`` was written, if ever, so one not found is
        skipped; otherwise the first one not found and all after it (they were queued
        after it, so appended after it) are returned as not written yet."""
        groups: list[Group] = []
        if self._read_back or self._unwritten:
            batch = self._irregular(batch, groups)
        done, total = 0, len(batch)
        while done < total:
            where = self._find(batch[done], written or done == 0)
            if where is None:
                if not written:
                    return groups, batch[done:]
                done += 1
                continue
            frame, index = where
            messages = frame.messages
            assert messages is not None
            take = min(total - done, frame.count - index)
            run = batch if take == total else batch[done:done + take]
            # list == compares identity first, in C; an equal copy is as good (_search)
            if run != messages[index:index + take]:
                take = 1  # interleaved with events from elsewhere: the matching prefix
                while take < len(run) and messages[index + take] is run[take]:
                    take += 1
            groups.append((frame, range(index, index + take)))
            done += take
            self._hint = (frame, index + take)
        return groups, []

    def trim(self) -> None:
        """Forget the oldest frames once nothing of theirs is in memory."""
        frames = self._frames
        while frames and frames[0].live <= 0:
            frames.popleft()

    def clear(self) -> None:
        self._frames.clear()
        self._read_back.clear()
        self._unwritten.clear()
        self._hint = None

    def _irregular(self, batch: list[bytes], groups: list[Group]) -> list[bytes]:
        """Take out read-back and unwritten events; the rest were appended."""
        rest: list[bytes] = []
        for message in batch:
            entry = self._read_back.pop(id(message), None)
            if entry is not None:
                groups.append((entry[0], range(entry[1], entry[1] + 1)))
            elif self._unwritten.pop(id(message), None) is None:
                rest.append(message)
        return rest

    def _find(self, message: bytes, search: bool) -> Optional[Entry]:
        """Where an appended ``message`` is: where the last run ended, as a rule.

        Unless ``search``, None at once when that is past the newest event: the
        message follows one just matched there, so it is not written yet."""
        hint = self._hint
        if hint is not None:
            frame, index = hint
            if index >= frame.count:
                if frame.next is None and not search:
                    return None
                if frame.next is not None:
                    frame, index = frame.next, 0
            messages = frame.messages
            if messages is not None and index < frame.count and messages[index] is message:
                return frame, index
            found = _search(message, frame, index)  # after a batch another worker holds
            if found is not None:
                return found
        for frame in self._frames:  # before it: an older batch settled late
            found = _search(message, frame, 0, follow=False)
            if found is not None:
                return found
        return None


def _search(message: bytes, frame: Optional[FrameRef], start: int,
            follow: bool = True) -> Optional[Entry]:
    """``message`` in ``frame`` from ``start`` (and the frames after it, if ``follow``).

    ``list.index`` compares in C, identity first; an equal copy (the same bytes
    tracked twice) is as good as the event itself."""
    while frame is not None:
        messages = frame.messages
        if messages:
            with contextlib.suppress(ValueError):
                return frame, messages.index(message, start)
        if not follow:
            return None
        frame, start = frame.next, 0
    return None
