"""How :mod:`rudder_analytics.testing` compares and describes captured messages.

Expected values are compared as they would look on the wire (a ``Decimal`` is
a float, a ``datetime`` a string), mappings by subset, lists item by item.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, Dict, Optional

from ._build.encoding import decode_message, encode_message
from ._build.validation import optional_id

__all__ = ["describe", "expected_id", "looked_for", "matches", "wire"]


def wire(message: Mapping[str, Any]) -> Dict[str, Any]:
    """The message as the data plane would receive it (independent of the caller's dicts)."""
    try:
        return decode_message(encode_message(message, sys.maxsize))
    except Exception:  # already validated by the SDK; keep the original if this ever fails
        return dict(message)


def normalized(value: Any) -> Any:
    """An expected leaf value as it would look on the wire (Decimal -> float, datetime -> str)."""
    try:
        return wire({"v": value})["v"]
    except Exception:
        return value


def matches(actual: Any, expected: Any) -> bool:
    """``expected`` is contained in ``actual``: mappings by subset, lists item by item.

    ``expected == actual`` is tried first so matchers such as ``unittest.mock.ANY`` work.
    """
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return False
        return all(key in actual and matches(actual[key], value)
                   for key, value in expected.items())
    if isinstance(expected, (list, tuple)):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return False
        return all(matches(a, e) for a, e in zip(actual, expected))
    if expected == actual:
        return True
    if expected is None or isinstance(expected, (str, bool)):
        return False
    as_sent = normalized(expected)
    return as_sent is not expected and bool(as_sent == actual)


def expected_id(value: Any, field: str) -> Optional[str]:
    """An expected id, stringified exactly as the SDK stringifies ids."""
    return optional_id(value, field)


def describe(message: Mapping[str, Any]) -> str:
    """One line per captured message, for failure messages."""
    kind = message.get("type", "?")
    who = (f"user_id={message['userId']!r}" if message.get("userId") is not None
           else f"anonymous_id={message.get('anonymousId')!r}")
    parts = [str(kind), who]
    label = message.get("event", message.get("name"))
    if label is not None:
        parts.append(repr(label))
    for key in ("groupId", "previousId"):
        if key in message:
            parts.append(f"{key}={message[key]!r}")
    for key in ("properties", "traits"):
        if message.get(key):
            parts.append(f"{key}={message[key]!r}")
    return " ".join(parts)


def looked_for(kind: str, filters: Mapping[str, Any]) -> str:
    """``track 'Signed Up' (user_id='u1', properties={'plan': 'pro'})``: every filter."""
    label = filters.get("event", filters.get("name"))
    head = f"{kind} {label!r}" if label is not None else kind
    rest = ", ".join(f"{k}={v!r}" for k, v in filters.items() if k not in ("event", "name"))
    return f"{head} ({rest})" if rest else head
