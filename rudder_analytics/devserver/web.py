"""The browser page: ``GET /`` (for a browser), its files and its live feed.

The page is plain HTML, CSS and JavaScript shipped in ``devserver/static/`` (no build
step, nothing loaded from elsewhere; a Content-Security-Policy allows this origin only).
Its events arrive over Server-Sent Events from ``GET /_dev/live``: each message is one
stored event or one rejected request, numbered ``<server>:<n>`` so a reconnecting page
resumes where it was (or starts over if the server was restarted).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Dict, Tuple
from urllib.parse import parse_qs

from .wire import JSON

if TYPE_CHECKING:  # pragma: no cover
    from .handler import Handler

__all__ = ["asset", "live", "page", "wants_page"]

#: Seconds between keep-alive comments on an idle stream (proxies and browsers keep it).
KEEPALIVE = 15.0

_TYPES: Dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}

_SECURITY: Tuple[Tuple[str, str], ...] = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("Cache-Control", "no-store"),
    ("Referrer-Policy", "no-referrer"),
)


def wants_page(accept: str) -> bool:
    """True when a browser asks for ``/`` (SDKs, curl and monitors get the health JSON)."""
    return "text/html" in accept.lower()


@cache
def _file(name: str) -> bytes:
    static = resources.files("rudder_analytics.devserver").joinpath("static")
    return static.joinpath(name).read_bytes()


def page(h: Handler) -> None:
    """The page itself."""
    _send_file(h, "index.html")


def asset(h: Handler, name: str) -> None:
    """``/_dev/web/<name>``: the page's files (``/_dev/web/`` is the page)."""
    h.discard_body()
    name = name.lstrip("/") or "index.html"
    if h.command not in ("GET", "HEAD"):
        h.answer(405, b'{"error": "use GET"}', JSON, extra=(("Allow", "GET"),))
    elif name not in _TYPES:
        h.answer(404, b'{"error": "no such file"}', JSON)
    else:
        _send_file(h, name)


def _send_file(h: Handler, name: str) -> None:
    h.answer(200, _file(name), _TYPES[name], nosniff=True, extra=_SECURITY, cors=False)


def _position(last_event_id: str, instance: str) -> int:
    """The entry number to resume after: 0 unless the id is this server's."""
    server, _, number = last_event_id.partition(":")
    if server != instance:
        return 0
    try:
        return max(int(number), 0)
    except ValueError:
        return 0


def live(h: Handler, query: str) -> None:
    """``GET /_dev/live``: the event stream; ends when the client goes or the server stops."""
    gateway = h.gateway
    h.discard_body()
    if h.command != "GET":
        h.answer(405, b'{"error": "use GET"}', JSON, extra=(("Allow", "GET"),))
        return
    params = parse_qs(query)
    resume = h.header("Last-Event-ID") or params.get("last", [""])[0]
    after = _position(resume, gateway.instance)
    hello = json.dumps(
        {
            "kind": "hello",
            "server": gateway.instance,
            "write_keys": list(gateway.write_keys),
            "disabled_write_keys": list(gateway.disabled_write_keys),
        }
    )
    headers = (("Cache-Control", "no-store"), ("X-Accel-Buffering", "no"))
    if not h.start_stream("text/event-stream; charset=utf-8", headers):
        return
    text = f"retry: 1000\ndata: {hello}\n\n"
    while h.write_stream(text.encode("utf-8", "replace")):
        entries = gateway.feed.read_after(after, KEEPALIVE)
        if entries is None:
            return
        if not entries:
            text = ": keep-alive\n\n"
            continue
        after = entries[-1][0]
        text = "".join(
            f"id: {gateway.instance}:{n}\ndata: {_one_line(data)}\n\n" for n, data in entries
        )


def _one_line(data: str) -> str:
    """JSON text on one line (a raw CR or LF can only be whitespace between tokens)."""
    if "\n" in data or "\r" in data:
        return data.replace("\r", " ").replace("\n", " ")
    return data
