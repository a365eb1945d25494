"""Counters and drop reasons: where every outcome is accounted, once.

Every event the SDK accepts ends in exactly one of two places: ``delivered``
or ``dropped[reason]``. :class:`Stats` is the one entry point for outcomes:
it counts them, then hands each loss on to the two ways it is told, neither of
which runs under a lock: the :class:`~rudder_analytics._report.lines.Reporter` (one
line per cause, totals never hidden) and the client's
:class:`~rudder_analytics._report.callbacks.CallbackDispatcher` (``on_drop``,
``on_error``), which Stats reaches only weakly so that background work never
keeps a client or its owner alive.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Optional, TypedDict

from ._report.callbacks import CallbackDispatcher
from ._report.lines import Reporter
from .exceptions import DeliveryError

__all__ = ["DROP_REASONS", "DropReason", "Stats", "StatsSnapshot", "cause_of"]

Messages = Callable[[], list[dict[str, Any]]]


class DropReason:
    """Why an event was not delivered: the keys of ``stats()["dropped"]``."""

    QUEUE_FULL = "queue_full"
    """The queue was at its event or byte bound when the call was made."""
    TOO_LARGE = "too_large"
    """Over the per-message limit, or refused alone by the data plane with 413."""
    INVALID = "invalid"
    """The call raised a validation error."""
    AFTER_SHUTDOWN = "after_shutdown"
    """The call came after ``shutdown()``."""
    REJECTED = "rejected"
    """The data plane refused the batch with a non-retryable status (400, 401, 404...)."""
    RETRIES_EXHAUSTED = "retries_exhausted"
    """Every retry failed, or the retry deadline passed."""
    SHUTDOWN = "shutdown"
    """Still queued or in retry when a shutdown (or the exit hook) ran out of time."""
    FILTERED = "filtered"
    """A ``before_send`` hook returned None."""
    HOOK_ERROR = "hook_error"
    """A ``before_send`` hook raised: the event is dropped, never sent unscrubbed."""
    EVICTED = "evicted"
    """On disk only, in the oldest journal segment, removed to stay within ``persist_max_bytes``."""
    CORRUPT = "corrupt"
    """A journal record read back failed its checksum."""


DROP_REASONS = (
    DropReason.QUEUE_FULL,
    DropReason.TOO_LARGE,
    DropReason.INVALID,
    DropReason.AFTER_SHUTDOWN,
    DropReason.REJECTED,
    DropReason.RETRIES_EXHAUSTED,
    DropReason.SHUTDOWN,
    DropReason.FILTERED,
    DropReason.HOOK_ERROR,
    DropReason.EVICTED,
    DropReason.CORRUPT,
)


class StatsSnapshot(TypedDict):
    """What ``client.stats()`` returns."""

    enqueued: int
    delivered: int
    dropped: dict[str, int]
    dropped_total: int
    retries: int
    requests: int
    failed_requests: int
    bytes_sent: int
    queue_depth: int
    queue_bytes: int
    last_error: Optional[str]
    persisted: int
    """Events written to the journal (``persist_dir``); 0 without one."""
    recovered: int
    """Events read back from an earlier process's journal."""
    not_persisted: int
    """Events the journal could not write (disk full, I/O errors): kept in memory only."""


class Stats:
    """Thread-safe counters, and the hand-off of every loss to the reporter and callbacks.

    The hot-path counter (``enqueued``) lives in the buffer under its own lock;
    everything here is touched once per batch or per rare event.
    """

    def __init__(
        self,
        reporter: Optional[Reporter] = None,
        callbacks: Optional[CallbackDispatcher] = None,
    ) -> None:
        self.reporter: Reporter = reporter or Reporter()
        self._callbacks: Callable[[], Optional[CallbackDispatcher]] = (
            weakref.ref(callbacks) if callbacks is not None else lambda: None)
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self.delivered: int = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.retries: int = 0
        self.requests: int = 0
        self.failed_requests: int = 0
        self.bytes_sent: int = 0
        self.last_error: Optional[str] = None
        self.queued_resolved: int = 0
        """Queued events that were delivered or dropped (the rest are queued or in flight)."""
        self.lost_after_enqueue: int = 0
        """Drops of events that had been queued."""
        self.unraised_drops: int = 0
        """Drops the caller was not told of by an exception (what makes ``flush()`` False)."""

    def reset_after_fork(self) -> None:
        """A forked child starts with zeroed counters and a fresh lock."""
        self._reset()
        self.reporter.reset_after_fork()


    def add_delivered(self, count: int, queued: bool = True) -> None:
        """Count ``count`` delivered events (``queued``: they came from the queue)."""
        with self._lock:
            self.delivered += count
            if queued:
                self.queued_resolved += count

    def add_request(self, body_bytes: int, ok: bool, retry: bool) -> None:
        """Count one HTTP attempt: its bytes if it succeeded, a failure, a retry."""
        with self._lock:
            self.requests += 1
            if ok:
                self.bytes_sent += body_bytes
            else:
                self.failed_requests += 1
            if retry:
                self.retries += 1
        if ok:
            self.reporter.recovered()

    def record_error(self, error: DeliveryError) -> None:
        """A request failed (any attempt): remember it for ``stats()["last_error"]``."""
        text = str(error)
        with self._lock:
            self.last_error = text[:500]

    def retrying(self, error: DeliveryError) -> None:
        """A request failed and its events wait for a retry: said once per cause."""
        self.reporter.retrying(cause_of(error))

    def add_dropped(
        self,
        reason: str,
        count: int,
        messages: Optional[Messages] = None,
        enqueued: bool = True,
        cause: Optional[str] = None,
        raised: bool = False,
    ) -> None:
        """Count ``count`` drops, then report them (a line, and ``on_drop`` off-thread).

        ``enqueued`` says whether the events had been queued (False for drops at
        the call: queue full, invalid, after shutdown, and synchronous sends);
        ``raised`` that the call raised for it (the caller knows already).
        """
        if count <= 0:
            return
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            if enqueued:
                self.lost_after_enqueue += count
                self.queued_resolved += count
            if not raised:
                self.unraised_drops += count
        if not raised:
            self.reporter.dropped(reason, count, cause)
        callbacks = self._callbacks()
        if callbacks is not None:
            callbacks.dropped(reason, count, messages)

    def report_failure(self, error: DeliveryError, messages: Messages, count: int) -> None:
        """Hand one failed request's error to ``on_error`` (off-thread, if configured)."""
        callbacks = self._callbacks()
        if callbacks is not None:
            callbacks.failed(error, messages, count)

    def snapshot(
        self, enqueued: int, queue_depth: int, queue_bytes: int,
        persisted: int = 0, recovered: int = 0, not_persisted: int = 0,
    ) -> StatsSnapshot:
        """Counters at one instant, merged with the buffer's own."""
        with self._lock:
            dropped = dict(self.dropped)
            return StatsSnapshot(
                enqueued=enqueued,
                delivered=self.delivered,
                dropped=dropped,
                dropped_total=sum(dropped.values()),
                retries=self.retries,
                requests=self.requests,
                failed_requests=self.failed_requests,
                bytes_sent=self.bytes_sent,
                queue_depth=queue_depth,
                queue_bytes=queue_bytes,
                last_error=self.last_error,
                persisted=persisted,
                recovered=recovered,
                not_persisted=not_persisted,
            )


def cause_of(error: BaseException) -> str:
    """The short cause of ``error``, without counts: the key of its report line."""
    last = getattr(error, "last_error", None)  # RetriesExhaustedError: what the last try met
    if isinstance(last, BaseException):
        error = last
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, str) and cause else str(error).split("\n", 1)[0]
