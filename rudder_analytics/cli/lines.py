"""One JSON line of an ``import`` -> the builder arguments of its call type.

Keys are accepted in RudderStack's camelCase or in snake_case. Exported events
re-import as they are: ``originalTimestamp`` stands in for a missing
``timestamp``, and the keys the server adds (``channel``, ``sentAt``,
``receivedAt``, ``rudderId``, ``request_ip``) are ignored. Every rule is its
own small function so that a bad line names exactly what is wrong.
"""

from __future__ import annotations

import difflib
import importlib
import json
from collections.abc import Mapping
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ["TYPES", "LineError", "loads", "own_library", "parse_line"]


class LineError(ValueError):
    """An input line that is not a valid message."""


_COMMON_KEYS = {
    "userId": "user_id", "anonymousId": "anonymous_id", "context": "context",
    "integrations": "integrations", "timestamp": "timestamp", "messageId": "message_id",
}
_TYPE_KEYS: Dict[str, Dict[str, str]] = {
    "track": {"event": "event", "properties": "properties"},
    "identify": {"traits": "traits"},
    "page": {"name": "name", "category": "category", "properties": "properties"},
    "screen": {"name": "name", "category": "category", "properties": "properties"},
    "group": {"groupId": "group_id", "traits": "traits"},
    "alias": {"previousId": "previous_id"},
}
TYPES = tuple(_TYPE_KEYS)
"""The call types a line may have."""

_IGNORED_KEYS = frozenset({
    "type", "channel", "sentAt", "sent_at", "receivedAt", "received_at", "rudderId",
    "rudder_id", "request_ip", "requestIP",
})
_ORIGINAL_TIMESTAMP_KEYS = frozenset({"originalTimestamp", "original_timestamp"})
_ALL_FIELD_KEYS = frozenset(
    key for table in (_COMMON_KEYS, *_TYPE_KEYS.values()) for pair in table.items()
    for key in pair
)


def _accepted(kind: str) -> Dict[str, str]:
    """Every key a line of this type may use (camelCase and snake_case) -> kwarg."""
    table = {**_COMMON_KEYS, **_TYPE_KEYS[kind]}
    return {**table, **{kwarg: kwarg for kwarg in table.values()}}


_ACCEPTED = {kind: _accepted(kind) for kind in _TYPE_KEYS}


def _suggest(key: str, accepted: Mapping[str, str]) -> str:
    """A ``did you mean`` hint: same letters in another case or spelling first, then close."""
    folded = key.lower().replace("_", "")
    same = [name for name in accepted if name.lower().replace("_", "") == folded]
    close = sorted(same, key=lambda name: "_" in name) or difflib.get_close_matches(
        key, sorted(accepted), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _kind(data: Any) -> str:
    """The line's call type; raises LineError when it is not an object with a known type."""
    if not isinstance(data, dict):
        raise LineError(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if kind in _TYPE_KEYS:
        return str(kind)
    if kind is None:
        raise LineError('missing "type"')
    raise LineError(f'"type" must be one of {", ".join(_TYPE_KEYS)}, got {kind!r}')


def _kwarg(kind: str, key: str) -> str:
    """The builder argument for ``key``; raises LineError naming the problem."""
    kwarg = _ACCEPTED[kind].get(key)
    if kwarg is not None:
        return kwarg
    if key in _ALL_FIELD_KEYS:
        raise LineError(f'field "{key}" does not apply to {kind}')
    raise LineError(f'unknown field "{key}"{_suggest(key, _ACCEPTED[kind])}')


def parse_line(data: Any) -> Tuple[str, Dict[str, Any]]:
    """A decoded JSON line -> (type, builder keyword arguments); raises LineError."""
    kind = _kind(data)
    kwargs: Dict[str, Any] = {}
    original_timestamp: Any = None
    for key, value in data.items():
        if key in _IGNORED_KEYS:
            continue
        if key in _ORIGINAL_TIMESTAMP_KEYS:
            original_timestamp = value
            continue
        kwarg = _kwarg(kind, key)
        if kwarg in kwargs:
            raise LineError(f'field "{key}" is given twice (camelCase and snake_case)')
        kwargs[kwarg] = value
    if kwargs.get("timestamp") is None and original_timestamp is not None:
        kwargs["timestamp"] = original_timestamp
    return kind, kwargs


def own_library(kwargs: Mapping[str, Any]) -> Optional[Any]:
    """The line's own ``context.library`` (an exported event's), or None."""
    context = kwargs.get("context")
    if isinstance(context, Mapping):
        return context.get("library")
    return None


try:  # orjson parses JSON lines several times faster when installed (the "fast" extra)
    _orjson: Any = importlib.import_module("orjson")
    loads: Callable[[str], Any] = _orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    loads = json.loads
