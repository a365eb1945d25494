"""Counters, drop reasons, user callbacks and throttled warnings.

Every event the SDK accepts ends in exactly one of two places: ``delivered``
or ``dropped[reason]``. Drops are reported three ways: the counters of
:meth:`Stats.snapshot`, the ``on_drop`` callback, and a warning on the
``rudder_analytics`` logger at most once per :data:`WARNING_INTERVAL` seconds
(a summary, never one line per event).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional, TypedDict

from .exceptions import DeliveryError

__all__ = ["DROP_REASONS", "WARNING_INTERVAL", "DropReason", "Stats", "StatsSnapshot"]

logger = logging.getLogger("rudder_analytics")

WARNING_INTERVAL = 10.0
"""Seconds between two drop warnings."""


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


DROP_REASONS = (
    DropReason.QUEUE_FULL,
    DropReason.TOO_LARGE,
    DropReason.INVALID,
    DropReason.AFTER_SHUTDOWN,
    DropReason.REJECTED,
    DropReason.RETRIES_EXHAUSTED,
    DropReason.SHUTDOWN,
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


class Stats:
    """Thread-safe counters plus the drop and error reporting paths.

    The hot-path counter (``enqueued``) lives in the buffer under its own lock;
    everything here is touched once per batch or per rare event.
    """

    def __init__(
        self,
        on_drop: Optional[Callable[[str, list[dict[str, Any]]], Any]] = None,
    ) -> None:
        self._lock = threading.Lock()
        self._on_drop = on_drop
        self.delivered = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)
        self.retries = 0
        self.requests = 0
        self.failed_requests = 0
        self.bytes_sent = 0
        self.last_error: Optional[str] = None
        self.lost_after_enqueue = 0
        """Drops of events that had been queued (what ``flush()`` reports as a failure)."""
        self._unwarned: dict[str, int] = {}
        self._last_warning = float("-inf")

    def reset_after_fork(self) -> None:
        """A forked child starts with zeroed counters and a fresh lock."""
        self.__init__(self._on_drop)  # type: ignore[misc]

    def add_delivered(self, count: int) -> None:
        with self._lock:
            self.delivered += count

    def add_request(self, body_bytes: int, ok: bool, retry: bool) -> None:
        with self._lock:
            self.requests += 1
            if ok:
                self.bytes_sent += body_bytes
            else:
                self.failed_requests += 1
            if retry:
                self.retries += 1

    def record_error(self, error: DeliveryError) -> None:
        text = str(error)
        with self._lock:
            self.last_error = text[:500]

    def add_dropped(
        self,
        reason: str,
        count: int,
        messages: Optional[Callable[[], list[dict[str, Any]]]] = None,
        enqueued: bool = True,
    ) -> None:
        """Count ``count`` drops; call ``on_drop`` (decoding lazily) and maybe warn.

        ``enqueued`` says whether the events had been queued (False for drops at
        the call: queue full, invalid, after shutdown).
        """
        if count <= 0:
            return
        now = time.monotonic()
        with self._lock:
            self.dropped[reason] = self.dropped.get(reason, 0) + count
            if enqueued:
                self.lost_after_enqueue += count
            self._unwarned[reason] = self._unwarned.get(reason, 0) + count
            warn = now - self._last_warning >= WARNING_INTERVAL
            if warn:
                summary = dict(self._unwarned)
                self._unwarned.clear()
                self._last_warning = now
        if warn:  # logged outside the lock: a handler may re-enter the SDK
            logger.warning(
                "rudder_analytics dropped events: %s (see client.stats())",
                ", ".join(f"{n} {r}" for r, n in sorted(summary.items())),
            )
        if self._on_drop is not None:
            try:
                self._on_drop(reason, messages() if messages is not None else [])
            except Exception:
                logger.exception("on_drop callback raised")

    def snapshot(
        self, enqueued: int, queue_depth: int, queue_bytes: int
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
            )
