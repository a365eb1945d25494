"""SIGTERM handling (option ``handle_sigterm``): deliver what is queued before the process ends.

Python's default SIGTERM action ends the process at once, without ``atexit``, so
everything still queued is lost. With ``handle_sigterm=True`` the first client
built on the main thread installs :func:`_on_sigterm` (once per process). What it
does depends on the handler it replaced:

- ``SIG_DFL`` (a plain script; uvicorn with one process, which restores our
  handler and re-raises SIGTERM after its graceful shutdown): every live client is
  shut down by one shared deadline (now plus the largest ``shutdown_timeout`` of
  the clients that asked for the handler), on a helper thread that the handler
  joins with a deadline; then SIG_DFL is restored and SIGTERM raised again, so the
  process ends with the same status (-15) as without the SDK.
- a Python callable (a server's graceful-shutdown handler: gunicorn workers,
  uvicorn workers, the application's own): it is called with ``(signum, frame)``
  and the server finishes its requests; the events they track are delivered at
  exit. Some servers end by restoring SIG_DFL and re-raising SIGTERM (uvicorn's
  workers), which would skip ``atexit``: so SIGTERM is blocked on the main thread
  first, and an exit hook delivers every client, then unblocks SIGTERM, which then
  ends the process with its usual status. (A child forked from here gets SIGTERM
  unblocked; a program started through ``subprocess`` meanwhile inherits the block.)
- ``SIG_IGN`` or a handler not installed from Python: nothing is installed.

The handler runs on the main thread between two bytecodes, possibly while that
thread is inside the SDK holding a lock (in ``track()``, ``shutdown()``). Then it
only sets a trace function on the main thread, which delivers at the first line the
thread runs outside the SDK; a helper thread raises SIGTERM again every 50 ms, so
that a main thread blocked inside the SDK still finishes by the deadline.

A handler installed later (by the application or a server) is never replaced.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import sysconfig
import threading
import time
from types import FrameType
from typing import Any, Optional

from ..config import Config
from . import lifecycle

__all__ = ["install"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

JOIN_SLACK = lifecycle.EXIT_SLACK + 0.5
"""Seconds the handler waits beyond the deadline (a request being abandoned)."""
RETRY_INTERVAL = 0.05
"""Seconds between two re-deliveries while the main thread is inside the SDK."""

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NOT_CORE = tuple(_PACKAGE_DIR + name + os.sep for name in ("integrations", "devserver"))
_STDLIB = os.path.abspath(sysconfig.get_paths()["stdlib"]) + os.sep

_lock = threading.Lock()


class _State:
    """Everything the handler needs, in one place (one per process)."""

    installed = False
    previous: Any = None
    """The SIGTERM handler we replaced: SIG_DFL or a callable."""
    longest = 0.0
    """Largest ``shutdown_timeout`` among the clients that asked for the handler."""
    deadline: Optional[float] = None
    """Set when the first SIGTERM arrives: delivery ends by then."""
    handling = False
    tracing = False
    said_not_main = False
    guard_armed = False


_state = _State()


def install(config: Config) -> bool:
    """Install the SIGTERM handler for a client built with ``handle_sigterm=True``.

    Once per process, from the main thread only (Python's rule for signal
    handlers). A client built on another thread logs at INFO (once) that it could
    not; the next client built on the main thread installs it (and covers every
    client). Returns True if the handler is installed.
    """
    if not config.send or config.sync_mode:
        return False  # nothing is ever queued: nothing to deliver
    with _lock:
        _state.longest = max(_state.longest, config.shutdown_timeout)
        if _state.installed:
            return True
        if threading.current_thread() is not threading.main_thread():
            if _state.said_not_main:
                return False
            _state.said_not_main = True
            logger.info(
                "handle_sigterm: this client was built on thread %r, and a SIGTERM handler "
                "can only be installed from the main thread; it is not installed yet "
                "(build a client on the main thread, e.g. at import, to install it)",
                threading.current_thread().name,
            )
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:
            logger.debug("handle_sigterm: SIGTERM is %s; no handler installed",
                         "ignored" if previous is signal.SIG_IGN else "handled outside Python")
            return False
        signal.signal(signal.SIGTERM, _on_sigterm)
        _state.previous = previous
        _state.installed = True
    logger.debug("handle_sigterm: SIGTERM handler installed (previous: %r)", previous)
    return True


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    """The handler: deliver, then hand the signal on (see the module docstring)."""
    previous = _state.previous
    if callable(previous):
        _arm_exit_guard()
        previous(signum, frame)
        return
    if _state.handling:
        return  # a second SIGTERM while delivering: the first one ends the process
    if _state.deadline is None:  # every live client's, not only those that asked for it
        _state.deadline = time.monotonic() + max(_state.longest, lifecycle.exit_budget())
    if _inside_sdk(frame) and time.monotonic() < _state.deadline:
        _finish_at_safe_point(signum, frame)
        return
    _finish(signum)


def _finish(signum: int) -> None:
    """Deliver every client by the deadline, then end as SIGTERM's default action does."""
    _state.handling = True
    _deliver(_state.deadline or time.monotonic())
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
    # Still running: the process is PID 1 of a container, where the kernel ignores a
    # signal left at SIG_DFL. End it anyway, with the status a shell reports for SIGTERM.
    os._exit(128 + signum)


