"""Delivery of a list of encoded messages: attempts, retries, 413 splits, and reporting.

One code path sends for the background workers, for sync mode and for
batches. :meth:`Deliverer.deliver` returns a :class:`DeliveryReport` and has
already counted every message as delivered or dropped (with its reason) and
called ``on_error`` once per failed request chunk, except the chunks it
*deferred*: a ``Retry-After`` that outlasts what remains of ``retry_deadline``
does not drop a worker's batch unsent; the chunk comes back in
``report.deferred`` for the caller to send again after the hold.
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
from .retry import (
    RETRY,
    SPLIT,
    RetryAfterGate,
    RetrySchedule,
    classify,
    describe,
    describe_hold,
    wait_until,
)
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
    deferred: list[list[bytes]] = field(default_factory=list)
    """Chunks neither delivered nor dropped: the data plane asked (``Retry-After``) to wait
    longer than what remained of ``retry_deadline``. Only with ``deliver(defer=True)``."""

    @property
    def ok(self) -> bool:
        """True when every message was delivered (nothing failed, nothing deferred)."""
        return self.failed == 0 and not self.deferred

    def first_error(self) -> Optional[DeliveryError]:
        """The error of the first failed request, if any."""
        for result in self.requests:
            if result.error is not None:
                return result.error
        return None


def error_for(attempt: Attempt, url: str, timeout: float) -> DeliveryError:
    """The error for an attempt that was not a success: a short message naming the cause
    and ``url``'s data plane (see :func:`.retry.describe`), and the answer's details."""
    status = attempt.status_code
    message, cause = describe(url, status, body=attempt.body, failure=attempt.failure,
                              location=attempt.location, timeout=timeout)
    if status is None:
        return TransportError(message, exception=attempt.exception, cause=cause)
    return HTTPStatusError(
        message, status_code=status, body=attempt.body, retry_after=attempt.retry_after,
        response=attempt.response, cause=cause, location=attempt.location,
    )


class _Deferred(Exception):
    """Raised inside a chunk's delivery when it is deferred (see ``DeliveryReport.deferred``)."""


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
        defer: bool = False,
    ) -> DeliveryReport:
        """Send ``messages``; split on 413; retry transient failures until done or out of time.

        ``cancel`` (shutdown) ends any wait at once and drops what is left with
        reason ``shutdown``. ``deadline`` (monotonic) bounds the whole delivery.
        ``defer`` (background workers, no ``deadline``): a ``Retry-After`` longer
        than what remains of ``retry_deadline`` hands the chunk back in
        ``report.deferred`` instead of dropping it; delivering it again waits for
        the hold first, with a fresh ``retry_deadline``. Without ``defer`` such a
        chunk fails with an error saying how long the data plane asked to wait.
        """
        report = DeliveryReport()
        cancel = cancel or _NEVER
        pending = [messages]
        while pending:
            chunk = pending.pop()
            try:
                result = self._send_chunk(chunk, cancel, deadline, defer and deadline is None)
            except _Deferred:
                report.deferred.append(chunk)
                continue
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

    def _deadline_name(self) -> str:
        """What the caller's ``deadline`` is called in messages."""
        return "flush deadline" if self._queued else "sync_deadline"

    def _send_chunk(
        self, chunk: list[bytes], cancel: threading.Event, deadline: Optional[float],
        defer: bool,
    ) -> RequestResult:
        """Deliver one chunk, retrying; raises :class:`_Deferred` when it is deferred."""
        config = self._config
        # Before the first attempt only the caller's deadline bounds a Retry-After
        # hold: retry_deadline counts from the first attempt.
        limit = float("inf") if deadline is None else deadline
        bound = self._deadline_name()
        schedule: Optional[RetrySchedule] = None
        attempts = 0
        last: Optional[RequestResult] = None
        while True:
            held = self._wait_for_hold(chunk, cancel, limit, bound, last, defer)
            if held is not None:
                return held
            if attempts == 0:
                limit = time.monotonic() + config.retry_deadline
                if deadline is not None and deadline < limit:
                    limit = deadline
                else:
                    bound = "retry_deadline"
            attempts += 1
            attempt = self._post(chunk)
            if attempt.status_code == 200:
                self._stats.add_request(attempt.wire_bytes, True, attempts > 1)
                return RequestResult(200, attempt.body, len(chunk), True, attempts)
            error = error_for(attempt, config.batch_url, self.transport.attempt_timeout)
            self._stats.add_request(attempt.wire_bytes, False, attempts > 1)
            self._stats.record_error(error)
            last = RequestResult(attempt.status_code, attempt.body, len(chunk), False,
                                 attempts, error)
            final = self._settle_failure(chunk, last, attempt, cancel)
            if final is not None:
                return final
            self._stats.retrying(error)
            if schedule is None:
                schedule = RetrySchedule(config.retry_base_delay, config.retry_max_delay)
            delay = schedule.next_delay()
            if attempt.retry_after is not None:  # obeyed exactly: no jitter, never shortened
                self._gate.hold_until(time.monotonic() + attempt.retry_after)
                continue  # the hold check above waits, defers or gives up
            retry_at = time.monotonic() + delay
            if retry_at > limit:
                return self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, last, attempts, error)
            if not wait_until(retry_at, cancel):
                return self._give_up(DropReason.SHUTDOWN, chunk, last, attempts, error)

    def _settle_failure(
        self, chunk: list[bytes], result: RequestResult, attempt: Attempt,
        cancel: threading.Event,
    ) -> Optional[RequestResult]:
        """The end of a chunk whose attempt failed, or None if it is to be retried."""
        verdict = classify(attempt.status_code, attempt.failure)
        if verdict == SPLIT:
            return result  # deliver() halves it
        if verdict != RETRY:
            self._fail(DropReason.REJECTED, chunk, result)
            return result
        error = result.error
        assert error is not None
        if cancel.is_set():
            return self._give_up(DropReason.SHUTDOWN, chunk, result, result.attempts, error)
        if result.attempts > self._config.max_retries:
            return self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result, result.attempts,
                                 error)
        return None

    def _post(self, chunk: list[bytes]) -> Attempt:
        """One attempt, with a fresh ``sentAt``."""
        attempt = self.transport.post(build_body(chunk, now_iso()))
        if logger.isEnabledFor(logging.DEBUG):
            status = attempt.status_code
            logger.debug(
                "POST %s: %d messages, %d bytes -> %s", self._config.batch_url, len(chunk),
                attempt.wire_bytes, status if status is not None else attempt.failure,
            )
        return attempt

    def _wait_for_hold(
        self, chunk: list[bytes], cancel: threading.Event, limit: float, bound: str,
        last: Optional[RequestResult], defer: bool,
    ) -> Optional[RequestResult]:
        """Wait out a ``Retry-After`` hold (set by any worker of the client) if there is one.

        None: go ahead and send. A hold past ``limit`` defers the chunk (``defer``,
        after an attempt) or fails it with the wait named; a shutdown drops it.
        """
        hold = self._gate.until
        now = time.monotonic()
        if hold <= now:
            return None
        if hold <= limit and wait_until(hold, cancel):
            return None
        if cancel.is_set():
            error = DeliveryError("not sent: shut down during a Retry-After hold")
            reason = DropReason.SHUTDOWN
        elif defer and last is not None:
            raise _Deferred()
        else:
            error = self._hold_error(hold - now, bound, last)
            reason = DropReason.RETRIES_EXHAUSTED
        if last is None:  # never sent: the hold itself is the error
            if reason != DropReason.SHUTDOWN:
                error = DeliveryError(f"not sent: {error}", cause=error.cause)
            result = RequestResult(None, "", len(chunk), False, 0, error)
            self._fail(reason, chunk, result)
            return result
        if reason == DropReason.SHUTDOWN and last.error is not None:
            error = last.error  # what the last attempt met says more than "shut down"
        return self._give_up(reason, chunk, last, last.attempts, error)

    def _hold_error(
        self, seconds: float, bound: str, last: Optional[RequestResult]
    ) -> DeliveryError:
        """The error of a chunk not sent because the data plane asked to wait too long."""
        message, cause = describe_hold(self._config.batch_url, seconds, bound)
        previous = last.error if last is not None else None
        if isinstance(previous, HTTPStatusError):
            return HTTPStatusError(
                message, status_code=previous.status_code or 0, body=previous.body,
                retry_after=previous.retry_after, response=previous.response, cause=cause)
        return DeliveryError(message, cause=cause)

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

