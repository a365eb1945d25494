"""Process placement shared by the sink and the drivers: CPU pinning and priority."""

from __future__ import annotations

import os


def pin_to_cpu(cpu: int | None) -> str:
    """Pin this process to ``cpu``; return a note for the output (never raises)."""
    if cpu is None or cpu < 0:
        return "not pinned"
    if not hasattr(os, "sched_setaffinity"):  # pragma: no cover - not Linux
        return "not pinned (no sched_setaffinity here)"
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, ValueError) as exc:
        return f"not pinned (cpu {cpu}: {exc})"
    return f"pinned to cpu {cpu}"


def renice(increment: int) -> str:
    """Lower this process's nice value by ``-increment`` (root only); return a note."""
    if not increment:
        return ""
    try:
        return f", nice {os.nice(increment)}"
    except OSError as exc:
        return f", nice unchanged ({exc.strerror})"
