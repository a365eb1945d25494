"""Reading events that are on disk only back into the in-memory queue, a frame at a time."""

from __future__ import annotations

from collections import deque
from typing import TypeVar

from .._sync.buffer import EventBuffer
from .format import payloads, scan
from .places import Places
from .segments import FrameRef, Segment

__all__ = ["drain", "read_back"]


def read_back(segment: Segment, budget: int, buffer: EventBuffer,
              places: Places) -> tuple[int, bool, int]:
    """Put up to ``budget`` of ``segment``'s unread events on ``buffer``, registering
    each in ``places``; returns (moved, the queue was full, events found damaged)."""
    moved = damaged = 0
    while segment.unread and moved < budget:
        run = segment.unread[0]
        frame = segment.frame_of(run[0])
        events = _read_frame(segment, frame) if frame is not None else None
        if frame is None or events is None:  # unreadable now, or damaged since
            lost = run[1] - run[0] + 1 if frame is None else _skip(run, frame)
            damaged += lost
            segment.live -= lost
            if run[0] > run[1]:
                segment.unread.pop(0)
            continue
        last = min(run[1], frame.first + frame.count - 1)
        while run[0] <= last and moved < budget:
            seq = run[0]
            if seq not in segment.acked:
                message = events[seq - frame.first]
                if not buffer.put(message):
                    return moved, True, damaged
                places.read_back(message, frame, seq - frame.first)
                frame.hold(seq - frame.first, message)
                moved += 1
            else:
                segment.acked.discard(seq)
            run[0] = seq + 1
        if run[0] > run[1]:
            segment.unread.pop(0)
    return moved, False, damaged


def _skip(run: list[int], frame: FrameRef) -> int:
    """Skip the rest of ``frame`` in ``run``; returns how many events that was."""
    end = min(run[1], frame.first + frame.count - 1)
    skipped = end - run[0] + 1
    run[0] = end + 1
    return skipped


def _read_frame(segment: Segment, frame: FrameRef) -> list[bytes] | None:
    """The events of ``frame``, re-read and re-checked; None if that fails now."""
    try:
        data = segment.fs.read(segment.path, frame.offset, frame.size)
    except OSError:
        return None
    found = scan(data).frames
    if len(found) != 1 or found[0].first != frame.first or found[0].events != frame.count:
        return None
    return payloads(found[0])


T = TypeVar("T")


def drain(queue: deque[T]) -> list[T]:
    """Pop what is in ``queue`` now (appends from other threads go on meanwhile)."""
    pop = queue.popleft
    return [pop() for _ in range(len(queue))]
