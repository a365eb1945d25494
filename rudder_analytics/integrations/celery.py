"""Celery: make every worker process deliver its events before it exits. One line::

    from rudder_analytics.integrations import celery as rudder_celery

    rudder_celery.install()          # the module-level client (rudder_analytics.track)
    rudder_celery.install(client)    # or your own Client (call once per client)

Put it where the worker imports it (the module that creates the Celery app).

Why it is needed: the prefork pool forks its pool processes, and a pool process ends
with ``os._exit()`` (billiard's ``Worker._do_exit``), which skips ``atexit`` hooks, so
events still queued in a pool process would be lost when it exits: on a warm shutdown,
and whenever ``--max-tasks-per-child`` or ``--max-memory-per-child`` recycles it. Just
before that ``os._exit()``, Celery sends ``worker_process_shutdown`` in the pool
process; :func:`install` connects a handler to it that shuts the client down, which
delivers what is queued within the client's ``shutdown_timeout``. It also connects
``worker_shutdown``, sent in the main worker process at the end of a warm shutdown
(that is where tasks run with ``--pool=solo`` or ``threads``).

After the fork the SDK's own fork hook gives each pool process an empty queue and its
own delivery thread (started on its first event), so nothing is sent twice. A pool
process killed by a hard time limit or ``SIGKILL`` cannot deliver: nothing runs there.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Optional

from celery import signals

import rudder_analytics

from ..client import Client

__all__ = ["install", "uninstall"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

_DISPATCH_UID = "rudder_analytics.integrations.celery"
_lock = threading.Lock()
_clients: weakref.WeakSet[Client] = weakref.WeakSet()
_default = False
_timeout: Optional[float] = None


def _deliver(**_: Any) -> None:
    """The signal handler: shut down the installed clients (never raises into Celery)."""
    with _lock:
        clients, default, timeout = list(_clients), _default, _timeout
    for client in clients:
        try:
            client.shutdown(timeout)
        except Exception:
            logger.exception("rudder_analytics: shutdown at Celery process exit failed")
    if default:
        try:
            rudder_analytics.shutdown(timeout)
        except Exception:
            logger.exception("rudder_analytics: shutdown at Celery process exit failed")


def install(client: Optional[Client] = None, *, timeout: Optional[float] = None) -> None:
    """Deliver ``client``'s events (default: the module-level client's) at process exit.

    ``timeout`` bounds each shutdown (None: the client's ``shutdown_timeout``). Calling
    it again is harmless; the handlers are connected once, strongly (Celery holds
    receivers weakly by default).
    """
    global _default, _timeout
    with _lock:
        if client is None:
            _default = True
        else:
            _clients.add(client)
        if timeout is not None:
            _timeout = timeout
    signals.worker_process_shutdown.connect(_deliver, weak=False,
                                            dispatch_uid=_DISPATCH_UID + ".process")
    signals.worker_shutdown.connect(_deliver, weak=False, dispatch_uid=_DISPATCH_UID + ".main")


def uninstall() -> None:
    """Disconnect the handlers and forget the clients (for tests)."""
    global _default, _timeout
    signals.worker_process_shutdown.disconnect(dispatch_uid=_DISPATCH_UID + ".process")
    signals.worker_shutdown.disconnect(dispatch_uid=_DISPATCH_UID + ".main")
    with _lock:
        _clients.clear()
        _default = False
        _timeout = None
