"""Routing: rudder-server's routes, the ``/_dev/`` API, the browser page and its feed.

Every request that is not a ``/_dev/`` call is logged; one answered with an error (or
not answered at all) is reported to the console and the live page with its reason.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from . import control, web
from .ingest import ingest
from .protocol import INGEST_ROUTES, message
from .records import Headers, RequestRecord
from .wire import JSON

if TYPE_CHECKING:  # pragma: no cover
    from .handler import Handler

__all__ = ["dispatch"]

logger: logging.Logger = logging.getLogger("rudder_analytics.devserver")

# A control request's body may be a large fault plan, but not unbounded.
_CONTROL_BODY_LIMIT = 16 * 1024 * 1024


def dispatch(h: Handler) -> None:
    """Answer one request, whatever its method and path."""
    target = h.path
    if not target.startswith("/"):
        target = urlsplit(target).path or "/"
    path, _, query = target.partition("?")
    if "%" in path:
        path = unquote(path)
    if path == control.PREFIX or path.startswith(control.PREFIX + "/"):
        h.begin(None)
        _dev(h, path, query)
        return
    record = RequestRecord(
        method=h.command,
        path=path,
        query=query,
        headers=Headers(h.headers.items()),
        received_at=time.monotonic(),
        client=str(h.client_address[0]),
    )
    h.begin(record)
    try:
        _logged(h, path)
    finally:
        if record.status is None:  # ended without an answer or an abort (a bug, or gone)
            h.report_refusal()


def _logged(h: Handler, path: str) -> None:
    """A logged request: CORS preflight, the concurrency limit, then the route."""
    gateway = h.gateway
    record = h.record
    assert record is not None
    if h.command == "OPTIONS" and h.header("Access-Control-Request-Method") and h.header("Origin"):
        gateway.log.add(record)
        h.preflight()
        return
    admitted = gateway.enter()
    # Logged once admitted: a test that saw request n logged knows it holds a slot.
    gateway.log.add(record)
    if not admitted:
        h.discard_body()
        h.answer_text(503, message("service_unavailable"))
        return
    try:
        _route(h, path)
    finally:
        gateway.leave()


def _route(h: Handler, path: str) -> None:
    """rudder-server's routes: health (and the page for a browser), ingestion, 404/405."""
    method = h.command
    if path in ("/health", "/"):
        h.discard_body()
        if method != "GET":
            h.answer(405, b"", None, extra=(("Allow", "GET"),))
        elif path == "/" and web.wants_page(h.header("Accept")):
            web.page(h)
        else:
            h.answer(200, h.gateway.health_body, JSON)
        return
    req_type = INGEST_ROUTES.get(path)
    if req_type is None:
        h.discard_body()
        h.answer_text(404, "404 page not found")
    elif method != "POST":
        h.discard_body()
        h.answer(405, b"", None, extra=(("Allow", "POST"),))
    else:
        ingest(h, req_type)


def _dev(h: Handler, path: str, query: str) -> None:
    """``/_dev/``: the page's assets and live feed, else the JSON control API."""
    route = path[len(control.PREFIX) :]
    if route == "/live":
        web.live(h, query)
        return
    if route == "/web" or route.startswith("/web/"):
        web.asset(h, route[len("/web") :])
        return
    body = h.read_body(_CONTROL_BODY_LIMIT)
    if body is None:
        h.close_connection = True
        body = b""
    try:
        status, value = control.dispatch(h.control, h.command, path, query, body)
    except Exception as exc:  # a bug must not kill the connection silently
        logger.exception("control request %s %s failed", h.command, path)
        status, value = 500, {"error": repr(exc)}
    data = json.dumps(value, ensure_ascii=True).encode("ascii")
    h.answer(status, data, JSON)
