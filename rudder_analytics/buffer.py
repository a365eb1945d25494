"""The bounded, thread-safe queue between callers and workers.

Bounded by events and by encoded bytes; a put never blocks: when either bound
is reached the new event is refused (drop-newest) and the caller counts it.
Each accepted event gets a sequence number, so that ``flush()`` can wait for
exactly the events enqueued before it was called.

One short lock guards the deque and the counters (~0.1 µs uncontended, see
benchmarks/README.md); producers wake the workers through an Event only when a
batch becomes possible (first event, or a full batch), not on every put.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["EventBuffer"]


class EventBuffer:
    """FIFO of encoded messages with event and byte bounds."""

    def __init__(self, max_events: int, max_bytes: int, wake_at: int) -> None:
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._wake_at = wake_at
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self.put_count = 0
        """Events ever accepted: the sequence number of the newest one."""
        self.take_count = 0
        """Events ever taken by workers (or discarded at shutdown)."""
        self.wake = threading.Event()
        """Set when workers have something to do: a batch is possible, a flush, a stop."""
        self.closed = False
        """Set by :meth:`drain` at shutdown: later puts are refused, not stranded."""

    def reset_after_fork(self) -> None:
        """In a forked child: an empty queue, new lock, new Event (the parent sends its own)."""
        self._reset()

    def put(self, message: bytes) -> bool:
        """Append ``message``; False (and nothing stored) if a bound is reached or closed."""
        size = len(message)
        with self._lock:
            items = self._items
            if (len(items) >= self._max_events or self._bytes + size > self._max_bytes
                    or self.closed):
                return False
            items.append(message)
            self._bytes += size
            self.put_count += 1
            depth = len(items)
        if (depth == 1 or depth >= self._wake_at) and not self.wake.is_set():
            self.wake.set()
        return True

    def take(self, max_events: int, max_bytes: int, overhead: int) -> tuple[list[bytes], int]:
        """Pop up to ``max_events`` messages whose body stays within ``max_bytes``.

        ``overhead`` is what each message adds to a body beyond its own length.
        The size check happens before a message is added; the first one always
        fits (messages are smaller than any body limit). Returns the messages and
        the sequence number of the last one.
        """
        batch: list[bytes] = []
        total = 0
        with self._lock:
            items = self._items
            while items and len(batch) < max_events:
                size = len(items[0]) + overhead
                if batch and total + size > max_bytes:
                    break
                message = items.popleft()
                batch.append(message)
                total += size
                self._bytes -= len(message)
            self.take_count += len(batch)
            return batch, self.take_count

    def put_front(self, messages: list[bytes]) -> bool:
        """Give back taken messages, at the head and in order (they were accepted already).

        Their sequence numbers are reused, so flush accounting stays exact. Bounds
        are not checked again. False (nothing stored) once the buffer is closed.
        """
        with self._lock:
            if self.closed:
                return False
            self._items.extendleft(reversed(messages))
            self._bytes += sum(len(m) for m in messages)
            self.take_count -= len(messages)
        self.wake.set()
        return True

    def drain(self) -> list[bytes]:
        """Close the buffer; remove and return everything queued (for shutdown accounting).

        Closing under the same lock means a put racing with shutdown is either
        drained here or refused, never left behind uncounted.
        """
        with self._lock:
            self.closed = True
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self.take_count += len(items)
            return items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def queued_bytes(self) -> int:
        """Encoded bytes waiting."""
        return self._bytes

    def sizes(self) -> tuple[int, int, int]:
        """``(put_count, depth, bytes)`` read together."""
        with self._lock:
            return self.put_count, len(self._items), self._bytes
