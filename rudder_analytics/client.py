"""The Client: public calls -> validate and build -> encode once -> enqueue.

Everything in a public call runs in the caller's thread and never touches the
network (outside sync mode, batches, ``flush`` and ``shutdown``): the message
is validated, built and encoded to bytes, then put on the bounded queue. Bad
input raises a :class:`~rudder_analytics.exceptions.ValidationError`; a full
queue or a closed client returns ``(False, message)`` and is counted.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import lifecycle, signals
from .buffer import EventBuffer
from .config import Config
from .delivery import Deliverer, DeliveryReport
from .encoding import encode_message
from .exceptions import ClientClosedError, MessageTooLargeError, ValidationError
from .messages import (
    Message,
    build_alias,
    build_group,
    build_identify,
    build_page,
    build_screen,
    build_track,
    check_message_ids_after_fork,
)
from .stats import DropReason, Stats, StatsSnapshot
from .worker import WorkerPool

if TYPE_CHECKING:
    from .batches import Batch, BatchResult

__all__ = ["Client"]

logger = logging.getLogger("rudder_analytics")

Result = tuple[bool, Message]
"""What every event call returns: ``(success, message)``, as rudder-sdk-python does."""

# Capture hooks installed by rudder_analytics.testing. While any is installed, every
# message that any client builds is handed, encoded as it would be sent, to each hook and
# is NOT queued or sent.
_capture_hooks: list[Callable[[bytes], None]] = []


def _logging_configured() -> bool:
    """True if a WARNING from our logger would reach some handler."""
    current: Optional[logging.Logger] = logger
    while current is not None:
        if any(not isinstance(h, logging.NullHandler) for h in current.handlers):
            return True
        current = current.parent if current.propagate else None
    return False


def _enable_debug_logging() -> None:
    """``debug=True``: DEBUG on our logger, with a stderr handler only if nothing would print."""
    logger.setLevel(logging.DEBUG)
    has_output = any(not isinstance(h, logging.NullHandler) for h in logger.handlers)
    if not has_output and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


class Client:
    """A RudderStack client: queues events and delivers them from background threads.

    ``Client(write_key, data_plane_url, **options)``; the options are those of
    :class:`~rudder_analytics.config.Config` (``host`` and ``dataPlaneUrl`` are
    accepted for ``data_plane_url``). Missing values are read from
    ``RUDDER_WRITE_KEY`` and ``RUDDER_DATA_PLANE_URL``. Raises
    :class:`~rudder_analytics.exceptions.ConfigurationError` for a bad option.

    Use it as a context manager to shut down (and deliver) on leaving.
    """

    def __init__(
        self, write_key: Optional[str] = None, data_plane_url: Optional[str] = None,
        **options: Any,
    ) -> None:
        config = Config.build(write_key, data_plane_url, **options)
        self.config = config
        self._stats = Stats(config.on_drop)
        self._buffer = EventBuffer(config.max_queue_size, config.max_queue_bytes,
                                   config.upload_size)
        self._pool = WorkerPool(config, self._buffer, self._stats)
        self._max_message_size = config.max_message_size
        self._send = config.send
        self._sync = config.sync_mode
        self._closed = False
        self.not_delivered = 0
        """Events that :meth:`shutdown` could not deliver (dropped during it, or in flight)."""
        self._shutdown_result: Optional[bool] = None
        self._shutdown_lock = threading.Lock()
        self._local = threading.local()
        if config.debug:
            _enable_debug_logging()
        if config.send:  # fork hook for all (sessions); exit hook acts if config.atexit
            lifecycle.track(self)
        if config.handle_sigterm:  # once per process, from the main thread
            signals.install(config)
        # Collected without shutdown(): the workers deliver what is queued, then exit.
        self._finalizer = weakref.finalize(
            self, lifecycle.retire, self._pool,
            config.shutdown_timeout if config.atexit else 0.0,
        )
        self._finalizer.atexit = False
        logger.info(
            "rudder_analytics client for %s (%s mode)", config.data_plane_url,
            "sync" if config.sync_mode else "background",
        )

    def __repr__(self) -> str:
        return (f"Client(data_plane_url={self.config.data_plane_url!r}, "
                f"sync_mode={self._sync}, closed={self._closed})")

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.shutdown()

    # --- event calls ------------------------------------------------------------------

    def track(
        self,
        user_id: Any = None,
        event: Optional[str] = None,
        properties: Optional[dict[str, Any]] = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
    ) -> Result:
        """Record an action ``event`` done by a user, with its ``properties``.

        ``user_id`` or ``anonymous_id`` is required. ``timestamp`` (datetime,
        ISO-8601 string or epoch seconds) is the event time when it is not now.
        Returns ``(queued, message)``; raises ValidationError for bad input.
        """
        return self._submit(build_track, user_id, event, properties, context, timestamp,
                            anonymous_id, integrations, message_id)

    def identify(
        self,
        user_id: Any = None,
        traits: Optional[dict[str, Any]] = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
    ) -> Result:
        """Tie a user to their ``traits`` (also sent as ``context.traits``)."""
        return self._submit(build_identify, user_id, traits, context, timestamp, anonymous_id,
                            integrations, message_id)

    def page(
        self,
        user_id: Any = None,
        category: Optional[str] = None,
        name: Optional[str] = None,
        properties: Optional[dict[str, Any]] = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
    ) -> Result:
        """Record a page view ``name`` in ``category``, with its ``properties``."""
        return self._submit(build_page, user_id, category, name, properties, context, timestamp,
                            anonymous_id, integrations, message_id)

    def screen(
        self,
        user_id: Any = None,
        category: Optional[str] = None,
        name: Optional[str] = None,
        properties: Optional[dict[str, Any]] = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
    ) -> Result:
        """Record a mobile screen view, shaped like :meth:`page`."""
        return self._submit(build_screen, user_id, category, name, properties, context,
                            timestamp, anonymous_id, integrations, message_id)

    def group(
        self,
        user_id: Any = None,
        group_id: Any = None,
        traits: Optional[dict[str, Any]] = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        anonymous_id: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
    ) -> Result:
        """Associate a user with the group ``group_id`` and its ``traits``."""
        return self._submit(build_group, user_id, group_id, traits, context, timestamp,
                            anonymous_id, integrations, message_id)

    def alias(
        self,
        previous_id: Any = None,
        user_id: Any = None,
        context: Optional[dict[str, Any]] = None,
        timestamp: Any = None,
        integrations: Optional[dict[str, Any]] = None,
        message_id: Any = None,
        anonymous_id: Any = None,
    ) -> Result:
        """Merge the identity ``previous_id`` into ``user_id``."""
        return self._submit(build_alias, previous_id, user_id, context, timestamp, integrations,
                            message_id, anonymous_id)

    # --- the pipeline -----------------------------------------------------------------

    def _submit(self, builder: Callable[..., Message], *args: Any) -> Result:
        """Validate, build and encode in the caller's thread, then hand over."""
        if not self._pool.started:  # until our workers run (and in sync mode): a syscall
            check_message_ids_after_fork()
        try:
            message = builder(*args)
            data = encode_message(message, self._max_message_size)
        except ValidationError as exc:
            reason = (DropReason.TOO_LARGE if isinstance(exc, MessageTooLargeError)
                      else DropReason.INVALID)
            self._stats.add_dropped(reason, 1, enqueued=False)
            raise
        if _capture_hooks:
            for hook in _capture_hooks:
                hook(data)
            return True, message
        return self._dispatch(message, data)

    def _dispatch(self, message: Message, data: bytes) -> Result:
        if self._closed:
            self._stats.add_dropped(DropReason.AFTER_SHUTDOWN, 1, lambda: [message],
                                    enqueued=False)
            if self.config.raise_on_error:
                raise ClientClosedError("the client was shut down; the event was not sent")
            return False, message
        if not self._send:
            return True, message
        if self._sync:
            return self._deliver_now([data]).ok, message
        if not self._buffer.put(data):
            reason = DropReason.AFTER_SHUTDOWN if self._buffer.closed else DropReason.QUEUE_FULL
            self._stats.add_dropped(reason, 1, lambda: [message], enqueued=False)
            return False, message
        if not self._pool.started:
            self._pool.ensure_started()
        return True, message

    def _deliverer(self) -> Deliverer:
        """This thread's deliverer for synchronous sends (sessions are per thread)."""
        deliverer: Optional[Deliverer] = getattr(self._local, "deliverer", None)
        if deliverer is None:
            deliverer = Deliverer(self.config, self._stats)
            self._local.deliverer = deliverer
        return deliverer

    def _deliver_now(self, messages: list[bytes]) -> DeliveryReport:
        """Deliver in the caller's thread within ``sync_deadline``, retries included."""
        deadline = time.monotonic() + self.config.sync_deadline
        report = self._deliverer().deliver(messages, deadline=deadline)
        if not report.ok and self.config.raise_on_error:
            error = report.first_error()
            if error is not None:
                raise error
        return report

    # --- batches ----------------------------------------------------------------------

    def batch(self) -> Batch:
        """A batch block: ``with client.batch() as batch: batch.track(...)``.

        The calls share ``batch.context`` and ``batch.integrations``; on leaving
        the block normally they are delivered synchronously, in as few requests
        as the size limits allow. ``batch.result`` says what happened.
        """
        from .batches import Batch

        return Batch(client=self)

    def send(self, batch: Batch) -> BatchResult:
        """Deliver a batch now (synchronously), keeping its message ids."""
        from .batches import send_batch

        return send_batch(self, batch)

    # --- flush, shutdown, stats -------------------------------------------------------

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Send queued events now and wait until they are delivered or dropped.

        Returns True if every event queued before the call was delivered, False
        if some were dropped or ``timeout`` seconds passed first (``None``: the
        retry deadline). Never raises because delivery failed.
        """
        if self._sync or not self._send:
            return True
        budget = self.config.retry_deadline if timeout is None else max(0.0, timeout)
        lost_before = self._stats.lost_after_enqueue
        done = self._pool.flush(time.monotonic() + budget)
        return done and self._stats.lost_after_enqueue == lost_before

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        """Flush, then stop the workers; later calls are refused. Idempotent.

        Waits at most ``timeout`` seconds (``None``: ``shutdown_timeout``).
        Returns True if everything queued was delivered.
        """
        with self._shutdown_lock:
            if self._shutdown_result is not None:
                return self._shutdown_result
            self._closed = True
            lifecycle.forget(self)
            self._finalizer.detach()
            budget = self.config.shutdown_timeout if timeout is None else max(0.0, timeout)
            deadline = time.monotonic() + budget
            if self._sync or not self._send:
                self._shutdown_result = True
                return True
            lost_before = self._stats.lost_after_enqueue
            flushed = self._pool.flush(deadline)
            in_flight = self._pool.stop(deadline)
            not_delivered = in_flight + self._stats.lost_after_enqueue - lost_before
            ok = flushed and not_delivered == 0
            self.not_delivered = not_delivered
            stats = self.stats()
            if not_delivered:
                logger.warning(
                    "rudder_analytics shut down with %d event(s) not delivered "
                    "(delivered %d, dropped %d in all)",
                    not_delivered, stats["delivered"], stats["dropped_total"],
                )
            else:
                logger.info("rudder_analytics shut down: delivered %d, dropped %d",
                            stats["delivered"], stats["dropped_total"])
            self._shutdown_result = ok
            return ok

    join = shutdown
    """Alias of :meth:`shutdown`, kept for code written for rudder-sdk-python."""

    def stats(self) -> StatsSnapshot:
        """Counts since the client was built (or since fork, in a child)."""
        enqueued, depth, size = self._buffer.sizes()
        return self._stats.snapshot(enqueued, depth, size)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has been called."""
        return self._closed

    # --- lifecycle hooks --------------------------------------------------------------

    def _at_exit(self) -> None:
        """The exit hook: deliver within ``shutdown_timeout``, report what was lost."""
        if not self.config.atexit or self._sync:
            return
        try:
            self.shutdown(self.config.shutdown_timeout)
        except Exception:  # never let the exit hook raise
            logger.exception("error delivering events at exit")
            return
        if self.not_delivered and not _logging_configured():
            sys.stderr.write(
                f"rudder_analytics: {self.not_delivered} event(s) not delivered at exit "
                f"(data plane {self.config.data_plane_url})\n"
            )

    def _after_fork_in_child(self) -> None:
        """A forked child starts empty: the parent sends what it had queued."""
        self._buffer.reset_after_fork()
        self._pool.reset_after_fork()
        self._stats.reset_after_fork()
        self._local = threading.local()
        self._shutdown_lock = threading.Lock()
