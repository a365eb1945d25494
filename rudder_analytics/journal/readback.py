"""Reading records that are on disk only back into the in-memory queue, a chunk at a time."""

from __future__ import annotations

from collections import deque
from typing import TypeVar

from .._sync.buffer import EventBuffer
from .format import scan
from .segments import Segment

__all__ = ["READ_CHUNK", "Entry", "drain", "read_back"]

READ_CHUNK = 1024 * 1024
"""Bytes read from a segment at once: memory stays bounded whatever the backlog."""

Entry = tuple[bytes, Segment, int, int]
"""Where a queued event lives: (message, segment, seq, offset of its record)."""


def read_back(segment: Segment, budget: int, buffer: EventBuffer,
              table: dict[int, Entry]) -> tuple[int, bool]:
    """Put up to ``budget`` of ``segment``'s unread records on ``buffer``, registering
    each in ``table`` first; returns (moved, the queue was full). Damage is skipped."""
    moved = 0
    while segment.unread and moved < budget:
        span = segment.unread[0]
        base = span[0]
        try:
            data = segment.fs.read(segment.path, base, min(span[1] - base, READ_CHUNK))
        except OSError:
            segment.unread.clear()
            break
        result = scan(data)
        span[0] = base + (result.good_end if result.records else max(len(data), 1))
        for record in result.records:
            if record.seq in segment.acked:
                continue
            message = bytes(record.payload)
            table[id(message)] = (message, segment, record.seq, base + record.offset)
            if not buffer.put(message):
                del table[id(message)]
                span[0] = base + record.offset
                return moved, True
            segment.in_memory += 1
            moved += 1
            if moved >= budget:
                span[0] = base + record.end
                break
        if span[0] >= span[1]:
            segment.unread.pop(0)
    return moved, False


T = TypeVar("T")


def drain(queue: deque[T]) -> list[T]:
    """Pop what is in ``queue`` now (appends from other threads go on meanwhile)."""
    pop = queue.popleft
    return [pop() for _ in range(len(queue))]
