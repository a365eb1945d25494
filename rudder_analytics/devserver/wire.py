"""Small HTTP helpers of the stand-in: header values, auth, dates, addresses, bodies.

Pure functions (or functions of a readable file), so the handler stays about routing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import time
from datetime import datetime, timezone
from email.utils import formatdate
from http import HTTPStatus
from io import BufferedIOBase
from typing import List, Optional, Tuple

__all__ = [
    "DISCARD_LIMIT",
    "JSON",
    "TEXT",
    "basic_auth_user",
    "format_rfc3339",
    "http_date",
    "is_loopback",
    "read_body",
    "reason_phrase",
]

# Go's net/http discards at most this much of an unread request body to keep the
# connection; past it the connection is closed after the answer.
DISCARD_LIMIT = 256 * 1024
TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=utf-8"

_date_cache: Tuple[int, str] = (0, "")


def http_date() -> str:
    """``Date`` header value, formatted once per second."""
    global _date_cache
    now = int(time.time())
    cached = _date_cache
    if cached[0] == now:
        return cached[1]
    text = formatdate(now, usegmt=True)
    _date_cache = (now, text)
    return text


def reason_phrase(status: int) -> str:
    """The status line's reason phrase (``Status`` for codes http.HTTPStatus lacks)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


def basic_auth_user(header: Optional[str]) -> str:
    """Go's ``r.BasicAuth()`` username, or "" when the header is missing or malformed."""
    if not header or len(header) < 6 or header[:6].lower() != "basic ":
        return ""
    try:
        decoded = base64.b64decode(header[6:].replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return ""
    text = decoded.decode("utf-8", "surrogateescape")
    if ":" not in text:
        return ""
    return text.split(":", 1)[0]


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost`` names."""
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def format_rfc3339(moment: datetime) -> str:
    """``2006-01-02T15:04:05Z`` in UTC."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_body(
    rfile: BufferedIOBase, content_length: str, chunked: bool, limit: Optional[int] = None
) -> Optional[bytes]:
    """The raw body; None if the client went away, framing is broken or over ``limit``."""
    if chunked:
        return _read_chunked(rfile, limit)
    if not content_length:
        return b""
    try:
        length = int(content_length)
    except ValueError:
        return None
    if length < 0 or (limit is not None and length > limit):
        return None
    data = rfile.read(length) if length else b""
    return data if len(data) == length else None


def _read_chunked(rfile: BufferedIOBase, limit: Optional[int]) -> Optional[bytes]:
    parts: List[bytes] = []
    total = 0
    while True:
        line = rfile.readline(65537)
        if not line.endswith(b"\n"):
            return None
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            return None
        if size == 0:
            _skip_trailers(rfile)
            return b"".join(parts)
        total += size
        if size < 0 or (limit is not None and total > limit):
            return None
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            return None
        parts.append(chunk)


def _skip_trailers(rfile: BufferedIOBase) -> None:
    """Read the trailer lines up to the blank line that ends a chunked body."""
    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
        pass
