"""The delivery state machine: messages and a deadline in, actions out, answers back.

::

    machine = Delivery(messages, policy, url=config.batch_url)
    while True:
        action = machine.next_action(clock(), sent_at())
        if isinstance(action, Done): break           # action.report
        if isinstance(action, Wait): wait until action.until; on a cancel: machine.cancel()
        else: machine.receive(post(action.body), clock())   # action is a Send

It owns everything the old loop did besides I/O: 413 halving, attempts and
``max_retries``, the retry deadline (``retry_deadline`` from a chunk's first
attempt, capped by the caller's ``deadline``), backoff, the ``Retry-After`` hold
shared by every sender of a client (a hold past the deadline defers the chunk
when the caller can keep it, else fails it naming the wait), and cancellation.
Cancellation (shutdown) ends a wait, as ``Event.wait`` did: a chunk that was
waiting is dropped with reason ``shutdown``; a chunk about to be sent is still
sent once. :meth:`Delivery.abandon` drops everything left at once (an asyncio
task that was cancelled). Outcome events go to ``sink`` as they happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

from ..exceptions import DeliveryError, HTTPStatusError, RetriesExhaustedError, TransportError
from .outcomes import (
    Attempted,
    Deferred,
    Delivered,
    DeliveryReport,
    Dropped,
    DropReason,
    Outcome,
    RequestResult,
    Retrying,
)
from .policy import (
    DELIVERED,
    RETRY,
    SPLIT,
    RetryPolicy,
    backoff_delay,
    classify,
    describe,
    describe_hold,
    failure_of,
)
from .wire import build_body

__all__ = ["Answer", "Delivery", "Done", "Hold", "HoldLike", "Send", "Wait", "error_for"]

_INF = float("inf")


@dataclass(frozen=True)
class Send:
    """POST ``body`` (uncompressed; the transport compresses) and hand back the answer."""

    body: bytes
    messages: int
    attempt: int


@dataclass(frozen=True)
class Wait:
    """Wait until the monotonic time ``until`` (or a cancel), then ask again."""

    until: float


@dataclass(frozen=True)
class Done:
    """Finished: every message is delivered, dropped or deferred in ``report``."""

    report: DeliveryReport


Action = Union[Send, Wait, Done]


@dataclass(frozen=True)
class Answer:
    """What one POST produced, as the driver saw it."""

    status_code: Optional[int]
    """HTTP status, or None when no answer came (connect error, reset, timeout, DNS)."""
    body: str = ""
    retry_after: Optional[float] = None
    """Seconds from ``Retry-After`` (parsed by the transport against the answer's Date)."""
    error: Optional[BaseException] = None
    location: Optional[str] = None
    """``Location`` of a redirect."""
    response: Any = None
    """The transport's response object, for ``on_error`` callbacks that want headers."""
    wire_bytes: int = 0
    failure: Optional[str] = None
    """The :class:`~.policy.Failure` kind when there was no answer (else read from ``error``)."""


def error_for(answer: Answer, url: str, timeout: float) -> DeliveryError:
    """The error for an answer that was not a success: a short message naming the cause and
    the data plane (see :func:`.policy.describe`), with the answer's details attached."""
    status = answer.status_code
    failure = answer.failure
    if status is None and failure is None and answer.error is not None:
        failure = failure_of(answer.error)
    message, cause = describe(url, status, body=answer.body, failure=failure,
                              location=answer.location, timeout=timeout)
    if status is None:
        return TransportError(message, exception=answer.error, cause=cause)
    return HTTPStatusError(message, status_code=status, body=answer.body,
                           retry_after=answer.retry_after, response=answer.response,
                           cause=cause, location=answer.location)


class HoldLike(Protocol):
    """A ``Retry-After`` hold: the thread-safe ``RetryAfterGate`` has this shape too."""

    @property
    def until(self) -> float:
        """Monotonic time before which nothing may be sent."""
        ...

    def hold_until(self, when: float) -> None:
        """Extend the hold to ``when`` (never shortens it)."""
        ...


class Hold:
    """A ``Retry-After`` hold for senders that share one thread (or one event loop)."""

    def __init__(self) -> None:
        self.until: float = 0.0
        """Monotonic time before which nothing may be sent."""

    def hold_until(self, when: float) -> None:
        """Extend the hold to ``when`` (never shortens it)."""
        if when > self.until:
            self.until = when


class _Chunk:
    """The state of the chunk being delivered."""

    def __init__(self, messages: list[bytes], limit: float, bound: str) -> None:
        self.messages = messages
        self.limit = limit
        """No retry and no hold may end after this (monotonic)."""
        self.bound = bound
        """What ``limit`` is called in messages."""
        self.attempts = 0
        self.retries = 0
        self.retry_at: Optional[float] = None
        self.waiting = False
        """True while the driver waits for us (a Wait was returned)."""
        self.last: Optional[RequestResult] = None


class Delivery:
    """Delivers one list of encoded messages; see the module docstring for the loop."""

    def __init__(
        self,
        messages: list[bytes],
        policy: RetryPolicy,
        *,
        now: float = 0.0,
        deadline: Optional[float] = None,
        hold: Optional[HoldLike] = None,
        rng: Optional[random.Random] = None,
        sink: Optional[Callable[[Outcome], None]] = None,
        keep_deferred: bool = False,
        url: str = "",
        attempt_timeout: float = 0.0,
        deadline_name: str = "sync_deadline",
    ) -> None:
        """``deadline`` (monotonic) bounds the whole delivery. ``keep_deferred`` (a queue
        that can keep them): a chunk whose ``Retry-After`` hold outlasts its deadline is
        handed back in ``report.deferred`` instead of failing. ``url``, ``attempt_timeout``
        and ``deadline_name`` only shape error messages. ``now`` is unused (the retry
        deadline starts at each chunk's first attempt); it is kept for symmetry."""
        del now
        self._policy = policy
        self._deadline = deadline
        self._hold: HoldLike = hold if hold is not None else Hold()
        self._rng = rng or random.Random()
        self.log: list[Outcome] = []
        """Outcome events, kept here when no sink is given."""
        self._sink = sink or self.log.append
        self._keep_deferred = keep_deferred
        self._url = url
        self._timeout = attempt_timeout
        self._deadline_name = deadline_name
        self._pending = [messages] if messages else []
        self._chunk: Optional[_Chunk] = None
        self._report = DeliveryReport()
        self._cancelled = False
        self._done: Optional[Done] = None

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled

    def cancel(self) -> None:
        """Shutdown: end any wait; what waits is dropped with reason ``shutdown``."""
        self._cancelled = True

    def abandon(self) -> Done:
        """Drop everything not yet delivered (reason ``shutdown``) and finish now."""
        self._cancelled = True
        chunk, pending = self._chunk, self._pending[::-1]
        self._pending = []
        if chunk is not None and chunk.last is not None:
            self._give_up(DropReason.SHUTDOWN, chunk, chunk.last)  # it was answered: say how
        elif chunk is not None:
            pending.insert(0, chunk.messages)
        self._chunk = None
        for messages in pending:
            error = DeliveryError("not sent: the delivery was cancelled")
            self._drop(DropReason.SHUTDOWN, messages,
                       RequestResult(None, "", len(messages), False, 0, error))
        return self._finish()

    # --- actions ---------------------------------------------------------------------

    def next_action(self, now: float, sent_at: str) -> Action:
        """What the driver should do next; ``sent_at`` stamps a body if one is sent."""
        while self._done is None:
            chunk = self._chunk or self._start()
            if chunk is None:
                return self._finish()
            wait = self._retry_wait(chunk, now)
            if wait is None and self._chunk is chunk:
                wait = self._hold_wait(chunk, now)
            if wait is not None:
                chunk.waiting = True
                return wait
            if self._chunk is not chunk:
                continue  # dropped or deferred while it waited
            return self._send(chunk, now, sent_at)
        return self._done

    def _start(self) -> Optional[_Chunk]:
        if not self._pending:
            return None
        # Until the first attempt only the caller's deadline bounds a hold.
        limit = _INF if self._deadline is None else self._deadline
        self._chunk = _Chunk(self._pending.pop(), limit, self._deadline_name)
        return self._chunk

    def _send(self, chunk: _Chunk, now: float, sent_at: str) -> Send:
        chunk.waiting = False
        chunk.retry_at = None
        if chunk.attempts == 0:
            limit = now + self._policy.retry_deadline
            if self._deadline is None or limit <= self._deadline:
                chunk.limit, chunk.bound = limit, "retry_deadline"
        chunk.attempts += 1
        return Send(build_body(chunk.messages, sent_at), len(chunk.messages), chunk.attempts)

    def _retry_wait(self, chunk: _Chunk, now: float) -> Optional[Wait]:
        """Wait out the backoff; a cancel during it drops the chunk (``shutdown``)."""
        if chunk.retry_at is None:
            return None
        if self._cancelled:
            self._give_up(DropReason.SHUTDOWN, chunk, chunk.last)
            return None
        return Wait(chunk.retry_at) if now < chunk.retry_at else None

    def _hold_wait(self, chunk: _Chunk, now: float) -> Optional[Wait]:
        """Wait out a ``Retry-After`` hold (set by any sender sharing it), if there is one."""
        hold = self._hold.until
        if self._cancelled and chunk.waiting:
            self._hold_ends(chunk, hold - now, shutdown=True)
            return None
        if hold <= now:
            return None
        if hold <= chunk.limit and not self._cancelled:
            return Wait(hold)
        self._hold_ends(chunk, hold - now, shutdown=self._cancelled)
        return None

    def receive(self, answer: Answer, now: float) -> None:
        """Hand back the answer to the last :class:`Send`."""
        chunk = self._chunk
        if chunk is None or chunk.attempts == 0 or chunk.retry_at is not None or chunk.waiting:
            raise RuntimeError("receive() without a Send to answer")
        count, retry = len(chunk.messages), chunk.attempts > 1
        failure = answer.failure
        if answer.status_code is None and failure is None and answer.error is not None:
            failure = failure_of(answer.error)
        verdict = classify(answer.status_code, failure)
        if verdict == DELIVERED:
            self._sink(Attempted(count, answer.wire_bytes, True, retry, 200, None))
            self._report.requests.append(RequestResult(200, answer.body, count, True,
                                                       chunk.attempts))
            self._report.delivered += count
            self._chunk = None
            return
        error = error_for(answer, self._url, self._timeout)
        self._sink(Attempted(count, answer.wire_bytes, False, retry, answer.status_code, error))
        result = RequestResult(answer.status_code, answer.body, count, False, chunk.attempts,
                               error)
        if verdict == SPLIT:
            self._split(chunk, result)
        elif verdict != RETRY:
            self._drop(DropReason.REJECTED, chunk.messages, result)
        else:
            self._schedule_retry(chunk, result, answer.retry_after, now)

    def _split(self, chunk: _Chunk, result: RequestResult) -> None:
        """413: send each half as a chunk of its own; a single message is too large."""
        messages = chunk.messages
        if len(messages) > 1:
            middle = len(messages) // 2
            self._pending.append(messages[middle:])
            self._pending.append(messages[:middle])
            self._chunk = None
        else:
            self._drop(DropReason.TOO_LARGE, messages, result)

    def _schedule_retry(self, chunk: _Chunk, result: RequestResult,
                        retry_after: Optional[float], now: float) -> None:
        chunk.last = result
        if self._cancelled:
            self._give_up(DropReason.SHUTDOWN, chunk, result)
            return
        if chunk.attempts > self._policy.max_retries:
            self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result)
            return
        assert result.error is not None
        self._sink(Retrying(result.error))
        policy = self._policy
        delay = backoff_delay(chunk.retries, policy.base_delay, policy.max_delay, self._rng)
        chunk.retries += 1
        if retry_after is not None:  # obeyed exactly: no jitter, never shortened
            self._hold.hold_until(now + retry_after)
            return  # the hold check waits, defers or gives up
        retry_at = now + delay
        if retry_at > chunk.limit:
            self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result)
        else:
            chunk.retry_at = retry_at

    # --- endings ---------------------------------------------------------------------

    def _hold_ends(self, chunk: _Chunk, seconds: float, shutdown: bool) -> None:
        """A hold ends the chunk: shut down during it, or it outlasts the deadline."""
        last = chunk.last
        if shutdown:
            error = DeliveryError("not sent: shut down during a Retry-After hold")
            reason = DropReason.SHUTDOWN
        elif self._keep_deferred and last is not None:
            self._chunk = None
            self._report.deferred.append(chunk.messages)
            self._sink(Deferred(chunk.messages, self._hold.until))
            return
        else:
            error = self._hold_error(seconds, chunk.bound, last)
            reason = DropReason.RETRIES_EXHAUSTED
        if last is None:  # never sent: the hold itself is the error
            if not shutdown:
                error = DeliveryError(f"not sent: {error}", cause=error.cause)
            self._drop(reason, chunk.messages,
                       RequestResult(None, "", len(chunk.messages), False, 0, error))
            return
        if shutdown and last.error is not None:
            error = last.error  # what the last attempt met says more than "shut down"
        last.error = RetriesExhaustedError(last.attempts, error)
        self._drop(reason, chunk.messages, last)

    def _hold_error(self, seconds: float, bound: str,
                    last: Optional[RequestResult]) -> DeliveryError:
        message, cause = describe_hold(self._url, seconds, bound)
        previous = last.error if last is not None else None
        if isinstance(previous, HTTPStatusError):
            return HTTPStatusError(message, status_code=previous.status_code or 0,
                                   body=previous.body, retry_after=previous.retry_after,
                                   response=previous.response, cause=cause)
        return DeliveryError(message, cause=cause)

    def _give_up(self, reason: str, chunk: _Chunk, last: Optional[RequestResult]) -> None:
        """Drop a chunk that was answered at least once, wrapping what its last try met."""
        assert last is not None and last.error is not None  # a retry always follows an answer
        last.error = RetriesExhaustedError(chunk.attempts, last.error)
        self._drop(reason, chunk.messages, last)

    def _drop(self, reason: str, messages: list[bytes], result: RequestResult) -> None:
        self._chunk = None
        self._report.requests.append(result)
        self._report.failed += len(messages)
        error = result.error or DeliveryError("delivery failed", status_code=result.status_code)
        self._sink(Dropped(reason, messages, error))

    def _finish(self) -> Done:
        if self._done is None:
            if self._report.delivered:
                self._sink(Delivered(self._report.delivered))
            self._done = Done(self._report)
        return self._done
