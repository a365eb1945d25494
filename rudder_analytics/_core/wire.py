"""What goes on the wire: bodies, compression, request headers, a capped answer body.

Message encoding itself lives in :mod:`rudder_analytics._build.encoding` (it runs in the
caller's thread); this module re-exports what a driver needs and adds the parts
that both transports (``requests`` and ``httpx``) must build identically.
"""

from __future__ import annotations

import base64

from .._build.encoding import body_overhead, build_body, compress, decode_message, message_overhead
from ..version import VERSION

__all__ = [
    "USER_AGENT",
    "CappedBody",
    "body_overhead",
    "build_body",
    "compress",
    "decode_message",
    "message_overhead",
    "request_headers",
]

USER_AGENT = f"rudder-analytics-python/{VERSION}"


def request_headers(write_key: str, gzip: bool) -> dict[str, str]:
    """The headers of every ``/v1/batch`` POST (Basic auth: key as user, empty password)."""
    credentials = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
    headers = {
        "Authorization": f"Basic {credentials}",
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
    }
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return headers


class CappedBody:
    """Collects a response body up to ``cap`` bytes; :attr:`full` says to stop reading.

    A transport feeds it chunks as they arrive and closes the connection once it
    is full: an endless or huge answer never costs more than ``cap`` bytes.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._chunks: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Add one chunk (the part past the cap is discarded)."""
        self._chunks.append(chunk)
        self._size += len(chunk)

    @property
    def full(self) -> bool:
        """True once more than ``cap`` bytes arrived: stop reading, close."""
        return self._size > self._cap

    def text(self) -> str:
        """The body as text, UTF-8 with replacement, at most ``cap`` bytes of it."""
        return b"".join(self._chunks)[: self._cap].decode("utf-8", "replace")
