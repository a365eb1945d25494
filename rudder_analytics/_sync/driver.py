"""The blocking driver: runs a core :class:`~rudder_analytics._core.delivery.Delivery`
over the ``requests`` :class:`~rudder_analytics._sync.transport.Transport`.

Waits are ``Event.wait`` calls, so a shutdown (``cancel``) ends them at once;
the clock, the wait and ``sentAt`` are injectable so that the unit tests run
the same loop on a fake clock.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional, Protocol

from .._build.messages import now_iso
from .._core.delivery import Answer, Delivery, Done, Wait
from .._core.outcomes import DeliveryReport
from .retry import wait_until
from .transport import Attempt

__all__ = ["answer_from_attempt", "run"]

_NEVER = threading.Event()
"""A cancel event that is never set (sync sends are bounded by their deadline)."""


class Poster(Protocol):
    """What the driver needs of a transport: :meth:`Transport.post`."""

    def post(self, body: bytes) -> Attempt:
        """POST one body; the attempt's outcome, never an exception for network trouble."""
        ...


def answer_from_attempt(attempt: Attempt) -> Answer:
    """The core's view of what :meth:`Transport.post` returned."""
    return Answer(attempt.status_code, attempt.body, attempt.retry_after, attempt.exception,
                  attempt.location, attempt.response, attempt.wire_bytes, attempt.failure)


def run(
    machine: Delivery,
    transport: Poster,
    cancel: Optional[threading.Event] = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    wait: Optional[Callable[[float], bool]] = None,
    sent_at: Callable[[], str] = now_iso,
) -> DeliveryReport:
    """Drive ``machine`` to its end in this thread; returns its report.

    ``wait(until)`` returns False when cancelled (default: :func:`wait_until` on
    ``cancel``); a set ``cancel`` is passed on to the machine before each step.
    """
    cancel = cancel or _NEVER
    if wait is None:
        def wait(until: float) -> bool:
            return wait_until(until, cancel)
    while True:
        if cancel.is_set():
            machine.cancel()
        action = machine.next_action(clock(), sent_at())
        if isinstance(action, Done):
            return action.report
        if isinstance(action, Wait):
            if not wait(action.until):
                machine.cancel()
            continue
        answer = answer_from_attempt(transport.post(action.body))
        if cancel.is_set():
            machine.cancel()
        machine.receive(answer, clock())
