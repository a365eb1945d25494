"""Process-life hooks: delivery at interpreter exit, and a clean slate after fork.

Both hooks are installed once, the first time a client needs them (importing
the package installs nothing). They hold a client weakly until its workers
start; from then until its shutdown they hold it strongly, because its queue
outlives the caller's last reference (the running worker keeps the queue alive
anyway): a client dropped without ``shutdown()`` still delivers at exit. A
shut-down client leaves both sets and is never kept alive by them.

- ``atexit``: each live client delivers what it has queued within its
  ``shutdown_timeout``, then says how many events were not delivered.
- ``os.register_at_fork(after_in_child=...)``: each live client gets an empty
  queue, new locks and no threads; workers start lazily on its next event. The
  parent keeps, and sends, everything it had queued, so nothing is sent twice.
- ``multiprocessing`` children end with ``os._exit()``, which skips ``atexit``:
  there the exit hook runs from multiprocessing's own exit finalizers instead
  (registered through ``multiprocessing.util.register_after_fork``).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Protocol

__all__ = ["forget", "hold", "live_clients", "track"]


class _Managed(Protocol):
    def _at_exit(self) -> None: ...

    def _after_fork_in_child(self) -> None: ...


_clients: weakref.WeakSet[_Managed] = weakref.WeakSet()
_running: set[_Managed] = set()
"""Tracked clients whose workers have started and that have not been shut down."""
_install_lock = threading.Lock()
_installed = False


def _run_at_exit() -> None:
    for client in list(_clients):
        client._at_exit()


def _run_after_fork_in_child() -> None:
    global _install_lock
    _install_lock = threading.Lock()  # may have been held by another thread at fork
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


def track(client: _Managed) -> None:
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


def hold(client: _Managed) -> None:
    """Keep a tracked ``client`` alive until :func:`forget`: its workers have started."""
    if client in _clients:
        _running.add(client)


def forget(client: _Managed) -> None:
    """Remove ``client`` from the hooks (at shutdown)."""
    _clients.discard(client)
    _running.discard(client)


def live_clients() -> list[_Managed]:
    """Clients the hooks currently hold (weakly)."""
    return list(_clients)
