"""Process-life hooks: delivery at interpreter exit, and a clean slate after fork.

Both hooks are installed once, the first time a client needs them (importing
the package installs nothing), and hold clients weakly: the hooks never keep a
client alive. A client that is garbage collected without ``shutdown()`` has its
worker pool *retired*: the workers deliver what is queued and then exit, and
until they have, the exit hook keeps the pool and finishes its delivery within
the client's ``shutdown_timeout``. So nothing queued is lost and nothing leaks.

- ``atexit``: every live client (and retired pool) delivers what it has queued, all
  within ONE shared deadline: the largest ``shutdown_timeout`` among them, plus one
  second for requests that must be abandoned. Each then says how many events were
  not delivered. :func:`shutdown_all` is the same, for a SIGTERM handler.
- ``os.register_at_fork(after_in_child=...)``: each live client gets an empty
  queue, new locks and no threads; workers start lazily on its next event. The
  parent keeps, and sends, everything it had queued, so nothing is sent twice.
- ``multiprocessing`` children end with ``os._exit()``, which skips ``atexit``:
  there the exit hook runs from multiprocessing's own exit finalizers instead
  (registered through ``multiprocessing.util.register_after_fork``).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Callable, Optional, Protocol

from .._report.lines import emit

__all__ = ["EXIT_SLACK", "exit_budget", "forget", "register", "retire", "shutdown_all"]

EXIT_SLACK = 1.0
"""Seconds the exit may take beyond the largest ``shutdown_timeout``: abandoning requests."""


class _Managed(Protocol):
    """What the hooks need of a client (the hooks never import the client)."""

    def exit_timeout(self) -> float:
        """Seconds this client may spend delivering at exit (0: it does not take part)."""
        ...

    def begin_exit(self) -> None:
        """Start delivering at once, without blocking (so that clients drain in parallel)."""
        ...

    def finish_exit(self, deadline: float) -> None:
        """Deliver and stop by ``deadline`` (monotonic), reporting what was lost."""
        ...

    def _after_fork_in_child(self) -> None: ...


class _Retirable(Protocol):
    """What the exit hook needs of the worker pool of a collected client."""

    def retire(self) -> None:
        """Without blocking: deliver what is queued, then let the workers exit."""
        ...

    def finish(self, deadline: float) -> int:
        """Flush and stop by ``deadline``; return how many events were not delivered."""
        ...

    def done(self) -> bool:
        """True when no worker runs and nothing is queued."""
        ...


_clients: weakref.WeakSet[_Managed] = weakref.WeakSet()
_retired: dict[_Retirable, float] = {}
"""Pools of collected clients that may still hold events, with their shutdown timeout."""
_install_lock = threading.Lock()
_installed = False


def shutdown_all(deadline: Optional[float] = None) -> None:
    """Deliver and stop every live client and retired pool by one shared ``deadline``.

    ``None``: now plus the largest ``shutdown_timeout`` among them. Every client is
    started first, so that they drain in parallel, then each is finished in turn
    against the same deadline; a request still running then is abandoned (at most
    :data:`EXIT_SLACK` more). Never raises.
    """
    clients = [c for c in list(_clients) if c.exit_timeout() > 0]
    pools = list(_retired.items())
    if deadline is None:
        deadline = time.monotonic() + exit_budget()
    for client in clients:
        _quietly(client.begin_exit)
    for pool, _ in pools:
        _quietly(pool.retire)
    for client in clients:
        _quietly(client.finish_exit, deadline)
    for pool, _ in pools:
        if pool in _retired:
            del _retired[pool]
            _finish_retired(pool, deadline)


def exit_budget() -> float:
    """Seconds an exit now may spend delivering: the largest ``shutdown_timeout`` among the
    live clients and retired pools that still take part (0 when there are none)."""
    timeouts = [c.exit_timeout() for c in list(_clients)]
    timeouts.extend(_retired.values())
    return max(timeouts, default=0.0)


def _finish_retired(pool: _Retirable, deadline: float) -> None:
    try:
        lost = pool.finish(deadline)
    except Exception:  # the exit hook never raises
        logging.getLogger("rudder_analytics").exception("error delivering events at exit")
        return
    if lost:
        emit(f"{lost:,} event(s) of a client that was garbage-collected without shutdown() "
             "were not delivered at exit")


def _quietly(call: Callable[..., None], *args: float) -> None:
    try:
        call(*args)
    except Exception:  # the exit hook never raises
        logging.getLogger("rudder_analytics").exception("error delivering events at exit")


def _run_at_exit() -> None:
    shutdown_all()


def _run_after_fork_in_child() -> None:
    global _install_lock
    _install_lock = threading.Lock()  # may have been held by another thread at fork
    _retired.clear()  # their events are the parent's to send
    for client in list(_clients):
        client._after_fork_in_child()


class _Token:
    """What ``multiprocessing.util.register_after_fork`` holds (weakly) for us."""


_MP_TOKEN = _Token()


def _finalize_in_mp_child(_token: object = None) -> None:
    """In a multiprocessing child: run the exit hook at its exit (atexit will not)."""
    from multiprocessing import util

    util.Finalize(None, _run_at_exit, exitpriority=10)


def _install_multiprocessing_hook() -> None:
    try:
        import multiprocessing
        from multiprocessing import util
    except ImportError:  # pragma: no cover - interpreters built without it
        return
    # Children forked or spawned from here on: run after multiprocessing clears the
    # finalizers it inherited, so the one registered there survives.
    util.register_after_fork(_MP_TOKEN, _finalize_in_mp_child)
    if multiprocessing.parent_process() is not None:  # already in a child: register now
        _finalize_in_mp_child()


def register(client: _Managed) -> None:
    """Include ``client`` in the exit and fork hooks (installing them on first use)."""
    global _installed
    with _install_lock:
        if not _installed:
            atexit.register(_run_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_run_after_fork_in_child)
            _install_multiprocessing_hook()
            _installed = True
        _clients.add(client)


def retire(pool: _Retirable, shutdown_timeout: float) -> None:
    """A client was collected without ``shutdown()``: let its workers drain and exit.

    Called by the client's ``weakref.finalize``; it must not block (it may run in any
    thread, during garbage collection).
    """
    pool.retire()
    with _install_lock:
        for done in [p for p in _retired if p.done()]:
            del _retired[done]
        _retired[pool] = shutdown_timeout


def forget(client: object) -> None:
    """Remove ``client`` from the hooks (at shutdown)."""
    _clients.discard(client)  # type: ignore[arg-type]  # any object: absent ones are ignored

