"""The bounded, thread-safe queue between callers and workers.

Bounded by events and by encoded bytes. :meth:`EventBuffer.put` never blocks:
when either bound is reached the new event is refused (drop-newest) and the
caller counts it. :meth:`EventBuffer.put_wait` (``on_full="block"``) waits for
room up to a deadline first. Each accepted event gets a sequence number, so
that ``flush()`` can wait for exactly the events enqueued before it was called.

One short lock guards the deque and the counters (~0.1 µs uncontended, see
benchmarks/README.md); producers wake the workers through an Event only when a
batch becomes possible (first event, or a full batch), not on every put. A
take pops whole runs of messages in C, not one message per Python step.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from itertools import repeat, starmap

__all__ = ["EventBuffer"]

HAND_BACK_EVERY = 0.001
"""Seconds between two GIL hand-backs by the producers of a queue more than half full."""
HAND_BACK_FOR = 0.0001
"""Seconds one hand-back sleeps: long enough for a worker waiting for the GIL to take it."""
ACTIVE_WINDOW = 0.1
"""A worker that took a batch within this many seconds is draining (not in a retry wait)."""


class EventBuffer:
    """FIFO of encoded messages with event and byte bounds."""

    def __init__(self, max_events: int, max_bytes: int, wake_at: int) -> None:
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._wake_at = wake_at
        self._high_events = max_events // 2
        self._high_bytes = max_bytes // 2
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        """Notified when a take makes room, for the callers waiting in :meth:`put_wait`."""
        self._waiting = 0
        self._next_hand_back = 0.0
        self._last_take = 0.0
        self._items: deque[bytes] = deque()
        self._bytes = 0
        self.put_count: int = 0
        """Events ever accepted: the sequence number of the newest one."""
        self.take_count: int = 0
        """Events ever taken by workers (or discarded at shutdown)."""
        self.wake: threading.Event = threading.Event()
        """Set when workers have something to do: a batch is possible, a flush, a stop."""
        self.closed: bool = False
        """Set by :meth:`drain` at shutdown: later puts are refused, not stranded."""

    def reset_after_fork(self) -> None:
        """In a forked child: an empty queue, new lock, new Event (the parent sends its own)."""
        self._reset()

    def put(self, message: bytes) -> bool:
        """Append ``message``; False (and nothing stored) if a bound is reached or closed."""
        size = len(message)
        with self._lock:
            items = self._items
            queued = self._bytes + size  # attributes read once: this runs on every call
            depth = len(items) + 1
            if depth > self._max_events or queued > self._max_bytes or self.closed:
                return False
            items.append(message)
            self._bytes = queued
            self.put_count += 1
        if depth == 1 or depth >= self._wake_at:
            wake = self.wake
            if not wake.is_set():
                wake.set()
        if depth > self._high_events or queued > self._high_bytes:
            self._hand_back()
        return True

    def _hand_back(self) -> None:
        """More than half full while a worker drains: let it have the GIL for a moment.

        A worker whose request gave up the GIL (a send, a read, zlib) waits up to a
        whole switch interval (5 ms) to get it back from a busy producer; at one
        request per few hundred events that is what lets a tight producer loop
        outrun it and fill the queue. A short sleep here, at most once per
        ``HAND_BACK_EVERY``, hands the GIL over instead. Not while no worker is
        taking batches (a retry wait, a slow data plane): then it would help nobody.
        """
        now = time.monotonic()
        if now < self._next_hand_back or now - self._last_take > ACTIVE_WINDOW:
            return
        self._next_hand_back = now + HAND_BACK_EVERY
        time.sleep(HAND_BACK_FOR)

    def put_wait(self, message: bytes, deadline: float) -> bool:
        """:meth:`put`, waiting for room until ``deadline`` (monotonic) when a bound is
        reached; False (nothing stored) if there was none by then, or once closed."""
        if self.put(message):
            return True
        size = len(message)
        if size > self._max_bytes:
            return False  # would never fit
        with self._room:
            items = self._items
            while len(items) >= self._max_events or self._bytes + size > self._max_bytes:
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return False
                self.wake.set()  # the queue is full: the workers are busy, or must be
                self._waiting += 1
                try:
                    self._room.wait(remaining)
                finally:
                    self._waiting -= 1
            if self.closed:
                return False
            items.append(message)
            self._bytes += size
            self.put_count += 1
        if not self.wake.is_set():
            self.wake.set()
        return True

    def take(self, max_events: int, max_bytes: int, overhead: int) -> tuple[list[bytes], int]:
        """Pop up to ``max_events`` messages whose body stays within ``max_bytes``.

        ``overhead`` is what each message adds to a body beyond its own length.
        The size check happens before a message is added; the first one always
        fits (messages are smaller than any body limit): the result is the longest
        run from the head that fits. Returns the messages and the sequence number
        of the last one.
        """
        with self._lock:
            items = self._items
            count = min(len(items), max_events)
            if not count:
                return [], self.take_count
            if count == len(items) and self._bytes + overhead * count <= max_bytes:
                batch = list(items)  # all of it fits: one copy in C
                items.clear()
                total = self._bytes
            else:
                batch, total = self._pop_run(count, max_bytes, overhead)
            self._bytes -= total
            self.take_count += len(batch)
            self._last_take = time.monotonic()
            if self._waiting:
                self._room.notify_all()
            return batch, self.take_count

    def _pop_run(self, limit: int, max_bytes: int, overhead: int) -> tuple[list[bytes], int]:
        """Pop the longest run (at most ``limit``, at least one) that fits ``max_bytes``,
        guessing its length from the mean size, then correcting; returns it and its bytes."""
        items = self._items
        guess = int(max_bytes // (self._bytes / len(items) + overhead))
        pop = items.popleft
        batch = list(starmap(pop, repeat((), max(1, min(limit, guess)))))  # popleft in C
        total = sum(map(len, batch))
        while len(batch) > 1 and total + overhead * len(batch) > max_bytes:
            message = batch.pop()  # the guess was long: give back from its end
            items.appendleft(message)
            total -= len(message)
        while items and len(batch) < limit:  # the guess was short: extend one at a time
            size = len(items[0])
            if total + size + overhead * (len(batch) + 1) > max_bytes:
                break
            batch.append(pop())
            total += size
        return batch, total

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
            self._room.notify_all()  # waiting callers give up: their events are refused
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
