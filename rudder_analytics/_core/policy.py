"""The retry policy, as pure functions: what an answer means and how long to wait.

Per the data plane protocol: 200 is delivered; 413 is split by the caller (a
single message refused with 413 is too large); a redirect (301, 302, 303, 307,
308) is a rejection naming its ``Location`` (a POST must not be turned into a
GET); every other 4xx is final; 429 and 5xx are retried, as are network errors
and timeouts, except an unknown host (DNS NXDOMAIN), which no retry can fix.
Waits follow an exponential schedule capped at ``max_delay`` with equal jitter
(half fixed, half random, the generator injected); a server's ``Retry-After`` is
obeyed exactly. ``Retry-After`` as an HTTP date is measured against the
answer's own ``Date`` header, so a skewed local clock does not change the wait.
"""

from __future__ import annotations

import email.utils
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from .wire import REDIRECT_STATUSES

__all__ = [
    "DELIVERED",
    "MAX_RETRY_AFTER",
    "REDIRECT",
    "REJECTED",
    "RETRY",
    "SPLIT",
    "RetryPolicy",
    "backoff_delay",
    "classify",
    "classify_error",
    "classify_status",
    "is_unknown_host",
    "parse_retry_after",
]

DELIVERED = "delivered"
SPLIT = "split"
"""413: halve the chunk; a chunk of one message is too large."""
REDIRECT = "redirect"
"""A 3xx redirect: final, reported with its Location."""
REJECTED = "rejected"
RETRY = "retry"

MAX_RETRY_AFTER = 3600.0
"""A ``Retry-After`` longer than this is treated as this (then bounded by the deadline)."""

_UNKNOWN_HOST_CODES = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


@dataclass(frozen=True)
class RetryPolicy:
    """The numbers of the policy, taken from the client's options."""

    max_retries: int = 10
    retry_deadline: float = 600.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    @classmethod
    def from_config(cls, config: Any) -> RetryPolicy:
        """Read ``max_retries``, ``retry_deadline``, ``retry_base_delay``, ``retry_max_delay``."""
        return cls(config.max_retries, config.retry_deadline, config.retry_base_delay,
                   config.retry_max_delay)


def classify_status(status: int) -> str:
    """What an HTTP status means for the chunk that got it."""
    if status == 200:
        return DELIVERED
    if status == 413:
        return SPLIT
    if status in REDIRECT_STATUSES:
        return REDIRECT
    if status == 429 or 500 <= status <= 599:
        return RETRY
    return REJECTED


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: causes, contexts, urllib3's ``reason``, exception args."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 32:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None),
                  *current.args]
        todo.extend(e for e in linked if isinstance(e, BaseException))


def is_unknown_host(exc: BaseException) -> bool:
    """True if ``exc`` comes from a DNS answer that the host does not exist (NXDOMAIN).

    A temporary resolver failure (``EAI_AGAIN``) is not: it is retried.
    """
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror) and cause.errno in _UNKNOWN_HOST_CODES:
            return True
    return False


def classify_error(exc: Optional[BaseException]) -> str:
    """What a request that got no answer means: retried, unless the host does not exist."""
    if exc is not None and is_unknown_host(exc):
        return REJECTED
    return RETRY


def classify(status: Optional[int], exc: Optional[BaseException]) -> str:
    """One verdict for an answer (``status``) or for its absence (``exc``)."""
    return classify_status(status) if status is not None else classify_error(exc)


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """The wait before retry number ``retry`` (0 for the first): ``base * 2**retry``,
    capped at ``cap``, with equal jitter (the schedule of ``backoff.expo``)."""
    delay = cap if retry >= 64 else min(base * 2.0**retry, cap)
    return delay / 2 + rng.uniform(0, delay / 2)


def parse_retry_after(
    value: Optional[str], date: Optional[str] = None, now_wall: Optional[float] = None
) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    An HTTP date is compared with the answer's ``date`` header when it has one
    (the server's own clock), else with ``now_wall`` (epoch seconds, given by the
    driver). None when there is nothing usable; never negative, at most
    :data:`MAX_RETRY_AFTER`.
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = _http_date(text)
        if when is None:
            return None
        reference = _http_date(date) if date else None
        if reference is None:
            if now_wall is None:
                return None
            reference = now_wall
        seconds = when - reference
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _http_date(text: Optional[str]) -> Optional[float]:
    if not text:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; an obsolete form may lack the zone
        return email.utils.mktime_tz((*when.timetuple()[:9], 0))
    return when.timestamp()
