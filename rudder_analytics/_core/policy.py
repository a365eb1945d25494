"""The retry policy, as pure functions: what an answer means, how long to wait, and
what a failure is called.

Per the data plane protocol: 200 is delivered; 413 is split by the caller (a
single message refused with 413 is too large); a redirect (301, 302, 303, 307,
308) is never followed for a POST and is final, like every other 4xx; 429 and
every 5xx are retried, as are network errors and timeouts, except an unknown
host (DNS NXDOMAIN), which no retry can fix (a temporary resolver failure,
``EAI_AGAIN``, is retried). Waits follow an exponential schedule capped at
``max_delay`` with equal jitter (half fixed, half random; the generator is
injected); a server's ``Retry-After`` is obeyed exactly, never jittered and
never shortened, and as an HTTP date it is measured against the answer's own
``Date`` header.

Nothing here reads a clock, sleeps or touches a socket: the ``socket`` and
``ssl`` modules are imported only for their exception types and error codes.
This is the one copy of these rules; :mod:`rudder_analytics._sync.retry` keeps the
blocking pieces (``Event`` waits, the thread-safe hold).
"""

from __future__ import annotations

import email.utils
import random
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import urljoin, urlsplit

import backoff

__all__ = [
    "DELIVERED",
    "MAX_RETRY_AFTER",
    "REDIRECT_STATUSES",
    "REJECTED",
    "RETRY",
    "SPLIT",
    "Failure",
    "RetryPolicy",
    "backoff_delay",
    "classify",
    "describe",
    "describe_hold",
    "failure_of",
    "is_retryable_status",
    "retry_after_seconds",
]

MAX_RETRY_AFTER = 3600.0
"""A ``Retry-After`` longer than this is treated as this (then bounded by the retry deadline)."""

REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))

DELIVERED = "delivered"
SPLIT = "split"
"""413: halve the chunk; a chunk of one message is too large."""
REJECTED = "rejected"
"""Final: dropped at once with reason ``rejected`` (4xx, redirects, unknown host)."""
RETRY = "retry"


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


def backoff_delay(retry: int, base: float, cap: float, rng: random.Random) -> float:
    """The wait before retry number ``retry`` (0 for the first): ``base * 2**retry`` capped
    at ``cap`` (``backoff.expo``'s schedule, a pure generator), with equal jitter."""
    schedule = backoff.expo(base=2, factor=base, max_value=cap)
    next(schedule)  # backoff's generators yield None first (PEP 342 priming)
    for _ in range(min(retry, 64)):  # capped long before 64 doublings
        next(schedule)
    delay = float(next(schedule))
    return delay / 2 + rng.uniform(0, delay / 2)


class Failure:
    """What stopped a request that got no HTTP answer (the transport names it)."""

    UNKNOWN_HOST = "unknown_host"
    """DNS says the name does not exist (``EAI_NONAME``, ``EAI_NODATA``)."""
    DNS_TEMPORARY = "dns_temporary"
    """The resolver failed for now (``EAI_AGAIN`` and the like)."""
    REFUSED = "refused"
    RESET = "reset"
    """The connection broke, or closed before a complete answer."""
    TIMEOUT = "timeout"
    TLS = "tls"
    PROXY = "proxy"
    OTHER = "other"


_UNKNOWN_HOST_CODES = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None),
                      11001)  # 11001: WSAHOST_NOT_FOUND, what Windows' getaddrinfo says
    if code is not None
)


def is_retryable_status(status: int) -> bool:
    """429 and 5xx are transient; every other non-200 status is final."""
    return status == 429 or 500 <= status <= 599


def classify(status: Optional[int], failure: Optional[str] = None) -> str:
    """One verdict for an answer's ``status``, or (``status`` None) for the ``failure`` kind.

    :data:`DELIVERED`, :data:`SPLIT` (413), :data:`REJECTED` (final) or :data:`RETRY`.
    """
    if status is None:
        return REJECTED if failure == Failure.UNKNOWN_HOST else RETRY
    if status == 200:
        return DELIVERED
    if status == 413:
        return SPLIT
    return RETRY if is_retryable_status(status) else REJECTED


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


def failure_of(exc: BaseException) -> str:
    """The :class:`Failure` kind of a request exception, from the standard library
    exceptions it wraps (a transport maps its own library's timeout types first)."""
    kinds = set()
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return Failure.UNKNOWN_HOST if cause.errno in _UNKNOWN_HOST_CODES \
                else Failure.DNS_TEMPORARY
        if isinstance(cause, ConnectionRefusedError):
            kinds.add(Failure.REFUSED)
        elif isinstance(cause, (ssl.SSLError, ssl.CertificateError)):
            kinds.add(Failure.TLS)
        elif isinstance(cause, TimeoutError):  # socket.timeout too
            kinds.add(Failure.TIMEOUT)
        elif isinstance(cause, (ConnectionError, EOFError)):
            kinds.add(Failure.RESET)
    for kind in (Failure.REFUSED, Failure.TLS, Failure.TIMEOUT, Failure.RESET):
        if kind in kinds:
            return kind
    return Failure.OTHER


