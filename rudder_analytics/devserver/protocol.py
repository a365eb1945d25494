"""The gateway's request rules as pure functions: answers, identity, enrichment, limits.

Everything here follows "Protocol spec for a faithful stand-in server" in
``docs/dataplane-protocol.md`` (rudder-server v1.83, ``gateway/handle.go``
``getJobDataFromRequest``). No I/O happens here, so the HTTP layer stays small and the
rules can be read in one place, in the order the real gateway applies them.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from hashlib import md5
from http import HTTPStatus
from json.decoder import scanstring as _scanstring  # type: ignore[attr-defined]
from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "INGEST_ROUTES",
    "Accepted",
    "ProtocolError",
    "RateLimiter",
    "build_events",
    "message",
    "rudder_id",
    "sanitize_unicode",
]

#: ``Gateway.maxReqSizeInKB`` (4000) x 1024.
DEFAULT_MAX_REQUEST_BYTES = 4_096_000

#: Ingestion path -> request type (``callType`` in rudder-server).
INGEST_ROUTES: Dict[str, str] = {
    "/v1/batch": "batch",
    "/v1/track": "track",
    "/v1/identify": "identify",
    "/v1/page": "page",
    "/v1/screen": "screen",
    "/v1/group": "group",
    "/v1/alias": "alias",
    "/v1/merge": "merge",
    "/v1/audiencelist": "audiencelist",
}

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
        self.status = _STATUS[key]


# --- identity helpers ---------------------------------------------------------------

# sanitize.Unicode's extra list (rudder-go-kit/sanitize/sanitize.go); everything that is
# not printable (Go's unicode.IsPrint == Python's str.isprintable) is removed as well.
_INVISIBLE = (
    "\u0000\u0009\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c"
    "\u200d\u200e\u200f\u202f\u205f\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c"
    "\u206d\u206e\u206f\u3000\u2800\u3164\ufeff\uffa0"
)
_INVISIBLE_SET = frozenset(_INVISIBLE)
_INVISIBLE_RE = re.compile("[" + re.escape(_INVISIBLE) + "]")


def sanitize_unicode(text: str) -> str:
    """rudder-go-kit ``sanitize.Unicode``: drop invisible and non-printable characters.

    Lone surrogates (which Go's JSON decoder would already have turned into U+FFFD) become
    U+FFFD, so ids hash the same way as on the real server.
    """
    if text.isprintable() and (text.isascii() or not _INVISIBLE_RE.search(text)):
        return text
    out = []
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        elif ch.isprintable() and ch not in _INVISIBLE_SET:
            out.append(ch)
    return "".join(out)


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


def _go_json(value: Any) -> str:
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
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{_go_json(k)}:{_go_json(v)}" for k, v in items) + "}"
    return json.dumps(value)


def sanitize_surrogates(text: str) -> str:
    """Replace lone surrogates with U+FFFD (what Go's decoder produces)."""
    if text.isascii():
        return text
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)


def _identity(value: Any) -> str:
    """``strings.TrimSpace(sanitize.Unicode(stringify.Any(v)))`` for userId/anonymousId."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = _go_json(value)
        except ValueError:
            text = str(value)
    return sanitize_unicode(text).strip()


@lru_cache(maxsize=65536)
def rudder_id(user_id: str, anonymous_id: str) -> str:
    """``kituuid.GetMD5UUID(userId + ":" + anonymousId)``: MD5 with v4 and RFC 4122 bits."""
    digest = bytearray(md5(f"{user_id}:{anonymous_id}".encode("utf-8", "replace")).digest())
    digest[6] = digest[6] & 0x0F | 0x40
    digest[8] = digest[8] & 0x3F | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def format_received_at(moment: datetime) -> str:
    """Go's ``misc.RFC3339Milli`` in UTC: ``2006-01-02T15:04:05.000Z``."""
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- JSON decoding ------------------------------------------------------------------

_MAX_SAFE_INT = 2**53


def _parse_int(text: str) -> Any:
    """Integers as Go's float64 decoding keeps them: exact up to 2^53, rounded above."""
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    return float(text)


def _reject_constant(name: str) -> Any:
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
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_reject_constant
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


def _decode_with_spans(text: str) -> Tuple[Any, Optional[List[Tuple[int, int]]]]:
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
        value, spans = _decode_with_spans(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("invalid_json") from exc
    if _flags.infinite:
        spans = None  # re-encode every event, so that one holding infinity is refused
    return value, spans, text


# sjson.SetRawBytes(batchEvent, "batch.0", body) wraps single-type bodies in this template,
# so the size check sees the body plus these bytes.
_BATCH_TEMPLATE_BYTES = len('\n\t{\n\t\t"batch": [\n\t\t]\n\t}\n')


def _raw_len(value: Any) -> int:
    """Approximate byte length of a value as it appeared in the request."""
    try:
        return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    except (ValueError, TypeError, UnicodeEncodeError):
        return len(repr(value))


# --- rate limit ---------------------------------------------------------------------


class RateLimiter:
    """Per-workspace GCRA limiter: ``limit`` events per ``window`` seconds, cost = events.

    The stand-in has one workspace, so one limiter covers every write key.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit <= 0 or window <= 0:
            raise ValueError("rate limit needs a positive event count and window")
        self.limit = limit
        self.window = float(window)
        self._interval = self.window / limit
        self._clock = clock
        self._tat = 0.0
        self._lock = threading.Lock()

    def allow(self, cost: int) -> bool:
        """Take ``cost`` events from the budget; False (and nothing taken) when over it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            new_tat = tat + cost * self._interval
            if new_tat - now > self.window + 1e-9:
                return False
            self._tat = new_tat
            return True

    def reset(self) -> None:
        """Forget past traffic."""
        with self._lock:
            self._tat = 0.0


# --- the request pipeline -------------------------------------------------------------

#: One stored row per event: (type, user_id, anonymous_id, message_id, event_name, payload,
#: write_key, request_ip, received_at); the last three are the job-level fields.
Row = Tuple[Optional[str], str, str, str, Optional[str], str, str, str, str]

# One encoder for every event: json.dumps with keyword arguments builds a new one per call.
_ENCODER = json.JSONEncoder(allow_nan=False, check_circular=False)


@dataclass
class Accepted:
    """A request that passed every check: rows to store and the job-level fields."""

    rows: List[Row]
    events: List[Dict[str, Any]]
    request_ip: str
    received_at: str
    write_key: str
    size: int = 0


def _job_run_id(first: Dict[str, Any]) -> bool:
    """True when the first event carries ``context.sources.job_run_id`` or ``task_run_id``."""
    context = first.get("context")
    if not isinstance(context, dict):
        return False
    sources = context.get("sources")
    if not isinstance(sources, dict):
        return False
    job = sources.get("job_run_id")
    task = sources.get("task_run_id")
    return (isinstance(job, str) and job != "") or (isinstance(task, str) and task != "")


def build_events(
    body: bytes,
    req_type: str,
    *,
    write_key: str,
    request_ip: str,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    rate_limiter: Optional[RateLimiter] = None,
    skip_rate_limit: bool = False,
    now: Optional[datetime] = None,
) -> Accepted:
    """Apply rules 5-11 to a decompressed body; return what to store or raise.

    Raises ``ProtocolError`` with the gateway's answer for the first rule that fails, in
    the gateway's order: JSON, single-type wrap, per-element checks, rate limit, size,
    empty batch. Nothing is kept from a refused request (all-or-nothing).
    """
    data, spans, text = decode_json(body)
    size = len(body)
    if req_type != "batch":
        spans = None
        if not isinstance(data, dict):
            raise ProtocolError("not_rudder_event")
        type_literal = len(json.dumps(req_type))
        if "type" in data:
            size += type_literal - _raw_len(data["type"])
        else:
            size += type_literal + len('"type":') + (1 if data else 0)
        size += _BATCH_TEMPLATE_BYTES
        data["type"] = req_type
        batch: List[Any] = [data]
    else:
        value = data.get("batch") if isinstance(data, dict) else None
        if value is None:
            batch = []
        elif isinstance(value, list):
            batch = value
        else:
            batch = [value]

    moment = now if now is not None else datetime.now(timezone.utc)
    received_at = format_received_at(moment)
    ip_addr = request_ip
    contains_audience_list = False
    job_run = skip_rate_limit
    idents: List[Tuple[str, str, Optional[str]]] = []
    append_ident = idents.append
    # Text added to an event's original JSON, or None where it must be re-encoded.
    extras: List[Optional[str]] = []
    append_extra = extras.append
    ip_json = _ENCODER.encode(ip_addr)
    for index, event in enumerate(batch):
        if event.__class__ is not dict:
            raise ProtocolError("not_rudder_event")
        # Fast paths inline (plain printable ASCII ids); _identity handles the rest.
        value = event.get("anonymousId")
        if value.__class__ is str and value.isascii() and value.isprintable():
            anonymous_id = value.strip()
        else:
            anonymous_id = _identity(value)
        value = event.get("userId")
        if value.__class__ is str and value.isascii() and value.isprintable():
            user_id = value.strip()
        else:
            user_id = _identity(value)
        event_type = event.get("type")
        if event_type.__class__ is not str:
            event_type = None
        if not anonymous_id and not user_id and event_type not in ("extract", "record"):
            raise ProtocolError("non_identifiable")
        if index == 0 and _job_run_id(event):
            job_run = True
        fast = spans is not None and "rudderId" not in event
        rid = rudder_id(user_id, anonymous_id)
        event["rudderId"] = rid
        extra = ',"rudderId":"' + rid + '"'
        if "receivedAt" not in event:
            event["receivedAt"] = received_at
            extra += ',"receivedAt":"' + received_at + '"'
        if "request_ip" in event:
            # rudder-server quirk: an event's own request_ip becomes the request's ip for
            # the events after it and for the stored job records (empty if not a string).
            given = event["request_ip"]
            ip_addr = given if isinstance(given, str) else ""
            ip_json = _ENCODER.encode(ip_addr)
        else:
            event["request_ip"] = ip_addr
            extra += ',"request_ip":' + ip_json
        original = event.get("messageId")
        value = original
        if value.__class__ is str:
            if not (value.isascii() and value.isprintable()):
                value = sanitize_unicode(value)
            value = value.strip()
        if not value or value.__class__ is not str:
            value = str(uuid.uuid4())
        if original is None and "messageId" not in event:
            extra += ',"messageId":"' + value + '"'
        elif value != original:
            fast = False
        event["messageId"] = value
        if event_type == "audiencelist":
            contains_audience_list = True
        append_ident((user_id, anonymous_id, event_type))
        append_extra(extra if fast else None)

    if rate_limiter is not None and not job_run and not rate_limiter.allow(len(batch)):
        raise ProtocolError("rate_limited")
    if size > max_request_bytes and not contains_audience_list:
        raise ProtocolError("too_large")
    if not batch:
        raise ProtocolError("empty_batch")

    rows: List[Row] = []
    append_row = rows.append
    encode = _ENCODER.encode
    try:
        for index, event in enumerate(batch):
            user_id, anonymous_id, event_type = idents[index]
            added = extras[index]
            if added is None or spans is None:
                payload = encode(event)
            else:
                start, stop = spans[index]
                payload = text[start : stop - 1] + added + "}"
            name: Optional[str]
            name = event.get("event")
            if name.__class__ is not str:
                name = event.get("name")
                if name.__class__ is not str:
                    name = None
            append_row(
                (
                    event_type,
                    user_id,
                    anonymous_id,
                    event["messageId"],
                    name,
                    payload,
                    write_key,
                    ip_addr,
                    received_at,
                )
            )
    except (ValueError, TypeError) as exc:  # e.g. 1e999 decoded to inf: Go can't marshal it
        raise ProtocolError("invalid_json") from exc
    return Accepted(
        rows=rows,
        events=batch,
        request_ip=ip_addr,
        received_at=received_at,
        write_key=write_key,
        size=size,
    )
