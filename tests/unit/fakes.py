"""A fake clock and scripted fake transports for both drivers of the delivery core.

A script answers each POST, in order, with an :class:`Answer` (or a function of
the decoded body that returns one); the fake records what was sent and when
(on the fake clock). Nothing here touches a socket or sleeps.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from rudder_analytics._async import driver as async_driver
from rudder_analytics._build.encoding import encode_message
from rudder_analytics._core.delivery import Answer, Delivery, HoldLike
from rudder_analytics._core.outcomes import DeliveryReport, Outcome
from rudder_analytics._core.policy import RetryPolicy, failure_of
from rudder_analytics._sync import driver as sync_driver
from rudder_analytics._sync.transport import Attempt

URL = "http://127.0.0.1:8080/v1/batch"

Scripted = Union[Answer, Callable[[list[dict[str, Any]]], Answer]]

SENT_AT = "2026-01-01T00:00:00.000+00:00"
"""The shape now_iso() produces (the size that message_overhead() assumes)."""


def messages(n: int, pad: int = 0) -> list[bytes]:
    """``n`` stored messages numbered 0..n-1 (``pad`` bytes of padding each)."""
    return [encode_message({"type": "track", "userId": "u", "n": i, "pad": "x" * pad}, 10**6)
            for i in range(n)]


class FakeClock:
    """Monotonic time that moves only when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class _Headers(dict):  # type: ignore[type-arg]
    pass


class _Response:
    """Just enough of a ``requests.Response`` for the sync driver: headers."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = _Headers(headers)


@dataclass
class Sent:
    at: float
    numbers: list[int]
    body: dict[str, Any]


@dataclass
class Run:
    """What one delivery did."""

    report: DeliveryReport
    log: list[Outcome]
    sent: list[Sent]
    cancelled_task: bool = False

    @property
    def times(self) -> list[float]:
        return [s.at for s in self.sent]

    def dropped(self) -> list[tuple[str, int]]:
        from rudder_analytics._core.outcomes import Dropped

        return [(o.reason, len(o.messages)) for o in self.log if isinstance(o, Dropped)]


@dataclass
class Script:
    answers: list[Scripted]
    default: Optional[Scripted] = None
    sent: list[Sent] = field(default_factory=list)

    def answer(self, body: bytes, now: float) -> Answer:
        decoded = json.loads(body)
        self.sent.append(Sent(now, [m["n"] for m in decoded["batch"]], decoded))
        item = self.answers.pop(0) if self.answers else self.default
        assert item is not None, "the script ran out of answers"
        answer = item if isinstance(item, Answer) else item(decoded["batch"])
        return Answer(answer.status_code, answer.body, answer.retry_after, answer.error,
                      answer.location, answer.response, len(body))


def ok() -> Answer:
    return Answer(200, "ok")


def status(code: int, retry_after: Optional[float] = None, location: Optional[str] = None,
           body: str = "") -> Answer:
    return Answer(code, body or f"status {code}", retry_after, location=location)


def failure(exc: BaseException) -> Answer:
    return Answer(None, "", error=exc)


class SyncFake:
    """A ``Transport`` stand-in: ``post(body) -> Attempt``, as the blocking driver expects."""

    def __init__(self, script: Script, clock: FakeClock) -> None:
        self._script = script
        self._clock = clock

    def post(self, body: bytes) -> Attempt:
        answer = self._script.answer(body, self._clock.now)
        headers = {"Location": answer.location} if answer.location else {}
        response: Any = _Response(headers) if answer.status_code is not None else None
        kind = answer.failure
        if kind is None and answer.error is not None:
            kind = failure_of(answer.error)  # as the real transport names it
        return Attempt(answer.status_code, answer.body, answer.retry_after, answer.error,
                       response, answer.wire_bytes, kind, answer.location)


class AsyncFake:
    """The asyncio transport stand-in: ``await post(body, timeout) -> Answer``."""

    def __init__(self, script: Script, clock: FakeClock) -> None:
        self._script = script
        self._clock = clock
        self.timeouts: list[Optional[float]] = []

    async def post(self, body: bytes, timeout: Optional[float] = None) -> Answer:
        self.timeouts.append(timeout)
        return self._script.answer(body, self._clock.now)


def run_sync(machine: Delivery, script: Script, clock: FakeClock,
             cancel_at: Optional[float]) -> Run:
    import threading

    cancel = threading.Event()

    def wait(until: float) -> bool:
        if cancel_at is not None and cancel_at <= until:
            clock.now = max(clock.now, cancel_at)
            cancel.set()
            return False
        clock.now = max(clock.now, until)
        return True

    report = sync_driver.run(machine, SyncFake(script, clock), cancel, clock=clock, wait=wait,
                             sent_at=lambda: SENT_AT)
    return Run(report, machine.log, script.sent)


def run_async(machine: Delivery, script: Script, clock: FakeClock,
              cancel_at: Optional[float]) -> Run:
    async def sleep(seconds: float) -> None:
        target = clock.now + seconds
        if cancel_at is not None and cancel_at <= target:
            clock.now = max(clock.now, cancel_at)
            raise asyncio.CancelledError  # as if the awaiting task were cancelled here
        clock.now = target

    async def main() -> Run:
        try:
            report = await async_driver.run(machine, AsyncFake(script, clock), clock=clock,
                                            sleep=sleep, sent_at=lambda: SENT_AT)
        except asyncio.CancelledError:
            done = machine.next_action(clock(), SENT_AT)
            return Run(done.report, machine.log, script.sent, True)  # type: ignore[union-attr]
        return Run(report, machine.log, script.sent)

    return asyncio.run(main())


DRIVERS = {"sync": run_sync, "async": run_async}


@dataclass
class Deliver:
    """Builds a Delivery on a fake clock and runs it through one driver."""

    driver: str
    clock: FakeClock = field(default_factory=FakeClock)

    def __call__(
        self,
        msgs: list[bytes],
        answers: list[Scripted],
        *,
        default: Optional[Scripted] = None,
        policy: Optional[RetryPolicy] = None,
        deadline: Optional[float] = None,
        hold: Optional[HoldLike] = None,
        cancel_at: Optional[float] = None,
        keep_deferred: bool = False,
        seed: int = 7,
    ) -> Run:
        policy = policy or RetryPolicy(max_retries=10, retry_deadline=600.0, base_delay=0.5,
                                       max_delay=30.0)
        machine = Delivery(msgs, policy, deadline=deadline, hold=hold, rng=random.Random(seed),
                           keep_deferred=keep_deferred, url=URL, attempt_timeout=15.0)
        return DRIVERS[self.driver](machine, Script(list(answers), default), self.clock,
                                    cancel_at)
