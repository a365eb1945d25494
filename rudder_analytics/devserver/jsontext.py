"""JSON the way the gateway sees it: Go's float64 numbers and encoding, and a decoder
that also finds the text of each ``batch`` element (so unchanged events are stored
without re-encoding, which is most of the per-event cost).
"""

from __future__ import annotations

import json
import re
import threading
from decimal import Decimal
from json.decoder import scanstring as _scanstring  # type: ignore[attr-defined]
from typing import Any, Callable, Dict, List, Optional, Tuple

from .answers import ProtocolError

__all__ = [
    "decode_json",
    "decode_with_spans",
    "go_json",
    "load_payload",
    "reject_constant",
    "sanitize_surrogates",
]


def _go_float(value: float) -> str:
    """Format a float like Go's ``encoding/json`` does for a float64."""
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("unsupported float")
    magnitude = abs(value)
    if value.is_integer() and magnitude < 1e21:
        return str(int(value))
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = repr(value)
        if "e" not in text:
            text = f"{value:e}"
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        if sign == "+" and len(digits) < 2:
            digits = digits.rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return format(Decimal(repr(value)), "f")


def go_json(value: Any) -> str:
    """Go ``json.Marshal`` of a decoded JSON value (sorted keys, HTML escaping)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        text = json.dumps(sanitize_surrogates(value), ensure_ascii=False)
        return (
            text.replace("<", "\\u003c")
            .replace(">", "\\u003e")
            .replace("&", "\\u0026")
            .replace("\u2028", "\\u2028")
            .replace("\u2029", "\\u2029")
        )
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in items) + "}"
    return json.dumps(value)


def sanitize_surrogates(text: str) -> str:
    """Replace lone surrogates with U+FFFD (what Go's decoder produces)."""
    if text.isascii():
        return text
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


# --- JSON decoding ------------------------------------------------------------------

_MAX_SAFE_INT = 2**53


def _parse_int(text: str) -> Any:
    """Integers as Go's float64 decoding keeps them: exact up to 2^53, rounded above."""
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    return float(text)


def reject_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON; gjson.ValidBytes refuses them."""
    raise ValueError(f"invalid JSON constant {name}")


_INFINITIES = (float("inf"), float("-inf"))
_flags = threading.local()


def _parse_float(text: str) -> float:
    """Floats as usual, noting an overflow to infinity (Go could decode but not re-encode it)."""
    value = float(text)
    if value in _INFINITIES:
        _flags.infinite = True
    return value


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=reject_constant
)
_READER = json.JSONDecoder(parse_int=_parse_int)
_scan_once: Callable[[str, int], Tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_WS_CHARS = " \t\n\r"
_ws_match = re.compile(r"[ \t\n\r]*").match


def load_payload(payload: str) -> Any:
    """Read back a stored event with the same number semantics as on the way in."""
    return _READER.decode(payload)


def _skip_ws(text: str, i: int) -> int:
    """Index of the first non-whitespace character at or after ``i``."""
    c = text[i : i + 1]
    if c and c in _WS_CHARS:
        match = _ws_match(text, i)
        assert match is not None  # "[...]*" always matches
        return match.end()
    return i


def _decode_array(text: str, i: int) -> Tuple[List[Any], List[Tuple[int, int]], int]:
    """Decode the array at ``text[i] == '['``; also return each element's text span."""
    items: List[Any] = []
    spans: List[Tuple[int, int]] = []
    i = _skip_ws(text, i + 1)
    if text.startswith("]", i):
        return items, spans, i + 1
    scan = _scan_once
    add_item = items.append
    add_span = spans.append
    while True:
        try:
            value, end = scan(text, i)
        except StopIteration:
            raise ValueError("expected a value") from None
        add_item(value)
        add_span((i, end))
        c = text[end : end + 1]
        if c == ",":  # the usual separators "," and ", " need no call
            i = end + 1
            c = text[i : i + 1]
            if c == " ":
                i += 1
                c = text[i : i + 1]
            if not c or c in _WS_CHARS:
                i = _skip_ws(text, i)
            continue
        i = _skip_ws(text, end)
        if text.startswith(",", i):
            i = _skip_ws(text, i + 1)
        elif text.startswith("]", i):
            return items, spans, i + 1
        else:
            raise ValueError("expected ',' or ']'")


def decode_with_spans(text: str) -> Tuple[Any, Optional[List[Tuple[int, int]]]]:
    """``json.loads`` of the body that also finds the text of each ``batch`` element.

    The elements' own text lets an unchanged event be stored without re-encoding it
    (re-encoding is most of the per-event cost). Spans are None unless the body is an
    object whose ``batch`` is an array.
    """
    end = len(text)
    i = _skip_ws(text, 0)
    if not text.startswith("{", i):
        return _DECODER.decode(text), None
    obj: Dict[str, Any] = {}
    spans: Optional[List[Tuple[int, int]]] = None
    i = _skip_ws(text, i + 1)
    if text.startswith("}", i):
        i += 1
    else:
        while True:
            if not text.startswith('"', i):
                raise ValueError("expected a key")
            key, i = _scanstring(text, i + 1, True)
            i = _skip_ws(text, i)
            if not text.startswith(":", i):
                raise ValueError("expected ':'")
            i = _skip_ws(text, i + 1)
            key_spans: Optional[List[Tuple[int, int]]] = None
            if key == "batch" and text.startswith("[", i):
                value, key_spans, i = _decode_array(text, i)
            else:
                try:
                    value, i = _scan_once(text, i)
                except StopIteration:
                    raise ValueError("expected a value") from None
            if key == "batch":
                spans = key_spans
            obj[key] = value
            i = _skip_ws(text, i)
            if text.startswith(",", i):
                i = _skip_ws(text, i + 1)
            elif text.startswith("}", i):
                i += 1
                break
            else:
                raise ValueError("expected ',' or '}'")
    if _skip_ws(text, i) != end:
        raise ValueError("extra data")
    return obj, spans


def decode_json(body: bytes) -> Tuple[Any, Optional[List[Tuple[int, int]]], str]:
    """Decode the body as the gateway would: (value, batch element spans, text).

    Invalid UTF-8 becomes U+FFFD, as in Go. Raises ``ProtocolError('invalid_json')``.
    """
    text = body.decode("utf-8", "replace")
    _flags.infinite = False
    try:
        value, spans = decode_with_spans(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("invalid_json") from exc
    if _flags.infinite:
        spans = None  # re-encode every event, so that one holding infinity is refused
    return value, spans, text
