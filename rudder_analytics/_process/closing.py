"""``flush()``, ``shutdown()`` and the exit hook's side of a client: every wait bounded.

Mixed into :class:`~rudder_analytics.client.Client`, which builds the parts
declared below. ``shutdown()`` runs once (:class:`.shutdown.ShutdownOnce`): from
several threads, from a callback, and again after a Ctrl-C. At exit all clients
share one deadline (:mod:`.lifecycle`).
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import TYPE_CHECKING, Optional

from .._report.lines import emit
from . import lifecycle
from .shutdown import ShutdownOnce

if TYPE_CHECKING:
    from .._report.callbacks import CallbackDispatcher
    from .._report.lines import Reporter
    from .._sync.buffer import EventBuffer
    from .._sync.worker import WorkerPool
    from ..config import Config
    from ..journal import Journal
    from ..stats import Stats

__all__ = ["ClosingMethods"]

logger: logging.Logger = logging.getLogger("rudder_analytics")


class ClosingMethods:
    """Flush, shutdown and the exit hook, over the parts a client owns."""

    config: Config
    not_delivered: int
    _sending: bool
    _sync: bool
    _closed: bool
    _drops_seen_by_flush: int
    _pool: WorkerPool
    _buffer: EventBuffer
    _stats: Stats
    _callbacks: CallbackDispatcher
    _reporter: Reporter
    _journal: Optional[Journal]
    _shutdown: ShutdownOnce
    _finalizer: weakref.finalize[..., object]

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Send queued events now and wait until they are delivered or dropped.

        Returns True only if every event queued before the call was delivered and
        nothing tracked since the previous ``flush()`` (or since the client started)
        was dropped, for any reason (``queue_full`` included; a call that raised
        ``ValidationError`` told its caller already and does not count); False as well if
        ``timeout`` seconds (``None``: ``flush_timeout``) passed first. The callbacks
        for what it delivered have run when it returns. Never raises because
        delivery failed.
        """
        if not self._sending:
            return True
        budget = self.config.flush_timeout if timeout is None else max(0.0, timeout)
        deadline = time.monotonic() + budget
        baseline = self._drops_seen_by_flush  # drops until the previous flush
        done = True if self._sync else self._pool.flush(deadline)
        self._callbacks.wait_idle(deadline)
        self._reporter.flush()
        dropped = self._stats.unraised_drops
        self._drops_seen_by_flush = max(self._drops_seen_by_flush, dropped)
        return done and dropped == baseline

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Flush, then stop the workers; later calls are refused. Idempotent.

        Waits at most ``timeout`` seconds (``None``: ``shutdown_timeout``).
        Returns True if everything queued was delivered. Safe to call from a
        callback (it then returns False at once rather than wait for itself) and
        from several threads. If it is interrupted (Ctrl-C), what it had not
        delivered stays for the exit hook.
        """
        budget = self.config.shutdown_timeout if timeout is None else max(0.0, timeout)
        return self._shutdown_by(time.monotonic() + budget)

    def _shutdown_by(self, deadline: float, when: str = "shutdown") -> bool:
        self._closed = True
        return self._shutdown.run(deadline, lambda: self._finish_and_leave(deadline, when),
                                  self._reentrant)

    def _finish_and_leave(self, deadline: float, when: str) -> bool:
        ok = self._finish(deadline, when)
        lifecycle.forget(self)  # only once it ran to its end: Ctrl-C leaves us in the hook
        self._finalizer.detach()
        return ok

    def _reentrant(self) -> bool:
        """True on a thread a shutdown must not wait for: callbacks and workers."""
        return self._callbacks.in_callback() or self._pool.on_worker()

    def _finish(self, deadline: float, when: str) -> bool:
        """Deliver what is queued by ``deadline``, stop, and account for each event once."""
        if self._sync or not self._sending:
            self._callbacks.wait_idle(deadline)
            self._reporter.flush()
            return True
        stats = self._stats
        lost_before = stats.lost_after_enqueue
        flushed = self._pool.flush(deadline)
        self._pool.stop(deadline)
        if self._journal is not None:  # what is undelivered stays on disk for the next process
            self._journal.close(deadline)
        self._callbacks.wait_idle(deadline)
        unresolved = self._buffer.put_count - stats.queued_resolved  # stuck in flight
        not_delivered = stats.lost_after_enqueue - lost_before + max(0, unresolved)
        self.not_delivered = not_delivered
        self._reporter.flush()
        if not_delivered:
            emit(f"{not_delivered:,} event(s) not delivered at {when} "
                 f"(data plane {self.config.data_plane_url})")
        else:
            logger.info("rudder_analytics shut down: delivered %d, dropped %d",
                        stats.delivered, sum(stats.dropped.values()))
        return flushed and not_delivered == 0

    join = shutdown
    """Alias of :meth:`shutdown`, kept for code written for rudder-sdk-python."""

    # --- lifecycle hooks (see lifecycle.py) ---------------------------------------

    def exit_timeout(self) -> float:
        """Seconds this client may spend delivering at exit; 0 when it takes no part."""
        if not self.config.atexit or self._sync or not self._sending:
            return 0.0
        if self._shutdown.result is not None:
            return 0.0
        return self.config.shutdown_timeout

    def begin_exit(self) -> None:
        """Start sending what is queued without waiting, so clients drain in parallel."""
        self._pool.request_flush()

    def finish_exit(self, deadline: float) -> None:
        """The exit hook: deliver by the shared ``deadline``, say what was lost."""
        self._shutdown_by(deadline, when="exit")
