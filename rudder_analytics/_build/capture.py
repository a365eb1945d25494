"""Capture hooks: while any is installed, messages are recorded instead of sent.

:mod:`rudder_analytics.testing` installs one; every message that any client
builds (event calls, batch blocks, async sends) is then handed, encoded as it
would be sent, to each hook, and is not queued or sent. The hot path pays one
truthiness test of :data:`HOOKS`.
"""

from __future__ import annotations

from typing import Callable

__all__ = ["HOOKS", "add_capture_hook", "capturing", "record", "remove_capture_hook"]

CaptureHook = Callable[[bytes], None]

HOOKS: list[CaptureHook] = []
"""The installed hooks (read by the clients; changed only through the functions here)."""


def add_capture_hook(hook: CaptureHook) -> None:
    """Install a capture hook."""
    HOOKS.append(hook)


def remove_capture_hook(hook: CaptureHook) -> None:
    """Remove one hook installed with :func:`add_capture_hook` (by equality)."""
    for index, installed in enumerate(HOOKS):
        if installed == hook:
            del HOOKS[index]
            return


def capturing() -> bool:
    """True while any hook is installed (nothing may be sent)."""
    return bool(HOOKS)


def record(data: bytes) -> None:
    """Hand one encoded message to every hook."""
    for hook in HOOKS:
        hook(data)
