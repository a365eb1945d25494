"""The asyncio driver: runs a core :class:`~rudder_analytics._core.delivery.Delivery`
on the event loop that awaits it.

Waits are ``asyncio.sleep``; no thread is held. Cancelling the awaiting task
abandons the delivery: what is not delivered is dropped with reason
``shutdown`` and counted, then the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Optional, Protocol

from .._build.messages import now_iso
from .._core.delivery import Answer, Delivery, Done, Wait
from .._core.outcomes import DeliveryReport

__all__ = ["AsyncPoster", "run"]


class AsyncPoster(Protocol):
    """What the driver needs of a transport."""

    async def post(self, body: bytes, timeout: Optional[float] = None) -> Answer:
        """POST one body within ``timeout`` seconds; the answer, never an exception."""
        ...


async def run(
    machine: Delivery,
    transport: AsyncPoster,
    *,
    deadline: Optional[float] = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    sent_at: Callable[[], str] = now_iso,
) -> DeliveryReport:
    """Drive ``machine`` to its end on this loop; each POST is bounded by ``deadline``."""
    try:
        while True:
            action = machine.next_action(clock(), sent_at())
            if isinstance(action, Done):
                return action.report
            if isinstance(action, Wait):
                while (remaining := action.until - clock()) > 0:
                    await sleep(remaining)
                continue
            timeout = None if deadline is None else max(0.001, deadline - clock())
            answer = await transport.post(action.body, timeout)
            machine.receive(answer, clock())
    except asyncio.CancelledError:
        machine.abandon()
        raise