def retry_after_seconds(
    header: Optional[str], date_header: Optional[str], now: float
) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    An HTTP date is measured against the answer's own ``Date`` header when it has
    a valid one (the server's clock, so a client whose clock is off still waits
    what was asked), else against ``now`` (epoch seconds). None when there is
    nothing usable; never negative, at most :data:`MAX_RETRY_AFTER`.
    """
    if not header:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        when = _http_date(text)
        if when is None:
            return None
        reference = _http_date(date_header)
        seconds = when - (now if reference is None else reference)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _http_date(text: Optional[str]) -> Optional[float]:
    """Epoch seconds of an HTTP date (RFC 9110: always GMT), or None."""
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_tz(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed[9] is None:
        parsed = (*parsed[:9], 0)
    try:
        return float(email.utils.mktime_tz(parsed))
    except (OverflowError, ValueError):
        return None


# --- what a failure is called --------------------------------------------------------------


def _host_port(url: str) -> str:
    """``host:port`` of ``url``, with the scheme's default port written out."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return f"{host}:{port}"


def _base(url: str) -> str:
    """The data plane URL that ``url`` (``.../v1/batch``) was built from."""
    return url[: -len("/v1/batch")] if url.endswith("/v1/batch") else url


def _first_line(text: str, limit: int = 100) -> str:
    """The first line of a server's text, printable, at most ``limit`` characters."""
    line = text.strip().split("\n", 1)[0].strip()
    line = "".join(c if c.isprintable() else "?" for c in line)
    return line[:limit] + ("..." if len(line) > limit else "")


def _seconds(value: float) -> str:
    return f"{value:.3g}" if value < 10 else f"{value:.0f}"


def describe(
    url: str,
    status: Optional[int],
    *,
    body: str = "",
    failure: Optional[str] = None,
    location: Optional[str] = None,
    timeout: float = 0.0,
) -> tuple[str, str]:
    """``(message, cause)`` for a failed request to ``url`` (the ``/v1/batch`` URL).

    The message is short, names the cause and the target, and says what to do
    where that is known; the cause is the same without variable text (it keys
    the one report line per cause). Neither ever contains the write key: only
    the URL, the status, a line of the server's answer and the failure kind.
    """
    if status is None:
        return _describe_failure(url, failure or Failure.OTHER, timeout)
    base = _base(url)
    if status in REDIRECT_STATUSES:
        if not location:
            text = f"redirect {status} without a Location from {url} (not followed)"
            return text, text
        target = _first_line(urljoin(url, location), 200)
        text = (f"redirect {status} to {target} "
                "(not followed: set data_plane_url to the new base URL)")
        return text, text
    said = _first_line(body)
    if status == 401:
        text = f"401 invalid write key for {base}"
        return text, text
    if status == 404:
        if "source is disabled" in said.lower():
            text = f"404 source is disabled at {base}"
        else:
            text = f"404 at {url}: wrong data plane URL?"
        return text, text
    if status == 413:
        text = f"413 request too large for {base}"
        return text, text
    cause = f"{status} from {base}"
    return (f"{cause}: {said}" if said else cause), (f"{cause}: {said[:60]}" if said else cause)


def _describe_failure(url: str, failure: str, timeout: float) -> tuple[str, str]:
    target = _host_port(url)
    host = urlsplit(url).hostname or "?"
    if failure == Failure.UNKNOWN_HOST:
        text = f"unknown host {host}"
    elif failure == Failure.DNS_TEMPORARY:
        text = f"cannot resolve {host} for now (temporary DNS failure)"
    elif failure == Failure.REFUSED:
        text = f"connection refused by {target}"
    elif failure == Failure.TIMEOUT:
        text = f"timed out after {_seconds(timeout)} s waiting for {target}"
    elif failure == Failure.RESET:
        text = f"connection to {target} broke before a complete answer"
    elif failure == Failure.TLS:
        text = f"TLS error with {target} (certificate or protocol)"
    elif failure == Failure.PROXY:
        text = f"the proxy failed to reach {target}"
    else:
        text = f"request to {target} failed"
    return text, text


def describe_hold(url: str, seconds: float, bound: str) -> tuple[str, str]:
    """``(message, cause)`` for a chunk not sent because ``Retry-After`` outlasts ``bound``
    (what remains of ``retry_deadline`` or of the sync deadline)."""
    cause = f"{_base(url)} asked to wait (Retry-After) beyond the {bound}"
    return (f"{_base(url)} asked to wait {_seconds(seconds)} s (Retry-After), "
            f"beyond the {bound}"), cause
