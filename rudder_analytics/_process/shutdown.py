"""A client's shutdown runs once, whoever asks for it and from wherever.

- The first caller runs it. A caller on another thread waits for that run (within its
  own deadline) and gets its result.
- A caller that would wait for itself (a callback re-entering ``shutdown()`` on the
  callback thread or a worker, or the running thread itself) gets False at once.
- A run interrupted by ``KeyboardInterrupt`` leaves no result: the next caller (the exit
  hook, at the latest) runs it again, so what it had not delivered is not lost.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

__all__ = ["ShutdownOnce"]


class ShutdownOnce:
    """The one-shot, re-entrant-safe coordinator of a shutdown."""

    def __init__(self) -> None:
        self.result: Optional[bool] = None
        """The shutdown's result once it has run to its end."""
        self._owner: Optional[threading.Thread] = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        """In a forked child: fresh lock; a run under way belonged to the parent."""
        self._lock = threading.Lock()
        if self._owner is not None and self.result is None:
            self._owner = None
            self._done = threading.Event()

    def run(self, deadline: float, work: Callable[[], bool],
            reentrant: Callable[[], bool]) -> bool:
        """Run ``work`` once and return its result (see the module docstring)."""
        me = threading.current_thread()
        with self._lock:
            if self.result is not None:
                return self.result
            owner = self._owner
            if owner is None:
                self._owner = me
        if owner is not None:
            if owner is me or reentrant():
                return False  # never wait for ourselves
            self._done.wait(max(0.0, deadline - time.monotonic()))
            return bool(self.result)
        try:
            ok = work()
        except BaseException:  # interrupted (Ctrl-C): the exit hook runs it again
            with self._lock:
                self._owner = None
            raise
        with self._lock:
            self.result = ok
        self._done.set()
        return ok
