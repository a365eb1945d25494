"""One ingestion request (``POST /v1/...``), step by step, as rudder-server's gateway.

Order: the fault plan, auth (before the body), read and gunzip, latency and hangs,
scripted failures, the gateway rules (``protocol.build_events``), one SQLite
transaction, then ``ok``.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional, Tuple

from .faults import Fault
from .protocol import ProtocolError, build_events
from .wire import TEXT

if TYPE_CHECKING:  # pragma: no cover
    from .handler import Handler

__all__ = ["ingest"]

logger: logging.Logger = logging.getLogger("rudder_analytics.devserver")


def ingest(h: Handler, req_type: str) -> None:
    """Answer one ingestion POST for request type ``req_type`` (``batch``, ``track``...)."""
    record = h.record
    assert record is not None
    fault = h.gateway.faults.next_fault()
    if fault is not None:
        record.fault = fault.kind
        if fault.kind == "drop":
            h.abort("dropped on purpose before reading (drop_next)")
            return
    write_key = ""
    if fault is None or fault.kind == "store_then_drop":
        h.lose_response = fault is not None
        auth_error, write_key = h.gateway.authenticate(h.header("Authorization"))
        if auth_error is not None:
            h.discard_body()
            h.answer_key(auth_error)
            return
    complete, body = _read(h)
    if not complete or not _wait(h, fault):
        return
    if fault is not None and fault.kind == "fail":
        h.answer_fault(fault)
    elif body is None:
        h.answer_key("body_read_failed")
    else:
        _accept(h, req_type, write_key, body)


def _read(h: Handler) -> Tuple[bool, Optional[bytes]]:
    """(read in full, decompressed body or None when gunzip failed); logs the body."""
    record = h.record
    assert record is not None
    raw = h.read_body()
    if raw is None:
        h.abort("the request body could not be read (client gone or broken framing)")
        return False, None
    record.raw_size = len(raw)
    body: Optional[bytes] = raw
    if h.header("Content-Encoding") == "gzip":
        try:
            body = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            body = None
    h.gateway.log.attach_body(record, body)
    return True, body


def _wait(h: Handler, fault: Optional[Fault]) -> bool:
    """Apply the latency and a ``hang`` fault; False when the request ends here."""
    stopping = h.gateway.stopping
    latency = h.gateway.faults.latency
    if latency > 0 and stopping.wait(latency):
        h.abort("the server stopped during the added latency")
        return False
    if fault is not None and fault.kind == "hang":
        stopping.wait(fault.seconds)
        h.abort(f"no answer on purpose (hang_next, {fault.seconds:g} s)")
        return False
    return True


def _accept(h: Handler, req_type: str, write_key: str, body: bytes) -> None:
    """The gateway rules, then store all events in one transaction and answer ``ok``."""
    gateway = h.gateway
    try:
        accepted = build_events(
            body,
            req_type,
            write_key=write_key,
            request_ip=h.request_ip(),
            max_request_bytes=gateway.max_request_bytes,
            rate_limiter=gateway.limiter,
            skip_rate_limit=bool(
                h.header("X-Rudder-Job-Run-Id") or h.header("X-Rudder-Task-Run-Id")
            ),
            now=datetime.now(timezone.utc),
        )
    except ProtocolError as exc:
        h.answer_key(exc.key)
        return
    try:
        gateway.stored(accepted)
    except Exception as exc:  # the "DB store failed" answer: 500 with the raw error text
        logger.debug("store failed: %r", exc)
        h.answer_text(500, str(exc) or exc.__class__.__name__)
        return
    assert h.record is not None
    h.record.events = len(accepted.rows)
    h.answer(200, gateway.ok_body, TEXT)
