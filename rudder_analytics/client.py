"""The Client: public calls -> validate and build -> encode once -> enqueue.

Everything in a public call runs in the caller's thread and never touches the
network (outside sync mode, batches, ``flush`` and ``shutdown``): the message
is validated, built and encoded to bytes, then put on the bounded queue. Bad
input raises a :class:`~rudder_analytics.exceptions.ValidationError`; a full
queue or a closed client returns ``(False, message)`` and is counted.
"""

from __future__ import annotations

import logging
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from ._async.methods import AsyncMethods
from ._async.result import CallResult
from ._build.capture import HOOKS as _capture_hooks
from ._build.capture import record
from ._build.encoding import encode_message
from ._build.hooks import run_before_send
from ._build.messages import (
    MessageDict,
    build_alias,
    build_group,
    build_identify,
    build_page,
    build_screen,
    build_track,
    check_message_ids_after_fork,
)
from ._module import peers as _compat
from ._process import lifecycle, signals
from ._process.closing import ClosingMethods
from ._process.shutdown import ShutdownOnce
from ._report.callbacks import CallbackDispatcher
from ._report.lines import Reporter, enable_debug_logging
from ._sync.buffer import EventBuffer
from ._sync.delivery import DeliveryReport as BatchResult
from ._sync.sender import SyncSender
from ._sync.worker import WorkerPool
from .config import Config
from .exceptions import ClientClosedError, MessageTooLargeError, ValidationError
from .stats import DropReason, Stats, StatsSnapshot

if TYPE_CHECKING:
    from .batches import Batch
    from .journal import Journal

