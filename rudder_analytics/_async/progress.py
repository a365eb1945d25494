"""Awaiting the worker threads' progress from an event loop, without a thread per wait.

The worker pool's flush protocol is blocking (a ``Condition``). From a loop we
ask the pool to flush with a deadline of *now* (which never blocks: it sets the
flush target, wakes the workers and says whether everything is settled) and
sleep between checks on a short doubling schedule, so the loop stays free and
its default executor is never used.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Protocol

__all__ = ["POLL_FIRST", "POLL_MAX", "wait_callbacks", "wait_done", "wait_flushed"]

POLL_FIRST = 0.001
"""First pause between two progress checks, in seconds."""
POLL_MAX = 0.02
"""Longest pause between two checks: the most an ``aflush`` can return late."""


class Dispatcher(Protocol):
    """What this module needs of :class:`~rudder_analytics._report.callbacks.CallbackDispatcher`."""

    def wait_idle(self, deadline: float) -> bool:
        """Wait until every queued callback has run; False if ``deadline`` passed first."""
        ...


class FlushablePool(Protocol):
    """What this module needs of :class:`~rudder_analytics._sync.worker.WorkerPool`."""

    def flush(self, deadline: float) -> bool:
        """Send everything queued so far; False if ``deadline`` passed first."""
        ...

    def done(self) -> bool:
        """True when no worker runs and nothing is queued."""
        ...


async def _poll(check: Callable[[], bool], deadline: float) -> bool:
    pause = POLL_FIRST
    while True:
        if check():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, POLL_MAX)


async def wait_flushed(pool: FlushablePool, deadline: float) -> bool:
    """True once everything queued is delivered or dropped; False at ``deadline``.

    Cancelling the awaiting task abandons only this wait: the events stay queued
    and the workers go on delivering them.
    """
    return await _poll(lambda: pool.flush(time.monotonic()), deadline)


async def wait_done(pool: FlushablePool, deadline: float) -> bool:
    """True once the pool's workers have exited with nothing queued; False at ``deadline``."""
    return await _poll(pool.done, deadline)


async def wait_callbacks(dispatcher: Dispatcher, deadline: float) -> bool:
    """True once every queued ``on_drop``/``on_error`` callback has run; False at ``deadline``."""
    return await _poll(lambda: dispatcher.wait_idle(time.monotonic()), deadline)
