"""The gateway's request rules as pure functions: identity, enrichment, limits.

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
from functools import lru_cache
from hashlib import md5
from typing import Any, Callable, Dict, List, Optional, Tuple

from .answers import ProtocolError, fault_text, message, status_of
from .jsontext import decode_json, go_json, load_payload, sanitize_surrogates

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "INGEST_ROUTES",
    "Accepted",
    "ProtocolError",
    "RateLimiter",
    "Row",
    "build_events",
    "decode_json",
    "fault_text",
    "format_received_at",
    "load_payload",
    "message",
    "rudder_id",
    "sanitize_surrogates",
    "sanitize_unicode",
    "status_of",
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


def _identity(value: Any) -> str:
    """``strings.TrimSpace(sanitize.Unicode(stringify.Any(v)))`` for userId/anonymousId."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = go_json(value)
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
        self.window: float = float(window)
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


def _ident(value: Any) -> str:
    """An identity field; plain printable ASCII (the usual case) needs only a strip."""
    if value.__class__ is str and value.isascii() and value.isprintable():
        return value.strip()
    return _identity(value)


class _Enricher:
    """Checks and enriches a request's events one by one (rule 7), noting for each the
    text to append to its original JSON (None where it must be re-encoded)."""

    def __init__(self, request_ip: str, received_at: str, fast: bool, job_run: bool) -> None:
        self.ip = request_ip
        self.ip_json = _ENCODER.encode(request_ip)
        self.received_at = received_at
        self.fast = fast
        self.job_run = job_run
        self.audience_list = False
        self.idents: List[Tuple[str, str, Optional[str]]] = []
        self.extras: List[Optional[str]] = []

    def add(self, index: int, event: Any) -> None:
        """Check one event (identity) and add the server's fields to it."""
        if event.__class__ is not dict:
            raise ProtocolError("not_rudder_event")
        anonymous_id = _ident(event.get("anonymousId"))
        user_id = _ident(event.get("userId"))
        event_type = event.get("type")
        if event_type.__class__ is not str:
            event_type = None
        if not anonymous_id and not user_id and event_type not in ("extract", "record"):
            raise ProtocolError("non_identifiable")
        if index == 0 and _job_run_id(event):
            self.job_run = True
        if event_type == "audiencelist":
            self.audience_list = True
        fast = self.fast and "rudderId" not in event
        rid = rudder_id(user_id, anonymous_id)
        event["rudderId"] = rid
        extra = ',"rudderId":"' + rid + '"' + self._received_at(event) + self._request_ip(event)
        added = self._message_id(event)
        self.idents.append((user_id, anonymous_id, event_type))
        self.extras.append(extra + added if fast and added is not None else None)

    def _received_at(self, event: Dict[str, Any]) -> str:
        if "receivedAt" in event:
            return ""
        event["receivedAt"] = self.received_at
        return ',"receivedAt":"' + self.received_at + '"'

    def _request_ip(self, event: Dict[str, Any]) -> str:
        if "request_ip" in event:
            # rudder-server quirk: an event's own request_ip becomes the request's ip for
            # the events after it and for the stored job records (empty if not a string).
            given = event["request_ip"]
            self.ip = given if isinstance(given, str) else ""
            self.ip_json = _ENCODER.encode(self.ip)
            return ""
        event["request_ip"] = self.ip
        return ',"request_ip":' + self.ip_json

    @staticmethod
    def _message_id(event: Dict[str, Any]) -> Optional[str]:
        """Trim or replace ``messageId``; the text to append, or None if it changed."""
        absent = "messageId" not in event
        original = event.get("messageId")
        value = original
        if value.__class__ is str:
            if not (value.isascii() and value.isprintable()):
                value = sanitize_unicode(value)
            value = value.strip()
        if not value or value.__class__ is not str:
            value = str(uuid.uuid4())
        event["messageId"] = value
        if original is None and absent:
            return ',"messageId":"' + value + '"'
        return "" if value == original else None


def _batch(data: Any, req_type: str, size: int) -> Tuple[List[Any], int]:
    """The events of a decoded body (rule 6: a single-type body is wrapped in a batch)
    and the size the gateway measures (for a wrapped body, the wrapper's bytes too)."""
    if req_type == "batch":
        value = data.get("batch") if isinstance(data, dict) else None
        if value is None:
            return [], size
        return (value if isinstance(value, list) else [value]), size
    if not isinstance(data, dict):
        raise ProtocolError("not_rudder_event")
    type_literal = len(json.dumps(req_type))
    if "type" in data:
        size += type_literal - _raw_len(data["type"])
    else:
        size += type_literal + len('"type":') + (1 if data else 0)
    data["type"] = req_type
    return [data], size + _BATCH_TEMPLATE_BYTES


def _event_name(event: Dict[str, Any]) -> Optional[str]:
    name = event.get("event")
    if name.__class__ is not str:
        name = event.get("name")
        if name.__class__ is not str:
            return None
    return name


def _rows(
    batch: List[Any], enricher: _Enricher, spans: Optional[List[Tuple[int, int]]], text: str,
    write_key: str,
) -> List[Row]:
    """One row per event; unchanged events keep their original text plus the additions."""
    rows: List[Row] = []
    append_row = rows.append
    encode = _ENCODER.encode
    ip_addr = enricher.ip
    received_at = enricher.received_at
    try:
        for index, event in enumerate(batch):
            user_id, anonymous_id, event_type = enricher.idents[index]
            added = enricher.extras[index]
            if added is None or spans is None:
                payload = encode(event)
            else:
                start, stop = spans[index]
                payload = text[start : stop - 1] + added + "}"
            append_row(
                (
                    event_type,
                    user_id,
                    anonymous_id,
                    event["messageId"],
                    _event_name(event),
                    payload,
                    write_key,
                    ip_addr,
                    received_at,
                )
            )
    except (ValueError, TypeError) as exc:  # e.g. 1e999 decoded to inf: Go can't marshal it
        raise ProtocolError("invalid_json") from exc
    return rows


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
    if req_type != "batch":
        spans = None
    batch, size = _batch(data, req_type, len(body))
    moment = now if now is not None else datetime.now(timezone.utc)
    enricher = _Enricher(request_ip, format_received_at(moment), spans is not None,
                         skip_rate_limit)
    for index, event in enumerate(batch):
        enricher.add(index, event)
    if (
        rate_limiter is not None
        and not enricher.job_run
        and not rate_limiter.allow(len(batch))
    ):
        raise ProtocolError("rate_limited")
    if size > max_request_bytes and not enricher.audience_list:
        raise ProtocolError("too_large")
    if not batch:
        raise ProtocolError("empty_batch")
    rows = _rows(batch, enricher, spans, text, write_key)
    return Accepted(
        rows=rows,
        events=batch,
        request_ip=enricher.ip,
        received_at=enricher.received_at,
        write_key=write_key,
        size=size,
    )
