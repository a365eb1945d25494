"""Consumer threads: drain the buffer into batches and deliver them.

A batch goes out when ``upload_size`` events are queued (100 when it is
automatic), or ``upload_bytes`` of encoded messages, or ``upload_interval``
seconds after the worker saw its first event, or at once when a flush or a stop
asks for it. The batch takes everything queued up to ``upload_size`` (when set)
and ``upload_bytes``: when the queue is idle that is a prompt small batch, when
it is deep (a producer faster than one request per batch) a large one, so the
cost per request and the GIL hand-offs per request are spread over many events.
Workers are
daemon threads started lazily on the first event (and again, lazily, in a
forked child); the exit hook, not the thread's daemon flag, guarantees
delivery at exit. A worker never dies: each batch runs inside a catch-all
that counts the batch as dropped and logs the error.

Flush bookkeeping: every queued event has a sequence number. A flush for
sequence ``S`` is done when the buffer has handed out every event up to ``S``
and no worker holds an in-flight batch that contains one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from .._build.encoding import decode_message
from .._core.batching import BodyBudget
from ..config import Config
from ..stats import DropReason, Stats
from .buffer import EventBuffer
from .delivery import Deliverer
from .retry import RetryAfterGate

__all__ = ["WorkerPool"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

ABORT_GRACE = 0.2
"""Seconds past a stop's deadline for workers to leave a cut-short retry wait. Measured
from the deadline, not per client, so that an exit shared by many clients stays bounded."""


class WorkerPool:
    """The consumer threads of one client, and the flush and stop protocol."""

    def __init__(self, config: Config, buffer: EventBuffer, stats: Stats) -> None:
        self._config = config
        self._buffer = buffer
        self._stats = stats
        # The one "fits in a request" rule (batch blocks use it too): _core.batching.
        budget = BodyBudget.for_queue(config.upload_size or 2**62, config.upload_bytes,
                                      config.max_request_bytes)
        self._overhead = budget.overhead
        self._max_body = budget.limit
        self._trigger = config.batch_trigger
        self._max_events = config.upload_size or self._max_body  # automatic: bytes bound it
        self.observer: Optional[Callable[[list[bytes]], None]] = None
        """Called with each batch once it is delivered or dropped (the journal's
        acknowledgement, ``persist_dir``); not for a batch cut short by an abort."""
        self._reset()

    def _reset(self) -> None:
        self._progress = threading.Condition(threading.Lock())
        self._inflight: dict[int, tuple[int, int]] = {}  # worker -> (first seq, count)
        self._flush_target = 0
        self._threads: list[threading.Thread] = []
        self._gate = RetryAfterGate()
        self._start_lock = threading.Lock()
        self.started: bool = False
        self.stopping: threading.Event = threading.Event()
        """Set by shutdown: deliver what is queued, then exit."""
        self.abort: threading.Event = threading.Event()
        """Set when shutdown's deadline passes: end retry waits, drop what is left."""

    def reset_after_fork(self) -> None:
        """In a forked child: no threads, fresh locks; workers start on the next event."""
        self._reset()

    # --- starting ----------------------------------------------------------------------

    def ensure_started(self) -> bool:
        """Start the consumer threads once; False if threads cannot start (finalizing)."""
        with self._start_lock:
            if self.started:
                return bool(self._threads)
            self.started = True
            for index in range(self._config.thread):
                deliverer = Deliverer(self._config, self._stats, gate=self._gate)
                thread = threading.Thread(
                    target=self._run, args=(index, deliverer),
                    name=f"rudder-analytics-worker-{index}", daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutting down (CPython #113964)
                    logger.debug("cannot start worker thread", exc_info=True)
                    break
                self._threads.append(thread)
            return bool(self._threads)

    @property
    def gate(self) -> RetryAfterGate:
        """The client's Retry-After hold, shared with its synchronous sends."""
        return self._gate

    def on_worker(self) -> bool:
        """True when called from one of this pool's worker threads."""
        return self._own_index() is not None

    def alive(self) -> bool:
        """True if any consumer thread is running."""
        return any(t.is_alive() for t in self._threads)

    def _own_index(self) -> Optional[int]:
        """Our worker index if the caller runs on one of our workers (an on_error or
        on_drop callback calling flush or shutdown): it must not wait for itself."""
        current = threading.current_thread()
        for index, thread in enumerate(self._threads):
            if thread is current:
                return index
        return None

    # --- the loop ------------------------------------------------------------------------

    def _batch_ready(self) -> bool:
        buffer = self._buffer
        return (
            len(buffer) >= self._trigger
            or buffer.queued_bytes >= self._max_body
            or self._flush_target > buffer.take_count
            or self.stopping.is_set()
        )

    def _run(self, index: int, deliverer: Deliverer) -> None:
        buffer = self._buffer
        wake = buffer.wake
        interval = self._config.upload_interval
        idle_wait = min(interval, 1.0)
        gather_start: Optional[float] = None
        while not self.abort.is_set():
            if not len(buffer):
                if self.stopping.is_set():
                    break
                wake.clear()
                if not len(buffer) and not self.stopping.is_set():
                    wake.wait(idle_wait)
                gather_start = None
                continue
            if gather_start is None:
                gather_start = time.monotonic()
            if not self._batch_ready():
                remaining = gather_start + interval - time.monotonic()
                if remaining > 0:
                    wake.clear()
                    if not self._batch_ready():
                        wake.wait(remaining)
                    continue
            gather_start = time.monotonic()  # what arrives during this send waits from here
            self._send_next(index, deliverer)
        deliverer.transport.close()

    def _take(self, index: int) -> list[bytes]:
        """Take a batch and mark it in flight, atomically with respect to flush checks."""
        with self._progress:
            batch, last_seq = self._buffer.take(
                self._max_events, self._max_body, self._overhead
            )
            if batch:
                self._inflight[index] = (last_seq - len(batch) + 1, len(batch))
            return batch

    def _settle(self, index: int) -> None:
        with self._progress:
            self._inflight.pop(index, None)
            self._progress.notify_all()

    def _send_next(self, index: int, deliverer: Deliverer) -> None:
        batch = self._take(index)
        if not batch:
            return
        try:
            report = deliverer.deliver(batch, cancel=self.abort, defer=True)
            while report.deferred:  # Retry-After outlasts retry_deadline: keep it, send later
                kept = [message for chunk in report.deferred for message in chunk]
                report = deliverer.deliver(kept, cancel=self.abort, defer=True)
        except BaseException:  # a worker never dies: count the batch, go on
            logger.exception("unexpected error delivering a batch; %d events dropped", len(batch))
            self._stats.add_dropped(
                DropReason.RETRIES_EXHAUSTED, len(batch),
                lambda: [decode_message(m) for m in batch],
            )
        finally:
            self._settle(index)
            self._observe(batch)

    def _observe(self, batch: list[bytes]) -> None:
        observer = self.observer
        if observer is not None and not self.abort.is_set():
            observer(batch)

    # --- flush and stop ------------------------------------------------------------------

    def _settled(self, target: int) -> bool:
        if self._buffer.take_count < target:
            return False
        return all(first > target for first, _ in self._inflight.values())

    def request_flush(self) -> None:
        """Ask the workers to send everything queued now, without waiting."""
        with self._progress:
            self._flush_target = max(self._flush_target, self._buffer.put_count)
        self._buffer.wake.set()

    def flush(self, deadline: float) -> bool:
        """Send everything queued so far; False if the deadline passed first."""
        target = self._buffer.put_count
        with self._progress:
            if self._settled(target):
                return True
            self._flush_target = max(self._flush_target, target)
        self._buffer.wake.set()
        if self._own_index() is not None:
            return False  # our own in-flight batch cannot settle while we wait for it
        if not self.alive():
            self._deliver_inline(deadline)
        with self._progress:
            while not self._settled(target):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if not self.alive() and not self._inflight:
                    break  # nothing will make progress: deliver here instead
                self._progress.wait(min(remaining, 0.25))
            else:
                return True
        self._deliver_inline(deadline)
        return self._settled(target)

    def _deliver_inline(self, deadline: float) -> None:
        """Deliver in the calling thread: no worker is running (exit, fork, finalizing)."""
        deliverer: Optional[Deliverer] = None
        while len(self._buffer) and time.monotonic() < deadline and not self.abort.is_set():
            batch = self._take(-1)
            if not batch:
                break
            if deliverer is None:
                deliverer = Deliverer(self._config, self._stats, gate=self._gate)
            try:
                deliverer.deliver(batch, cancel=self.abort, deadline=deadline)
                self._observe(batch)
            except Exception:
                logger.exception("unexpected error delivering a batch")
                self._stats.add_dropped(DropReason.RETRIES_EXHAUSTED, len(batch))
                self._observe(batch)
            except BaseException:  # Ctrl-C in flush()/shutdown(): keep the batch for exit
                if not self._buffer.put_front(batch):
                    self._stats.add_dropped(DropReason.SHUTDOWN, len(batch))
                raise
            finally:
                self._settle(-1)
        if deliverer is not None:
            deliverer.transport.close()

    def retire(self) -> None:
        """Without blocking: deliver what is queued, then let the workers exit."""
        self.stopping.set()
        self._buffer.wake.set()

    def done(self) -> bool:
        """True when no worker runs and nothing is queued."""
        return not self.alive() and not len(self._buffer)

    def finish(self, deadline: float) -> int:
        """Flush and stop by ``deadline``; return how many events were not delivered."""
        lost_before = self._stats.lost_after_enqueue
        self.flush(deadline)
        self.stop(deadline)
        unresolved = self._buffer.put_count - self._stats.queued_resolved  # stuck in flight
        return self._stats.lost_after_enqueue - lost_before + max(0, unresolved)

    def stop(self, deadline: float) -> int:
        """Stop the workers by ``deadline``; drop what is still queued (reason ``shutdown``).

        Returns how many events are still in flight in a thread that did not
        stop in time (a request that outlives its deadline cannot be cut).
        """
        self.stopping.set()
        self._buffer.wake.set()
        own = self._own_index()  # a callback on a worker: that worker stops when it returns
        others = [t for index, t in enumerate(self._threads) if index != own]
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in others):
            self.abort.set()  # cut retry waits short; the in-flight batch is dropped
            self._buffer.wake.set()
            for thread in others:  # a moment to end retry waits; shared by every client
                thread.join(max(0.0, deadline + ABORT_GRACE - time.monotonic()))
        leftover = self._buffer.drain()
        if leftover:
            self._stats.add_dropped(
                DropReason.SHUTDOWN, len(leftover),
                lambda: [decode_message(m) for m in leftover],
            )
        with self._progress:
            return sum(count for index, (_, count) in self._inflight.items() if index != own)
