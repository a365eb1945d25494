"""User callbacks (``on_error``, ``on_drop``) run here: on their own thread, outside every lock.

A callback may block, raise anything (``SystemExit`` and ``KeyboardInterrupt``
too) or call back into the client: ``track()``, ``flush()``, ``shutdown()``.
Run on the caller's thread it would block ``track()``; on a worker it could
kill or stall delivery; under a lock it would deadlock. So each callback is
queued here and run in order by one daemon thread per client, started on first
use and ended after a second without work. ``flush()`` and ``shutdown()`` wait
(within their deadline) until the callbacks for what they delivered have run.

Two bounds keep this safe whatever a callback does:

- at most :data:`MAX_PENDING` messages wait for callbacks; past that, events
  are still counted and reported, and the overflow is said in one line;
- a drop or failure caused by a call made *inside* a callback is counted but
  not handed to a callback again, so ``on_drop`` calling ``track()`` on a full
  queue cannot loop.

The client holds its dispatcher strongly; background parts (workers, stats,
a pool retired after the client was collected) reach it only weakly, so a
callback that is a bound method of the client's owner keeps nothing alive.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Optional

from ..exceptions import DeliveryError
from .lines import emit

__all__ = ["MAX_PENDING", "CallbackDispatcher", "error_callback_arity"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

MAX_PENDING = 10_000
"""Messages that may wait for callbacks at once."""

_LINGER = 1.0
"""Seconds the callback thread waits for more work before it ends."""

Messages = Callable[[], list[dict[str, Any]]]


def error_callback_arity(callback: Optional[Callable[..., Any]]) -> int:
    """4 for the seed's ``on_error(status, body, exception, response)``, else 2.

    The two-argument form is ``on_error(error, batch)``. A callback that takes
    four or more positional parameters (and no ``*args``) gets the seed's form.
    """
    if callback is None:
        return 2
    try:
        signature = inspect.signature(callback)
    except (TypeError, ValueError):
        return 2
    positional = 0
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return 2
        if parameter.kind in (inspect.Parameter.POSITIONAL_ONLY,
                              inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return 4 if positional >= 4 else 2


class CallbackDispatcher:
    """Runs one client's ``on_error`` and ``on_drop`` calls, in order, off every other thread."""

    def __init__(
        self,
        on_error: Optional[Callable[..., Any]] = None,
        on_drop: Optional[Callable[[str, list[dict[str, Any]]], Any]] = None,
        sink: Callable[[str], None] = emit,
    ) -> None:
        self._sink = sink
        self._on_error = on_error
        self._on_drop = on_drop
        self._arity = error_callback_arity(on_error)
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[Callable[[], None], int]] = deque()
        self._pending_messages = 0
        self._overflow = 0
        self._thread: Optional[threading.Thread] = None
        self._running = False
        self._wake = threading.Event()
        self._idle = threading.Condition(self._lock)

    def reset_after_fork(self) -> None:
        """A forked child: no thread, nothing pending (those were the parent's)."""
        self._reset()

    @property
    def active(self) -> bool:
        """True if any callback is configured."""
        return self._on_error is not None or self._on_drop is not None

    def in_callback(self) -> bool:
        """True on the callback thread itself."""
        thread = self._thread
        return thread is not None and thread is threading.current_thread()

    # --- submitting (any thread) -----------------------------------------------------

    def dropped(self, reason: str, count: int, messages: Optional[Messages]) -> None:
        """Queue ``on_drop(reason, messages)``."""
        callback = self._on_drop
        if callback is None or self.in_callback():
            return
        source = messages or list

        def call() -> None:
            callback(reason, source())

        self._submit(call, count)

    def failed(self, error: DeliveryError, messages: Messages, count: int) -> None:
        """Queue ``on_error`` in the form it takes, for one failed request's messages."""
        callback = self._on_error
        if callback is None or self.in_callback():
            return
        if self._arity == 4:
            def call() -> None:
                callback(error.status_code, error.body, error.exception or error, error.response)
        else:
            def call() -> None:
                callback(error, messages())
        self._submit(call, count)

    def _submit(self, call: Callable[[], None], count: int) -> None:
        weight = max(count, 1)
        with self._lock:
            if self._pending_messages + weight > MAX_PENDING:
                self._overflow += count
                return
            self._pending.append((call, weight))
            self._pending_messages += weight
            start = self._thread is None
            if start:
                self._thread = threading.Thread(
                    target=self._run, name="rudder-analytics-callbacks", daemon=True)
        if start:
            self._start()
        else:
            self._wake.set()

    def _start(self) -> None:
        thread = self._thread
        assert thread is not None
        try:
            thread.start()
        except RuntimeError:  # interpreter finalizing (CPython #113964): run nothing
            with self._lock:
                self._pending.clear()
                self._pending_messages = 0
                self._thread = None
                self._idle.notify_all()

    # --- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.clear()
            self._run_pending()
            if self._wake.wait(_LINGER):
                continue
            with self._lock:
                if not self._pending:
                    self._thread = None
                    self._idle.notify_all()
                    return

    def _run_pending(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    self._idle.notify_all()
                    overflow, self._overflow = self._overflow, 0
                    break
                call, weight = self._pending.popleft()
                self._running = True
            try:
                call()
            except BaseException as exc:  # a callback must not end this thread
                logger.error("rudder_analytics: a callback raised %s; ignored",
                             type(exc).__name__, exc_info=True)
            finally:
                with self._lock:
                    self._pending_messages -= weight
        if overflow:
            self._sink(f"callbacks fell behind: {overflow:,} dropped or failed event(s) "
                 "were counted but not passed to on_drop/on_error")

    # --- waiting ---------------------------------------------------------------------

    def wait_idle(self, deadline: float) -> bool:
        """Wait until every queued callback has run, or ``deadline`` (monotonic) passes.

        On the callback thread itself it returns at once (a callback cannot wait for
        itself). Returns True when nothing is pending.
        """
        if self.in_callback():
            return not self._pending
        with self._lock:
            while self._pending or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._idle.wait(min(remaining, 0.25))
            return True