__all__ = ["Client"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

Result = CallResult
"""What every event call returns: ``(success, message)``, as rudder-sdk-python does; a
tuple whose ``await`` raises a TypeError saying why (event calls never wait)."""

_as_result = tuple.__new__

def _open_journal(config: Config, buffer: EventBuffer, stats: Stats,
                  pool: WorkerPool) -> Optional[Journal]:
    """``persist_dir``: this client's journal, its acknowledgements wired to the workers."""
    from .journal import attach

    return attach(config, buffer, stats, pool)


class Client(ClosingMethods, AsyncMethods, _compat.PeerAttributes):
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
        # Only the client holds the user's callables; background parts get a config
        # without them and reach the callbacks weakly (no owner kept alive by a pool).
        self._callbacks = CallbackDispatcher(config.on_error, config.on_drop)
        self._reporter = Reporter()
        self._stats = Stats(self._reporter, self._callbacks)
        self._buffer = EventBuffer(config.max_queue_size, config.max_queue_bytes,
                                   config.batch_trigger)
        self._pool = WorkerPool(config.without_callbacks(), self._buffer, self._stats)
        self._journal: Optional[Journal] = None
        self._max_message_size = config.max_message_size
        # normalised by Config to a tuple of callables, or None
        self._before_send = cast(Optional[tuple[Callable[[Any], Any], ...]], config.before_send)
        self._sending = config.send
        self._sync = config.sync_mode
        self._queued = config.send and not config.sync_mode
        """Events go to the queue (the usual case, taken inline in :meth:`_submit`)."""
        self._closed = False
        self.not_delivered: int = 0
        """Events that :meth:`shutdown` could not deliver (dropped during it, or in flight),
        each counted once."""
        self._drops_seen_by_flush = 0
        self._shutdown = ShutdownOnce()
        self._sender = SyncSender(config, self._stats, self._pool.gate)
        if config.debug:
            enable_debug_logging()
        if config.send:  # fork hook for all (sessions); exit hook acts if config.atexit
            lifecycle.register(self)
        if config.handle_sigterm:  # once per process, from the main thread
            signals.install(config)
        # Collected without shutdown(): the workers deliver what is queued, then exit.
        self._finalizer = weakref.finalize(
            self, lifecycle.retire, self._pool,
            config.shutdown_timeout if config.atexit else 0.0,
        )
        self._finalizer.atexit = False
        if config.persist_dir is not None and config.send and not config.sync_mode:
            # last: its thread's recovery scan never competes with the rest of __init__
            self._journal = _open_journal(config, self._buffer, self._stats, self._pool)
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

    def _submit(self, builder: Callable[..., MessageDict], *args: Any) -> Result:
        """Validate, build and encode in the caller's thread, then hand over."""
        pool = self._pool
        if not pool.started:  # until our workers run (and in sync mode): a syscall
            check_message_ids_after_fork()
        try:
            message = builder(*args)
            if self._before_send is not None:
                hooked = run_before_send(self._before_send, message, self._stats)
                if hooked is None:
                    return _as_result(CallResult, (False, message))
                message = hooked
            data = encode_message(message, self._max_message_size)
        except ValidationError as exc:
            reason = (DropReason.TOO_LARGE if isinstance(exc, MessageTooLargeError)
                      else DropReason.INVALID)
            self._stats.add_dropped(reason, 1, enqueued=False, raised=True)
            raise
        if _capture_hooks:
            record(data)
            return _as_result(CallResult, (True, message))
        if self._queued and not self._closed:  # the usual case, without a call more
            journal = self._journal
            if journal is not None:  # before the put: a worker's acknowledgement comes after
                journal.pending_append(data)
                if journal.idle:
                    journal.wake()
            if self._buffer.put(data):
                if not pool.started:
                    pool.ensure_started()
                return _as_result(CallResult, (True, message))
            return _as_result(CallResult, self._refused(message, data))
        return _as_result(CallResult, self._dispatch(message, data))

    def _dispatch(self, message: MessageDict, data: bytes) -> tuple[bool, MessageDict]:
        """Every case but the usual one: closed, not sending, sync mode."""
        if self._closed:
            self._stats.add_dropped(DropReason.AFTER_SHUTDOWN, 1, lambda: [message],
                                    enqueued=False)
            if self.config.raise_on_error:
                raise ClientClosedError("the client was shut down; the event was not sent")
            return False, message
        if not self._sending:
            return True, message
        ok = self._sender.send([data]).ok  # sync mode: the one case left
        self._callbacks.wait_idle(time.monotonic() + self.config.sync_deadline)
        return ok, message

    def _refused(self, message: MessageDict, data: bytes) -> tuple[bool, MessageDict]:
        """The queue was full (or closed): wait for room (``on_full="block"``), spill to
        the journal, or drop and count."""
        if self._wait_for_room(data):
            if not self._pool.started:
                self._pool.ensure_started()
            return True, message
        journal = self._journal
        if journal is not None and journal.spill(data):  # on disk; read back for sending
            return True, message
        reason = DropReason.AFTER_SHUTDOWN if self._buffer.closed else DropReason.QUEUE_FULL
        self._stats.add_dropped(reason, 1, lambda: [message], enqueued=False)
        return False, message

    def _wait_for_room(self, data: bytes) -> bool:
        """``on_full="block"``: wait up to ``block_timeout`` for room in the full queue.

        Never on a worker or the callbacks thread (they are what makes room), nor
        when no worker can run; False when there was no room in time.
        """
        config = self.config
        if config.on_full != "block" or self._buffer.closed:
            return False
        if self._callbacks.in_callback() or self._pool.on_worker():
            return False
        if not self._pool.ensure_started():
            return False
        return self._buffer.put_wait(data, time.monotonic() + config.block_timeout)

    # --- batches ----------------------------------------------------------------------

    def batch(self) -> Batch:
        """A batch block: ``with client.batch() as batch: batch.track(...)``.

        The calls share ``batch.context`` and ``batch.integrations``; on leaving
        the block normally they are delivered synchronously, in as few requests
        as the size limits allow. ``batch.result`` says what happened.
        """
        from .batches import Batch

        return Batch(client=self)

    def send_batch(self, batch: Batch) -> BatchResult:
        """Deliver ``batch`` now, in this thread, keeping its message ids (``client.send``).

        Sent in as few requests as the server's size limit allows, each within
        ``sync_deadline``, with the workers' retry policy and ``Retry-After`` hold.
        """
        messages = batch.encoded()
        if self._closed:
            self._stats.add_dropped(DropReason.AFTER_SHUTDOWN, len(messages),
                                    batch.messages.copy, enqueued=False)
            if self.config.raise_on_error:
                raise ClientClosedError("the client was shut down; the batch was not sent")
            batch.result = BatchResult(failed=len(messages))
            return batch.result
        if _capture_hooks:  # rudder_analytics.testing is capturing: record, send nothing
            for encoded in messages:
                record(encoded)
            result = BatchResult(delivered=len(messages))
        else:
            result = self._sender.send_all(messages) if self._sending else BatchResult()
        batch.result = result
        self._callbacks.wait_idle(time.monotonic() + self.config.sync_deadline)
        return self._sender.raise_if_asked(result)

    # --- stats (flush and shutdown: _process/closing.py) ----------------------------


    def stats(self) -> StatsSnapshot:
        """Counts since the client was built (or since fork, in a child)."""
        enqueued, depth, size = self._buffer.sizes()
        journal = self._journal
        if journal is None:
            return self._stats.snapshot(enqueued, depth, size)
        return self._stats.snapshot(enqueued, depth, size, journal.persisted, journal.recovered,
                                    journal.not_persisted)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has been called."""
        return self._closed

    def _after_fork_in_child(self) -> None:
        """A forked child starts empty: the parent sends what it had queued."""
        self._buffer.reset_after_fork()
        self._pool.reset_after_fork()
        self._stats.reset_after_fork()
        self._callbacks.reset_after_fork()
        self._sender.after_fork(self._pool.gate)
        self._drops_seen_by_flush = 0
        self._shutdown.after_fork()
        if self._journal is not None:  # never the parent's files: a journal of our own
            self._journal.forget_after_fork()
            self._journal = _open_journal(self.config, self._buffer, self._stats, self._pool)
