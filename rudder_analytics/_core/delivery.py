"""The delivery state machine: messages and a deadline in, actions out, answers back.

::

    machine = Delivery(messages, policy, now=clock())
    while True:
        action = machine.next_action(clock(), sent_at())
        if isinstance(action, Done): break           # action.report
        if isinstance(action, Wait): wait until action.until (or a cancel: machine.cancel())
        else: machine.receive(post(action.body), clock())   # action is a Send

It owns everything the old loop did besides I/O: 413 halving, attempts and
``max_retries``, the per-chunk retry deadline (``retry_deadline`` from the
chunk's first attempt, capped by the caller's deadline), backoff, the
``Retry-After`` hold shared by every sender of a client, and cancellation.
Cancellation (shutdown) ends any wait, as ``Event.wait`` did: a chunk waiting
is dropped with reason ``shutdown``; a chunk about to be sent is still sent
once. :meth:`Delivery.abandon` drops everything left at once (an asyncio task
that was cancelled). Outcome events go to ``sink`` as they happen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Union

from ..exceptions import DeliveryError, RetriesExhaustedError
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
    error_for,
)
from .policy import DELIVERED, RETRY, SPLIT, RetryPolicy, backoff_delay, classify
from .wire import build_body

__all__ = ["Answer", "Delivery", "Done", "Hold", "HoldLike", "Send", "Wait"]


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


class HoldLike(Protocol):
    """A ``Retry-After`` hold: the thread-safe ``RetryAfterGate`` has this shape too."""

    @property
    def until(self) -> float: ...

    def hold_until(self, when: float) -> None: ...


class Hold:
    """A ``Retry-After`` hold for senders that share one thread (or one event loop)."""

    def __init__(self) -> None:
        self.until = 0.0
        """Monotonic time before which nothing may be sent."""

    def hold_until(self, when: float) -> None:
        """Extend the hold to ``when`` (never shortens it)."""
        if when > self.until:
            self.until = when


_HELD = "not sent: the data plane asked to wait (Retry-After)"


class _Chunk:
    """The state of the chunk being delivered."""

    def __init__(self, messages: list[bytes], limit: float) -> None:
        self.messages = messages
        self.limit = limit
        self.attempts = 0
        self.retries = 0
        self.retry_at: Optional[float] = None
        self.last: Optional[RequestResult] = None


class Delivery:
    """Delivers one list of encoded messages; see the module docstring for the loop."""

    def __init__(
        self,
        messages: list[bytes],
        policy: RetryPolicy,
        *,
        now: float,
        deadline: Optional[float] = None,
        hold: Optional[HoldLike] = None,
        rng: Optional[random.Random] = None,
        sink: Optional[Callable[[Outcome], None]] = None,
        keep_deferred: bool = False,
    ) -> None:
        """``deadline`` (monotonic) bounds the whole delivery; ``keep_deferred`` hands back
        chunks that a ``Retry-After`` hold would outlast (for a queue that can keep
        them) instead of dropping them as ``retries_exhausted``."""
        self._policy = policy
        self._deadline = deadline
        self._hold: HoldLike = hold if hold is not None else Hold()
        self._rng = rng or random.Random()
        self.log: list[Outcome] = []
        """Outcome events, kept here when no sink is given."""
        self._sink = sink or self.log.append
        self._keep_deferred = keep_deferred
        self._pending = [messages] if messages else []
        self._chunk: Optional[_Chunk] = None
        self._report = DeliveryReport()
        self._cancelled = False
        self._done: Optional[Done] = None
        del now  # the per-chunk deadline starts at each chunk's first attempt

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
        chunks = ([self._chunk.messages] if self._chunk else []) + self._pending[::-1]
        attempts = self._chunk.attempts if self._chunk else 0
        self._chunk, self._pending = None, []
        for messages in chunks:
            error = DeliveryError("not sent: the delivery was cancelled")
            self._drop(DropReason.SHUTDOWN, messages,
                       RequestResult(None, "", len(messages), False, attempts, error))
        return self._finish()

    # --- actions ---------------------------------------------------------------------

    def next_action(self, now: float, sent_at: str) -> Action:
        """What the driver should do next; ``sent_at`` stamps a body if one is sent."""
        while self._done is None:
            chunk = self._chunk or self._start(now)
            if chunk is None:
                return self._finish()
            wait = self._wait_for(chunk, now)
            if wait is not None:
                return wait
            if self._chunk is None:
                continue  # the chunk was dropped or deferred while it waited
            chunk.retry_at = None
            chunk.attempts += 1
            return Send(build_body(chunk.messages, sent_at), len(chunk.messages), chunk.attempts)
        return self._done

    def _start(self, now: float) -> Optional[_Chunk]:
        if not self._pending:
            return None
        limit = now + self._policy.retry_deadline
        if self._deadline is not None:
            limit = min(limit, self._deadline)
        self._chunk = _Chunk(self._pending.pop(), limit)
        return self._chunk

    def _wait_for(self, chunk: _Chunk, now: float) -> Optional[Wait]:
        """A Wait if the chunk must wait (backoff, hold); drops it if cancelled meanwhile."""
        if chunk.retry_at is not None:
            if self._cancelled:
                self._give_up(DropReason.SHUTDOWN, chunk, chunk.last)
                return None
            if now < chunk.retry_at:
                return Wait(chunk.retry_at)
        hold = self._hold.until
        if hold <= now:
            return None
        if hold > chunk.limit:
            self._defer_or_give_up(chunk, hold, chunk.last)
        elif self._cancelled:
            self._give_up(DropReason.SHUTDOWN, chunk, chunk.last)
        else:
            return Wait(hold)
        return None

    def receive(self, answer: Answer, now: float) -> None:
        """Hand back the answer to the last :class:`Send`."""
        chunk = self._chunk
        if chunk is None or chunk.attempts == 0 or chunk.retry_at is not None:
            raise RuntimeError("receive() without a Send to answer")
        count = len(chunk.messages)
        verdict = classify(answer.status_code, answer.error)
        if verdict == DELIVERED:
            self._sink(Attempted(count, answer.wire_bytes, True, chunk.attempts > 1, 200, None))
            self._report.requests.append(RequestResult(200, answer.body, count, True,
                                                       chunk.attempts))
            self._report.delivered += count
            self._chunk = None
            return
        error = error_for(answer.status_code, answer.body, answer.error, answer.retry_after,
                          answer.location, answer.response)
        self._sink(Attempted(count, answer.wire_bytes, False, chunk.attempts > 1,
                             answer.status_code, error))
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
        if result.error is not None:
            self._sink(Retrying(result.error))
        policy = self._policy
        delay = backoff_delay(chunk.retries, policy.base_delay, policy.max_delay, self._rng)
        chunk.retries += 1
        if retry_after is not None:
            delay = retry_after  # obeyed exactly: no jitter, never shortened
            self._hold.hold_until(now + delay)
        retry_at = now + delay
        if retry_at <= chunk.limit:
            chunk.retry_at = retry_at
        elif retry_after is not None:
            self._defer_or_give_up(chunk, retry_at, result)
        else:
            self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, result)

    # --- endings ---------------------------------------------------------------------

    def _defer_or_give_up(self, chunk: _Chunk, until: float,
                          last: Optional[RequestResult]) -> None:
        """A hold outlasts the deadline: hand the chunk back, or drop it if nobody keeps it."""
        if not self._keep_deferred:
            self._give_up(DropReason.RETRIES_EXHAUSTED, chunk, last)
            return
        self._chunk = None
        self._report.deferred.append(chunk.messages)
        self._sink(Deferred(chunk.messages, until))

    def _give_up(self, reason: str, chunk: _Chunk, last: Optional[RequestResult]) -> None:
        if last is None:  # never sent: held back by Retry-After until cancelled or too late
            held = DeliveryError(_HELD)
            last = RequestResult(None, "", len(chunk.messages), False, chunk.attempts, held)
        cause = last.error or DeliveryError(_HELD)
        last.error = RetriesExhaustedError(chunk.attempts, cause)
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