def _inside_sdk(frame: Optional[FrameType]) -> bool:
    """True if the innermost frame outside the standard library is the SDK's core."""
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_PACKAGE_DIR):
            return not filename.startswith(_NOT_CORE)
        if not (filename.startswith(_STDLIB) or filename.startswith("<")):
            return False
        frame = frame.f_back
    return False


def _finish_at_safe_point(signum: int, frame: Optional[FrameType]) -> None:
    """The main thread is inside the SDK (maybe holding a lock): finish once it is out.

    A trace function on the main thread finishes at the first line it runs outside
    the SDK; a helper thread raises the signal again every so often, so that a main
    thread blocked inside the SDK still finishes at the deadline.
    """
    if _state.tracing:
        return
    _state.tracing = True

    def tracer(current: FrameType, event: str, arg: Any) -> Any:
        if _state.handling:
            return None
        if event == "line" and (not _inside_sdk(current)
                                or time.monotonic() >= (_state.deadline or 0.0)):
            sys.settrace(None)
            _finish(signum)
        return tracer

    while frame is not None:
        frame.f_trace = tracer
        frame = frame.f_back
    sys.settrace(tracer)
    threading.Thread(target=_redeliver, name="rudder-analytics-sigterm", daemon=True).start()


def _redeliver() -> None:
    """Raise SIGTERM again on the main thread until it has been handled."""
    while not _state.handling:
        time.sleep(RETRY_INTERVAL)
        if _state.handling:
            return
        if sys.version_info >= (3, 10):
            import _thread

            _thread.interrupt_main(signal.SIGTERM)  # runs the Python handler, if still ours
        elif signal.getsignal(signal.SIGTERM) is _on_sigterm:  # pragma: no cover - 3.9
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
        else:  # pragma: no cover - 3.9, someone replaced the handler
            return


def _deliver(deadline: float) -> None:
    """Shut every client down by ``deadline``, on a helper thread joined with a deadline.

    A helper thread, so that a lock held by the interrupted main thread (logging's,
    say) can delay delivery but never hang the process past the deadline.
    """
    helper = threading.Thread(target=lifecycle.shutdown_all, args=(deadline,),
                              name="rudder-analytics-sigterm-delivery", daemon=True)
    helper.start()
    helper.join(max(0.0, deadline - time.monotonic()) + JOIN_SLACK)
    if helper.is_alive():
        logger.warning("rudder_analytics: delivery at SIGTERM did not finish by its deadline")


def _arm_exit_guard() -> None:
    """A server handles SIGTERM: make sure its exit delivers, even if it re-raises SIGTERM."""
    if _state.guard_armed:
        return
    _state.guard_armed = True
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        if hasattr(os, "register_at_fork"):  # a child forked from here must stay killable
            os.register_at_fork(after_in_child=_unblock)
    atexit.register(_exit_guard, blocked)


def _unblock() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


def _exit_guard(blocked: bool) -> None:
    """At exit: deliver every client, then let a SIGTERM held back end the process."""
    try:
        lifecycle.shutdown_all()
    finally:
        if blocked:
            _unblock()
