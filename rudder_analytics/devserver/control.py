"""The ``/_dev/`` inspection and control API (not part of rudder-server).

Pure dispatch: the HTTP layer hands over method, path, query and body and sends back the
JSON it gets. Every route mirrors a ``DevServer`` method; see the package docstring.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qs

if TYPE_CHECKING:  # pragma: no cover
    from .server import DevServer

__all__ = ["PREFIX", "dispatch"]

PREFIX = "/_dev"

_FILTERS = ("type", "user_id", "anonymous_id", "message_id", "event", "write_key")

Answer = Tuple[int, Any]


class _BadRequest(Exception):
    """A control request the stand-in cannot act on (answered 400)."""


def _query(query: str) -> Dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def _filters(params: Dict[str, str]) -> Dict[str, Optional[str]]:
    unknown = set(params) - set(_FILTERS) - {"limit"}
    if unknown:
        raise _BadRequest(f"unknown filter(s): {', '.join(sorted(unknown))}")
    return {name: params.get(name) for name in _FILTERS}


def _number(params: Dict[str, Any], name: str, default: Any = None, kind: type = float) -> Any:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _BadRequest(f"{name} must be a number")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise _BadRequest(f"{name} must be a number") from None


def _limit(items: List[Any], params: Dict[str, str]) -> List[Any]:
    limit = _number(params, "limit", None, int)
    return items if limit is None else items[: max(limit, 0)]


def _step(server: DevServer, action: str, step: Dict[str, Any]) -> None:
    """Apply one fault step (``action`` is known to be a str)."""
    if action == "fail_next":
        server.fail_next(
            _number(step, "n", 1, int),
            status=_number(step, "status", 503, int),
            retry_after=step.get("retry_after"),
            body=step.get("body"),
        )
    elif action == "fail_fraction":
        server.fail_fraction(
            _number(step, "p", None, float),
            status=_number(step, "status", 503, int),
            retry_after=step.get("retry_after"),
            seed=_number(step, "seed", None, int),
        )
    elif action in ("latency", "set_latency"):
        server.set_latency(_number(step, "seconds", 0.0, float))
    elif action == "drop_next":
        server.drop_next(_number(step, "n", 1, int))
    elif action == "store_then_drop_next":
        server.store_then_drop_next(_number(step, "n", 1, int))
    elif action == "hang_next":
        server.hang_next(_number(step, "n", 1, int), seconds=_number(step, "seconds", 30.0, float))
    elif action in ("clear", "clear_faults"):
        server.clear_faults()
    else:
        raise _BadRequest(f"unknown action {action!r}")


def apply_plan(server: DevServer, plan: Any) -> None:
    """Apply a fault plan: one action object or a list of them, in order."""
    steps = plan if isinstance(plan, list) else [plan]
    for step in steps:
        if not isinstance(step, dict) or not isinstance(step.get("action"), str):
            raise _BadRequest('each fault step must be an object with an "action"')
        action = step["action"]
        try:
            _step(server, action, step)
        except (TypeError, ValueError) as exc:
            raise _BadRequest(f"{action}: {exc}") from None


def _routes(server: DevServer) -> Dict[str, Any]:
    return {
        "routes": {
            "GET /_dev/events": "stored events; filters: " + ", ".join(_FILTERS) + ", limit",
            "GET /_dev/jobs": "stored events in the gateway's job shape; same filters",
            "GET /_dev/count": "number of stored events; same filters",
            "GET /_dev/wait?n=N&timeout=S": "block until at least N events are stored",
            "GET /_dev/requests": "request log (newest last); limit",
            "POST /_dev/reset": "clear events, request log, faults and rate limit",
            "GET /_dev/faults": "the current fault plan",
            "POST /_dev/faults": "add fault steps (JSON object or list)",
            "DELETE /_dev/faults": "clear every fault",
            "GET /_dev/config": "write keys and limits",
            "GET /_dev/rejections": "requests answered with an error or not at all; limit",
            "GET /_dev/live": "Server-Sent Events: stored events and rejected requests",
            "GET /_dev/web/": "the live page (also GET / with Accept: text/html)",
        },
        "url": server.url,
    }


# --- routes: each takes (server, params, body) and answers (status, value) ------------

Params = Dict[str, str]


def _events(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, _limit(server.events(**_filters(params)), params)


def _jobs(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, _limit(server.jobs(**_filters(params)), params)


def _count(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, {"count": server.count(**_filters(params))}


def _wait(server: DevServer, params: Params, body: bytes) -> Answer:
    n = _number(params, "n", 1, int)
    timeout = min(_number(params, "timeout", 10.0, float), 300.0)
    ok = server.wait_for_events(n, timeout=timeout)
    return 200, {"ok": ok, "count": server.count()}


def _requests(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, _limit([r.to_dict() for r in server.requests()], params)


def _rejections(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, _limit(server.rejections(), params)


def _reset(server: DevServer, params: Params, body: bytes) -> Answer:
    server.reset()
    return 200, {"ok": True}


def _get_faults(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, server.fault_plan()


def _clear_faults(server: DevServer, params: Params, body: bytes) -> Answer:
    server.clear_faults()
    return 200, server.fault_plan()


def _add_faults(server: DevServer, params: Params, body: bytes) -> Answer:
    try:
        plan = json.loads(body.decode("utf-8") if body else "null")
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("the fault plan must be JSON") from None
    apply_plan(server, plan)
    return 200, server.fault_plan()


def _config(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, server.config()


def _index(server: DevServer, params: Params, body: bytes) -> Answer:
    return 200, _routes(server)


Route = Callable[["DevServer", Params, bytes], Answer]

#: route -> {method: handler}; a known route with another method is answered 405.
_ROUTES: Dict[str, Dict[str, Route]] = {
    "/": {"GET": _index},
    "/events": {"GET": _events},
    "/jobs": {"GET": _jobs},
    "/count": {"GET": _count},
    "/wait": {"GET": _wait},
    "/requests": {"GET": _requests},
    "/rejections": {"GET": _rejections},
    "/reset": {"POST": _reset},
    "/faults": {"GET": _get_faults, "DELETE": _clear_faults, "POST": _add_faults},
    "/config": {"GET": _config},
}


def dispatch(server: DevServer, method: str, path: str, query: str, body: bytes) -> Answer:
    """Answer one control request: ``(status, JSON-able value)``."""
    route = path[len(PREFIX) :].rstrip("/") or "/"
    methods = _ROUTES.get(route)
    if methods is None:
        return 404, {"error": f"no control route {path}"}
    handler = methods.get(method)
    if handler is None:
        if route == "/":
            return 404, {"error": f"no control route {path}"}
        return 405, {"error": "use " + " or ".join(sorted(methods))}
    try:
        return handler(server, _query(query), body)
    except _BadRequest as exc:
        return 400, {"error": str(exc)}
