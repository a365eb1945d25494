"""The Client's asyncio methods: ``aflush``, ``ashutdown``, ``asend``, ``async with``.

They hold no thread while they wait, work on whichever loop awaits them (no
per-loop state is kept, so one client serves successive ``asyncio.run()``
calls) and can be cancelled: cancelling abandons only the wait, and queued
events stay queued. ``aflush``/``ashutdown`` await the worker threads'
progress (:mod:`.progress`); ``asend`` delivers a batch through the asyncio
driver on ``httpx`` (the ``async`` extra), or, without it, hands the batch to
the worker threads and awaits them.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

from .._build.capture import capturing
from .._core.batching import BodyBudget, chunk_messages
from .._core.delivery import Delivery, HoldLike
from .._core.outcomes import DeliveryReport
from .._core.policy import RetryPolicy
from .._report.sink import StatsSink
from ..stats import DropReason
from . import driver
from .progress import wait_callbacks, wait_done, wait_flushed
from .transport import AsyncTransport, httpx_available

if TYPE_CHECKING:
    from .._report.callbacks import CallbackDispatcher
    from .._report.lines import Reporter
    from .._sync.buffer import EventBuffer
    from .._sync.worker import WorkerPool
    from ..batches import Batch, BatchResult
    from ..config import Config
    from ..stats import Stats

__all__ = ["AsyncMethods"]


class _Host(Protocol):
    """The parts of :class:`~rudder_analytics.client.Client` these methods use."""

    config: Config
    _callbacks: CallbackDispatcher
    _reporter: Reporter
    _drops_seen_by_flush: int
    _pool: WorkerPool
    _buffer: EventBuffer
    _stats: Stats
    _sync: bool
    _sending: bool

    @property
    def closed(self) -> bool: ...

    def shutdown(self, timeout: Optional[float] = None) -> bool: ...

    def send(self, batch: Batch) -> BatchResult: ...




class AsyncMethods:
    """Mixed into :class:`~rudder_analytics.client.Client`."""

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self.ashutdown()

    async def aflush(self, timeout: Optional[float] = None) -> bool:
        """:meth:`Client.flush` for coroutines: the loop stays free while workers deliver.

        Returns what :meth:`Client.flush` returns: True only if every event queued
        before the call was delivered and nothing was dropped since the previous flush;
        False as well if ``timeout`` seconds (``None``: ``flush_timeout``) passed.
        The callbacks for what it delivered have run when it returns.
        """
        host = cast(_Host, self)
        if not host._sending:
            return True
        budget = host.config.flush_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        baseline = host._drops_seen_by_flush  # as flush(): drops until the previous flush
        done = True if host._sync else await _flush_on_workers(host, deadline)
        await wait_callbacks(host._callbacks, deadline)
        host._reporter.flush()
        dropped = host._stats.unraised_drops
        host._drops_seen_by_flush = max(host._drops_seen_by_flush, dropped)
        return done and dropped == baseline

    async def ashutdown(self, timeout: Optional[float] = None) -> bool:
        """:meth:`Client.shutdown` for coroutines; returns within about ``timeout`` seconds
        (``None``: ``shutdown_timeout``) even when the data plane hangs."""
        host = cast(_Host, self)
        if host.closed or host._sync or not host._sending:
            return host.shutdown(timeout)
        budget = host.config.shutdown_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        lost_before = host._stats.lost_after_enqueue
        flushed = await _flush_on_workers(host, deadline)
        host._pool.retire()  # workers exit once the queue is empty; nothing blocks here
        await wait_done(host._pool, deadline)
        await wait_callbacks(host._callbacks, deadline)
        # What is left is quick: the workers are gone, callbacks idle, the queue empty
        # (unless the deadline passed: then it only stops and counts what is left).
        ok = host.shutdown(max(0.0, deadline - time.monotonic()))
        return ok and flushed and host._stats.lost_after_enqueue == lost_before

    async def asend(self, batch: Batch) -> BatchResult:
        """:meth:`Client.send` for coroutines: deliver ``batch`` now, keeping its message ids."""
        host = cast(_Host, self)
        if host.closed or not host.config.send or capturing():
            return host.send(batch)  # no network involved: refused, dry run or captured
        if httpx_available():
            report = await _send_on_loop(host, batch.encoded(), self._loop_hold())
        else:
            report = await _send_on_workers(host, batch.encoded())
        result = _as_batch_result(report)
        batch.result = result
        if not result.ok and host.config.raise_on_error:
            error = result.first_error()
            if error is not None:
                raise error
        return result

    def _loop_hold(self) -> HoldLike:
        """The client's one ``Retry-After`` hold, shared with its workers and sync sends
        (its lock is held for a comparison only: it never blocks the loop)."""
        return cast(_Host, self)._pool.gate


async def _flush_on_workers(host: _Host, deadline: float) -> bool:
    pool = host._pool
    if len(host._buffer) and not pool.alive() and not pool.ensure_started():
        # No thread can run (interpreter finalizing): deliver here, bounded by the deadline.
        return pool.flush(deadline)
    return await wait_flushed(pool, deadline)


async def _send_on_loop(host: _Host, messages: list[bytes], hold: HoldLike) -> DeliveryReport:
    config = host.config
    chunks = chunk_messages(messages, BodyBudget.for_batch(config.max_request_bytes))
    result = DeliveryReport()
    sink = StatsSink(host._stats, queued=False, url=config.batch_url)
    policy = RetryPolicy.from_config(config)
    async with AsyncTransport(config) as transport:
        for index, chunk in enumerate(chunks):
            deadline = time.monotonic() + config.sync_deadline
            machine = Delivery(chunk, policy, deadline=deadline, hold=hold, sink=sink,
                               url=config.batch_url, attempt_timeout=transport.attempt_timeout)
            try:
                report = await driver.run(machine, transport, deadline=deadline)
            except asyncio.CancelledError:
                left = sum(len(c) for c in chunks[index + 1:])
                host._stats.add_dropped(DropReason.SHUTDOWN, left, enqueued=False)
                raise
            result.delivered += report.delivered
            result.failed += report.failed
            result.requests.extend(report.requests)
    return result


async def _send_on_workers(host: _Host, messages: list[bytes]) -> DeliveryReport:
    """Without httpx: queue the batch for the worker threads and await their progress."""
    stats = host._stats
    lost_before = stats.lost_after_enqueue
    accepted = 0
    for message in messages:
        if host._buffer.put(message):
            accepted += 1
        else:
            stats.add_dropped(DropReason.QUEUE_FULL, 1, enqueued=False)
    result = DeliveryReport(failed=len(messages) - accepted)
    if accepted:
        host._pool.ensure_started()
        done = await _flush_on_workers(host, time.monotonic() + host.config.sync_deadline)
        lost = min(accepted, stats.lost_after_enqueue - lost_before) if done else accepted
        result.delivered = accepted - lost
        result.failed += lost
    return result


def _as_batch_result(report: DeliveryReport) -> BatchResult:
    """The same report as the ``BatchResult`` type that :meth:`Client.send` returns.

    Phase 1 only: once ``delivery.py`` re-exports the core's report types, this is
    the identity and can go.
    """
    from .._sync.delivery import RequestResult
    from ..batches import BatchResult as Legacy

    requests = [RequestResult(r.status_code, r.body, r.messages, r.delivered, r.attempts,
                              r.error) for r in report.requests]
    return Legacy(delivered=report.delivered, failed=report.failed, requests=requests)
