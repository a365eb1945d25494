"""Live console output: one line per stored event or refused request, text or JSON lines.

Example text lines (fixed-width columns; long values are cut with an ellipsis)::

    12:00:00.123  track         user=u1                   Order Completed           {"plan":"pro"}
    12:00:00.124  group         user=u1                   groupId=acme              {"name":"A"}
    12:00:01.002  REJECTED 401  POST /v1/batch            invalid write key         key=wrong

In JSON mode an event is its stored JSON object and a refused request is
``{"rejected": {...}}``. Lines of one request are written with one ``write`` under a
lock, so concurrent requests never interleave within a line.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Dict, List, Optional, TextIO

__all__ = ["MODES", "ConsolePrinter", "format_event", "format_line", "format_rejection"]

MODES = ("text", "json")

# Column widths of the text lines: kind, who, label (the details column is last).
_KIND = 13
_WHO = 25
_LABEL = 25
_DETAILS = 100


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _clock(received: Any) -> str:
    if isinstance(received, str) and len(received) >= 23:
        return received[11:23]
    return "--:--:--.---"


def _who(event: Dict[str, Any]) -> str:
    user_id = event.get("userId")
    if user_id not in (None, ""):
        return f"user={_short(user_id, 40)}"
    return f"anon={_short(event.get('anonymousId'), 40)}"


def _name(event: Dict[str, Any]) -> str:
    name = event.get("event")
    if not isinstance(name, str):
        name = event.get("name")
    return _short(name) if isinstance(name, str) else ""


def _label(event: Dict[str, Any]) -> str:
    name = _name(event)
    if name:
        return name
    for key in ("groupId", "previousId"):
        if event.get(key) not in (None, ""):
            return f"{key}={_short(event[key], 40)}"
    return ""


def format_event(event: Dict[str, Any]) -> str:
    """The short line: time, type, user or anonymous id, event or name."""
    kind = event.get("type")
    kind = kind if isinstance(kind, str) else "?"
    return f"{_clock(event.get('receivedAt'))}  {kind:<9} {_who(event):<24} {_name(event)}".rstrip()


def format_line(event: Dict[str, Any]) -> str:
    """The console line: time, type, who, event or name, then properties or traits.

    Every column has a fixed width (longer values are cut), so the lines stay aligned.
    """
    kind = event.get("type")
    kind = _short(kind if isinstance(kind, str) else "?", _KIND - 1)
    details = []
    label = _label(event)
    for key in ("groupId", "previousId"):
        value = event.get(key)
        if value not in (None, "") and not label.startswith(key + "="):
            details.append(f"{key}={_short(value, 40)}")
    for key in ("properties", "traits"):
        value = event.get(key)
        if value:
            details.append(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    who = _short(_who(event), _WHO - 1)
    line = (
        f"{_clock(event.get('receivedAt'))}  {kind:<{_KIND}} {who:<{_WHO}}"
        f" {_short(label, _LABEL - 1):<{_LABEL}} {_short(' '.join(details), _DETAILS)}"
    )
    return line.rstrip()


def format_rejection(rejection: Dict[str, Any]) -> str:
    """A refused request in the same columns: time, status, route, reason, write key."""
    status = rejection.get("status")
    kind = f"REJECTED {status if status is not None else '---'}"
    route = f"{rejection.get('method', '')} {rejection.get('path', '')}"
    key = rejection.get("write_key")
    details = f"key={_short(key, 40)}" if key else "no write key"
    line = (
        f"{_clock(rejection.get('time'))}  {kind:<{_KIND}} {_short(route, _WHO - 1):<{_WHO}}"
        f" {_short(rejection.get('reason', ''), _LABEL - 1):<{_LABEL}} {details}"
    )
    return line.rstrip()


class ConsolePrinter:
    """Writes each stored event and refused request to ``stream`` (stdout by default)."""

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
            lines = [format_line(e) for e in events]
        self._write("\n".join(lines) + "\n")

    def print_rejection(self, rejection: Dict[str, Any]) -> None:
        """Print one line for a refused request."""
        if self.mode == "json":
            text = json.dumps({"rejected": rejection}, ensure_ascii=False)
        else:
            text = format_rejection(rejection)
        self._write(text + "\n")

    def _write(self, text: str) -> None:
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
