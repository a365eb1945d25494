"""Where the core's outcome events become statistics, ``on_drop``, ``on_error`` and lines.

Both drivers hand every :mod:`~rudder_analytics._core.outcomes` event to one
:class:`StatsSink`; it is the only translation from the I/O-free core to
:class:`~rudder_analytics.stats.Stats` (which counts, then hands each loss to
the reporter and, off-thread, to the callbacks).
"""

from __future__ import annotations

import logging
from typing import Any

from .._build.encoding import decode_message
from .._core.outcomes import Attempted, Deferred, Delivered, Dropped, Outcome, Retrying
from ..stats import Stats, cause_of

__all__ = ["StatsSink"]

logger: logging.Logger = logging.getLogger("rudder_analytics")


class StatsSink:
    """Applies outcome events to ``stats``; ``queued`` says the events came from the queue."""

    def __init__(self, stats: Stats, queued: bool = True, url: str = "") -> None:
        self._stats = stats
        self._queued = queued
        self._url = url

    def __call__(self, outcome: Outcome) -> None:
        stats = self._stats
        if isinstance(outcome, Attempted):
            stats.add_request(outcome.wire_bytes, outcome.ok, outcome.retry)
            if outcome.error is not None:
                stats.record_error(outcome.error)
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("POST %s: %d messages, %d bytes -> %s", self._url,
                             outcome.messages, outcome.wire_bytes,
                             outcome.status_code if outcome.status_code is not None
                             else type(getattr(outcome.error, "exception", None)).__name__)
        elif isinstance(outcome, Retrying):
            stats.retrying(outcome.error)
        elif isinstance(outcome, Dropped):
            self._dropped(outcome)
        elif isinstance(outcome, Delivered):
            stats.add_delivered(outcome.count, queued=self._queued)
        elif isinstance(outcome, Deferred):
            logger.debug("%d events held for later (Retry-After)", len(outcome.messages))

    def _dropped(self, outcome: Dropped) -> None:
        chunk = outcome.messages
        decoded: list[dict[str, Any]] = []

        def messages() -> list[dict[str, Any]]:
            if not decoded and chunk:
                decoded.extend(decode_message(m) for m in chunk)
            return decoded

        self._stats.add_dropped(outcome.reason, len(chunk), messages, enqueued=self._queued,
                                cause=cause_of(outcome.error))
        self._stats.report_failure(outcome.error, messages, len(chunk))
