"""Live console output: one line per stored event, readable text or JSON lines.

Example text line::

    12:00:00.123  track     user=u1                 Order Completed

Lines of one request are written with one ``write`` under a lock, so concurrent requests
never interleave within a line.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Dict, List, Optional, TextIO

__all__ = ["MODES", "ConsolePrinter", "format_event"]

MODES = ("text", "json")


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_event(event: Dict[str, Any]) -> str:
    """One readable line: time, type, user or anonymous id, event or name."""
    received = event.get("receivedAt")
    clock = received[11:23] if isinstance(received, str) and len(received) >= 23 else "--:--:--.---"
    event_type = event.get("type")
    kind = event_type if isinstance(event_type, str) else "?"
    user_id = event.get("userId")
    if user_id not in (None, ""):
        who = f"user={_short(user_id, 40)}"
    else:
        who = f"anon={_short(event.get('anonymousId'), 40)}"
    name = event.get("event")
    if not isinstance(name, str):
        name = event.get("name")
    label = _short(name) if isinstance(name, str) else ""
    return f"{clock}  {kind:<9} {who:<24} {label}".rstrip()


class ConsolePrinter:
    """Writes each stored event to ``stream`` (stdout by default) as text or JSON."""

    def __init__(self, mode: str, stream: Optional[TextIO] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"console must be one of {MODES} or None, not {mode!r}")
        self.mode = mode
        self._stream = stream
        self._lock = threading.Lock()

    def print_events(self, events: List[Dict[str, Any]]) -> None:
        """Print one line per event; output errors never reach the request."""
        if self.mode == "json":
            lines = [json.dumps(e, ensure_ascii=False) for e in events]
        else:
            lines = [format_event(e) for e in events]
        text = "\n".join(lines) + "\n"
        stream = self._stream if self._stream is not None else sys.stdout
        with self._lock:
            try:
                try:
                    stream.write(text)
                except UnicodeEncodeError:
                    stream.write(text.encode("ascii", "backslashreplace").decode("ascii"))
                stream.flush()
            except (OSError, ValueError):
                pass
