"""The gateway's answers: texts (current and pre-v1.46 wording), statuses, errors.

From rudder-server's ``gateway/response/response.go``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Dict, Tuple

__all__ = ["ProtocolError", "fault_text", "message", "status_of"]

# Answer texts: key -> (current text, pre-v1.46.0 text). gateway/response/response.go.
_MESSAGES: Dict[str, Tuple[str, str]] = {
    "ok": ("ok", "OK"),
    "no_write_key": ("failed to read writekey from header", "Failed to read writeKey from header"),
    "invalid_write_key": ("invalid write key", "Invalid Write Key"),
    "source_disabled": ("source is disabled", "Source is disabled"),
    "invalid_json": ("invalid json", "Invalid JSON"),
    "not_rudder_event": ("event is not a valid rudder event", "Event is not a valid rudder event"),
    "non_identifiable": (
        "request neither has anonymousId nor userId",
        "Request neither has anonymousId nor userId",
    ),
    "rate_limited": ("max requests limit reached", "Max Requests Limit reached"),
    "too_large": ("request size exceeds max limit", "Request size exceeds max limit"),
    "empty_batch": ("empty batch payload", "Empty batch payload"),
    "body_read_failed": ("failed to read body from request", "Failed to read body from request"),
    "gateway_timeout": ("gateway timeout", "Gateway timeout"),
    "service_unavailable": ("Service Unavailable", "Service Unavailable"),
}

# Status of each answer (``statusMap`` in response.go).
_STATUS: Dict[str, int] = {
    "ok": 200,
    "no_write_key": 401,
    "invalid_write_key": 401,
    "source_disabled": 404,
    "invalid_json": 400,
    "not_rudder_event": 400,
    "non_identifiable": 400,
    "rate_limited": 429,
    "too_large": 413,
    "empty_batch": 400,
    "body_read_failed": 500,
    "gateway_timeout": 504,
    "service_unavailable": 503,
}

# Default text for a scripted failure with a given status (the gateway's own text where
# it has one, else the HTTP reason phrase, as a load balancer in front would send).
_FAULT_KEYS: Dict[int, str] = {
    400: "invalid_json",
    401: "invalid_write_key",
    404: "source_disabled",
    413: "too_large",
    429: "rate_limited",
    500: "body_read_failed",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def message(key: str, legacy: bool = False) -> str:
    """The answer text for ``key``: current wording, or the capitalised pre-v1.46.0 one."""
    current, old = _MESSAGES[key]
    return old if legacy else current


def status_of(key: str) -> int:
    """The HTTP status the gateway pairs with answer ``key``."""
    return _STATUS[key]


def fault_text(status: int, legacy: bool = False) -> str:
    """Default body text for a scripted failure answered with ``status``."""
    key = _FAULT_KEYS.get(status)
    if key is not None:
        return message(key, legacy)
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


class ProtocolError(Exception):
    """A request the gateway refuses as a whole: ``status`` and the answer ``key``."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
        self.status: int = _STATUS[key]
