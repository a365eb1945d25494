"""The retry policy: what is retried, how long to wait, and waits that can be cut short.

Per the data plane protocol: network errors, timeouts, 429 and every 5xx are
retried; other 4xx are final; 413 is split by the caller, not retried. Waits
follow ``backoff.expo`` capped at ``retry_max_delay`` with "equal jitter"
(half fixed, half random), except that a server's ``Retry-After`` is obeyed
exactly, never jittered and never shortened. Every wait is an ``Event.wait``,
so shutdown ends it at once (``backoff``'s own decorators sleep with
``time.sleep``, which nothing can interrupt: only its schedule is used).
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Iterator
from typing import Optional

import backoff

__all__ = [
    "MAX_RETRY_AFTER",
    "RetryAfterGate",
    "RetrySchedule",
    "is_retryable_status",
    "parse_retry_after",
    "wait_until",
]

MAX_RETRY_AFTER = 3600.0
"""A ``Retry-After`` longer than this is treated as this (then bounded by the retry deadline)."""


def is_retryable_status(status: int) -> bool:
    """429 and 5xx are transient; every other non-200 status is final."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class RetrySchedule:
    """Backoff delays for one batch: exponential, capped, with equal jitter."""

    def __init__(self, base: float, cap: float, rng: Optional[random.Random] = None) -> None:
        self._delays: Iterator[float] = backoff.expo(base=2, factor=base, max_value=cap)
        next(self._delays)  # backoff's generators yield None first (PEP 342 priming)
        self._random = rng or random.Random()

    def next_delay(self) -> float:
        """The next wait in seconds."""
        delay = float(next(self._delays))
        return delay / 2 + self._random.uniform(0, delay / 2)


def wait_until(deadline: float, cancel: threading.Event) -> bool:
    """Wait until ``time.monotonic()`` reaches ``deadline``; False if ``cancel`` was set.

    Loops because ``Event.wait`` may return a hair early; a retry is never sent
    before its time.
    """
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return not cancel.is_set()
        if cancel.wait(remaining):
            return False


class RetryAfterGate:
    """A data plane's ``Retry-After``, shared by every worker of one client.

    ``Retry-After`` speaks for the server, not for the one request it answered: once
    any worker reads it, no worker sends again before it expires.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.until = 0.0
        """``time.monotonic()`` before which nothing may be sent."""

    def hold_until(self, when: float) -> None:
        """Extend the hold to ``when`` (never shortens it)."""
        with self._lock:
            if when > self.until:
                self.until = when
