"""Delivery of a list of encoded messages: attempts, retries, 413 splits, and reporting.

One code path sends for the background workers, for sync mode and for
batches. :meth:`Deliverer.deliver` returns a :class:`DeliveryReport` and has
already counted every message as delivered or dropped (with its reason) and
called ``on_error`` once per failed request chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .config import Config
from .encoding import build_body, decode_message
from .exceptions import (
    DeliveryError,
    HTTPStatusError,
    RetriesExhaustedError,
    TransportError,
)
from .messages import now_iso
from .retry import RetryAfterGate, RetrySchedule, is_retryable_status, wait_until
from .stats import DropReason, Stats, cause_of
from .transport import Attempt, Transport

__all__ = ["Deliverer", "DeliveryReport", "RequestResult"]

logger = logging.getLogger("rudder_analytics")

_NEVER = threading.Event()
"""A cancel event that is never set (sync sends are bounded by their deadline)."""


@dataclass
class RequestResult:
    """The final answer for one chunk of messages (after its retries)."""

    status_code: Optional[int]
    body: str
    messages: int
    delivered: bool
    attempts: int
    error: Optional[DeliveryError] = None


@dataclass
class DeliveryReport:
    """What became of the messages handed to :meth:`Deliverer.deliver`."""

    delivered: int = 0
    failed: int = 0
    requests: list[RequestResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every message was delivered."""
        return self.failed == 0

    def first_error(self) -> Optional[DeliveryError]:
        """The error of the first failed request, if any."""
        for result in self.requests:
            if result.error is not None:
                return result.error
        return None


def _error_for(attempt: Attempt) -> DeliveryError:
    if attempt.status_code is None:
        exc = attempt.exception
        return TransportError(
            f"request failed: {type(exc).__name__}: {exc}" if exc else "request failed",
            exception=exc,
        )
    return HTTPStatusError(
        f"data plane answered {attempt.status_code}: {attempt.body.strip()[:200]}",
        status_code=attempt.status_code,
        body=attempt.body,
        retry_after=attempt.retry_after,
        response=attempt.response,
    )


class Deliverer:
    """Sends chunks through one :class:`Transport`, applying the retry policy."""

    def __init__(
        self,
        config: Config,
        stats: Stats,
        transport: Optional[Transport] = None,
        gate: Optional[RetryAfterGate] = None,
        queued: bool = True,
    ):
        self._config = config
        self._stats = stats
        self.transport = transport or Transport(config)
        self._gate = gate or RetryAfterGate()
        """Shared by the workers of one client: a Retry-After holds back all of them."""
        self._queued = queued
        """True for the workers (events from the queue); False for synchronous sends."""

    def deliver(
        self,
        messages: list[bytes],
        cancel: Optional[threading.Event] = None,
        deadline: Optional[float] = None,
    ) -> DeliveryReport:
        """Send ``messages``; split on 413; retry transient failures until done or out of time.

        ``cancel`` (shutdown) ends any wait at once and drops what is left with
        reason ``shutdown``. ``deadline`` (monotonic) bounds the whole delivery.
        """
        report = DeliveryReport()
        cancel = cancel or _NEVER
        pending = [messages]
        while pending:
            chunk = pending.pop()
            result = self._send_chunk(chunk, cancel, deadline)
            if result.status_code == 413 and not result.delivered:
                if len(chunk) > 1:
                    middle = len(chunk) // 2
                    pending.append(chunk[middle:])
                    pending.append(chunk[:middle])
                    continue
                self._fail(DropReason.TOO_LARGE, chunk, result)
            report.requests.append(result)
            if result.delivered:
                report.delivered += len(chunk)
            else:
                report.failed += len(chunk)
        if report.delivered:
            self._stats.add_delivered(report.delivered, queued=self._queued)
        return report

    def _send_chunk(
        self, chunk: list[bytes], cancel: threading.Event, deadline: Optional[float]
    ) -> RequestResult:
        config = self._config
        started = time.monotonic()
        limit = started + config.retry_deadline
        if deadline is not None:
            limit = min(limit, deadline)
        schedule: Optional[RetrySchedule] = None
        attempts = 0
        debug = logger.isEnabledFor(logging.DEBUG)
        while True:
            hold = self._gate.until  # set when any worker was told to wait (Retry-After)
            if hold > time.monotonic() and (hold > limit or not wait_until(hold, cancel)):
                reason = DropReason.SHUTDOWN if cancel.is_set() else DropReason.RETRIES_EXHAUSTED
                held = DeliveryError("not sent: the data plane asked to wait (Retry-After)")
                return self._give_up(
                    reason, chunk, RequestResult(None, "", len(chunk), False, attempts, held),
                    attempts, held,
                )
            attempts += 1
            body = build_body(chunk, now_iso())
            attempt = self.transport.post(body)
            status = attempt.status_code
            ok = status == 200
            if debug:
                logger.debug(
                    "POST %s: %d messages, %d bytes -> %s", config.batch_url, len(chunk),
                    attempt.wire_bytes, status if status is not None
                    else type(attempt.exception).__name__,
                )
            if ok:
                self._stats.add_request(attempt.wire_bytes, True, attempts > 1)
                return RequestResult(200, attempt.body, len(chunk), True, attempts)
            error = _error_for(attempt)
            self._stats.add_request(attempt.wire_bytes, False, attempts > 1)
            self._stats.record_error(error)
            result = RequestResult(status, attempt.body, len(chunk), False, attempts, error)
            if status == 413:
                return result
            if status is not None and not is_retryable_status(status):
                self._fail(DropReason.REJECTED, chunk, result)
                return result
            if cancel.is_set():
                return self._give_up(DropReason.SHUTDOWN, chunk, result, attempts, error)
            if attempts > config.max_retries:
                return self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result, attempts, error)
            self._stats.retrying(error)
            if schedule is None:
                schedule = RetrySchedule(config.retry_base_delay, config.retry_max_delay)
            delay = schedule.next_delay()
            if attempt.retry_after is not None:
                delay = attempt.retry_after  # obeyed exactly: no jitter, never shortened
                self._gate.hold_until(time.monotonic() + delay)
            retry_at = time.monotonic() + delay
            if retry_at > limit:
                return self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result, attempts, error)
            if not wait_until(retry_at, cancel):
                return self._give_up(DropReason.SHUTDOWN, chunk, result, attempts, error)

    def _give_up(
        self,
        reason: str,
        chunk: list[bytes],
        result: RequestResult,
        attempts: int,
        error: DeliveryError,
    ) -> RequestResult:
        result.error = RetriesExhaustedError(attempts, error)
        self._fail(reason, chunk, result)
        return result

    def _fail(self, reason: str, chunk: list[bytes], result: RequestResult) -> None:
        """Count the chunk as dropped, then tell ``on_error`` once."""
        decoded: list[dict[str, Any]] = []

        def messages() -> list[dict[str, Any]]:
            if not decoded and chunk:
                decoded.extend(decode_message(m) for m in chunk)
            return decoded

        error = result.error or DeliveryError("delivery failed", status_code=result.status_code)
        self._stats.add_dropped(reason, len(chunk), messages, enqueued=self._queued,
                                cause=cause_of(error))
        self._stats.report_failure(error, messages, len(chunk))

