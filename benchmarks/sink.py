"""A fast HTTP sink on loopback that counts delivered events, for the SDK benchmark.

Run as a child process (``python benchmarks/sink.py --port 0 --cpu 1``); it prints one JSON
line ``{"port": N, "pid": P, "cpu": ...}`` on stdout once it listens, then serves until
killed or until ``--max-seconds`` elapse.

It speaks just enough HTTP/1.1: keep-alive, ``Content-Length`` or chunked bodies,
``Expect: 100-continue``, gunzip for ``Content-Encoding: gzip``. Every POST gets ``200``:
PostHog's ``/batch/`` gets ``{"status":1}`` (JSON), everything else ``OK``.

Events are counted by occurrences of a marker (by default the benchmark's event name in
JSON quotes, ``"Order Completed"``), which is one per message in the ``batch`` array of all
four SDKs' bodies. To keep that honest, the first bodies after every reset and then every
``--verify-every``-th body are also parsed as JSON and ``len(batch)`` compared with the
marker count; disagreements are counted as ``mismatches``.

Control channel (same port):

* ``GET /_count`` -> JSON snapshot: events, requests, bytes, last_ns (``time.monotonic_ns()``
  when the last event-bearing body was counted), cpu_s (the sink's process CPU), verified,
  mismatches.
* ``GET /_reset`` -> resets the counters, answers the snapshot taken just before.
* ``GET /_wait?n=N&timeout=S`` -> long poll: answers the snapshot as soon as events >= N, or
  after S seconds (``"timed_out": true``).

``python benchmarks/sink.py capacity --port P --seconds 3 --cpu 0`` is the capacity probe: a
tight loop posting a pre-built gzip batch of 100 events over one keep-alive connection; it
prints one JSON line with the events/s it achieved.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import selectors
import socket
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent / "drivers"))
from pinning import pin_to_cpu, renice  # shared with the drivers

DEFAULT_MARKER = b'"Order Completed"'
VERIFY_FIRST = 16

_STATUS_TEXT = {
    200: b"OK",
    100: b"Continue",
    400: b"Bad Request",
    404: b"Not Found",
    411: b"Length Required",
}




def count_exact(raw: bytes) -> int:
    """Count messages in the JSON body's ``batch`` array (0 when there is none)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return -1
    if isinstance(doc, dict) and isinstance(doc.get("batch"), list):
        return len(doc["batch"])
    return 0


def _response(status: int, body: bytes, content_type: bytes = b"text/plain") -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 %d %s\r\n" % (status, _STATUS_TEXT.get(status, b"Unknown")),
            b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body)),
            b"Connection: keep-alive\r\n\r\n",
            body,
        )
    )


_OK_PLAIN = _response(200, b"OK")
_OK_POSTHOG = _response(200, b'{"status":1}', b"application/json")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Conn:
    """Per-connection read and write buffers."""

    __slots__ = ("continued", "head", "rbuf", "sock", "want", "wbuf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        # Parsed request head waiting for its body: (method, target, headers) or None.
        self.head: tuple[str, str, dict[str, str]] | None = None
        self.want = -1  # body length wanted for `head`, -2 for chunked
        self.continued = False


class Sink:
    """Single-threaded selector loop that counts events in POSTed batches."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        marker: bytes = DEFAULT_MARKER,
        verify_every: int = 64,
    ) -> None:
        self.marker = marker
        self.verify_every = max(1, verify_every)
        self.sel = selectors.DefaultSelector()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, port))
        self.lsock.listen(128)
        self.lsock.setblocking(False)
        self.port: int = self.lsock.getsockname()[1]
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.waiters: list[tuple[_Conn, int, float]] = []
        self.running = True
        self.reset()

    # ------------------------------------------------------------------ counters
    def reset(self) -> None:
        """Zero the counters (the control channel's ``/_reset``)."""
        self.events = 0
        self.requests = 0
        self.bytes_wire = 0
        self.bytes_raw = 0
        self.last_ns = 0
        self.first_ns = 0
        self.verified = 0
        self.mismatches = 0
        self.bad_bodies = 0
        self.paths: dict[str, int] = {}

    def snapshot(self) -> dict[str, Any]:
        """The counters as a JSON-able dict."""
        return {
            "events": self.events,
            "requests": self.requests,
            "bytes_wire": self.bytes_wire,
            "bytes_raw": self.bytes_raw,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "now_ns": time.monotonic_ns(),
            "cpu_s": time.process_time(),
            "verified": self.verified,
            "mismatches": self.mismatches,
            "bad_bodies": self.bad_bodies,
            "paths": dict(self.paths),
        }

    # ------------------------------------------------------------------ loop
    def serve(self, max_seconds: float = 3600.0, parent_pid: int | None = None) -> None:
        """Serve until ``stop()``, ``max_seconds`` elapse or process ``parent_pid`` is gone."""
        deadline = time.monotonic() + max_seconds
        select = self.sel.select
        while self.running:
            now = time.monotonic()
            if now >= deadline:
                break
            if parent_pid is not None and os.getppid() != parent_pid:
                break  # orphaned: whoever started us is gone
            timeout = min(0.25, deadline - now)
            if self.waiters:
                timeout = max(0.0, min(timeout, min(w[2] for w in self.waiters) - now))
            for key, mask in select(timeout):
                if key.data is None:
                    self._accept()
                    continue
                conn: _Conn = key.data
                if mask & selectors.EVENT_READ:
                    self._read(conn)
                if mask & selectors.EVENT_WRITE and conn.wbuf:
                    self._flush(conn)
            if self.waiters:
                self._check_waiters(time.monotonic())
        self.close()

    def stop(self) -> None:
        """Ask ``serve()`` to return after the current iteration."""
        self.running = False

    def close(self) -> None:
        """Close every socket."""
        for key in list(self.sel.get_map().values()):
            with contextlib.suppress(OSError):
                key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sel.register(sock, selectors.EVENT_READ, _Conn(sock))

    def _drop(self, conn: _Conn) -> None:
        self.waiters = [w for w in self.waiters if w[0] is not conn]
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(conn.sock)
        conn.sock.close()

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(1 << 20)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        if not data:
            self._drop(conn)
            return
        conn.rbuf += data
        try:
            self._parse(conn)
        except ValueError:
            self._send(conn, _response(400, b"bad request"))
            self._drop(conn)

    def _parse(self, conn: _Conn) -> None:
        """Handle every complete request at the front of the connection's read buffer."""
        buf = conn.rbuf
        while True:
            head = conn.head or _parse_head(conn)
            if head is None:
                return
            method, target, headers = head
            body = self._take_body(conn, headers)
            if body is None:
                return
            conn.head = None
            self._handle(conn, method, target, headers, body)
            if not buf:
                return

    def _take_body(self, conn: _Conn, headers: dict[str, str]) -> bytes | None:
        """The request body from the read buffer (consuming it), or None while incomplete."""
        buf = conn.rbuf
        if conn.want > 0 and len(buf) < conn.want:
            self._maybe_continue(conn, headers)
            return None
        if conn.want == -2:
            body = _dechunk(buf)
            if body is None:
                self._maybe_continue(conn, headers)
            return body
        body = bytes(buf[: conn.want])
        del buf[: conn.want]
        return body

    def _maybe_continue(self, conn: _Conn, headers: dict[str, str]) -> None:
        """Answer ``Expect: 100-continue`` once per request."""
        if not conn.continued and headers.get("expect", "").lower() == "100-continue":
            conn.continued = True
            self._send(conn, _CONTINUE)

    def _handle(
        self, conn: _Conn, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        if target.startswith("/_"):
            self._control(conn, target)
            return
        path = urlsplit(target).path
        if method == "POST":
            self._count(path, headers, body)
        self._send(conn, _OK_POSTHOG if path.startswith("/batch") else _OK_PLAIN)
        if headers.get("connection", "").lower() == "close":
            self._drop(conn)

    def _count(self, path: str, headers: dict[str, str], body: bytes) -> None:
        self.requests += 1
        self.bytes_wire += len(body)
        self.paths[path] = self.paths.get(path, 0) + 1
        raw = body
        if "gzip" in headers.get("content-encoding", "").lower():
            try:
                raw = zlib.decompress(body, 47)
            except zlib.error:
                self.bad_bodies += 1
                return
        self.bytes_raw += len(raw)
        n = raw.count(self.marker)
        if self.requests <= VERIFY_FIRST or self.requests % self.verify_every == 0:
            self.verified += 1
            exact = count_exact(raw)
            if exact != n:
                self.mismatches += 1
                if exact >= 0:
                    n = exact  # trust the parser when it could parse
        if n:
            self.events += n
            now = time.monotonic_ns()
            if not self.first_ns:
                self.first_ns = now
            self.last_ns = now

    def _control(self, conn: _Conn, target: str) -> None:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        if parts.path == "/_count":
            self._send_json(conn, self.snapshot())
        elif parts.path == "/_reset":
            snap = self.snapshot()
            self.reset()
            self._send_json(conn, snap)
        elif parts.path == "/_wait":
            n = int(query.get("n", ["0"])[0])
            timeout = float(query.get("timeout", ["30"])[0])
            if self.events >= n:
                self._send_json(conn, {**self.snapshot(), "timed_out": False})
            else:
                self.waiters.append((conn, n, time.monotonic() + timeout))
        elif parts.path == "/_stop":
            self._send_json(conn, self.snapshot())
            self.stop()
        else:
            self._send(conn, _response(404, b"unknown control path"))

    def _check_waiters(self, now: float) -> None:
        keep = []
        for conn, n, deadline in self.waiters:
            if self.events >= n:
                self._send_json(conn, {**self.snapshot(), "timed_out": False})
            elif now >= deadline:
                self._send_json(conn, {**self.snapshot(), "timed_out": True})
            else:
                keep.append((conn, n, deadline))
        self.waiters = keep

    def _send_json(self, conn: _Conn, doc: dict[str, Any]) -> None:
        self._send(conn, _response(200, json.dumps(doc).encode(), b"application/json"))

    def _send(self, conn: _Conn, data: bytes) -> None:
        if conn.wbuf:
            conn.wbuf += data
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return
        if sent < len(data):
            conn.wbuf += data[sent:]
            self.sel.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)

    def _flush(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        del conn.wbuf[:sent]
        if not conn.wbuf:
            self.sel.modify(conn.sock, selectors.EVENT_READ, conn)


def _parse_head(conn: _Conn) -> tuple[str, str, dict[str, str]] | None:
    """Parse a complete request head from the read buffer (consuming it) into ``conn.head``;
    None while it is incomplete."""
    buf = conn.rbuf
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError("header too large")
        return None
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    del buf[: end + 4]
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    conn.head = (method, target, headers)
    conn.continued = False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        conn.want = -2
    else:
        conn.want = int(headers.get("content-length", "0") or 0)
    return conn.head


def _dechunk(buf: bytearray) -> bytes | None:
    """Decode a complete chunked body from the front of ``buf`` (consuming it), else None."""
    pos = 0
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        start = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # trailers end with an empty line
            if end < 0:
                return None
            del buf[: end + 4]
            return b"".join(parts)
        if len(buf) < start + size + 2:
            return None
        parts.append(bytes(buf[start : start + size]))
        pos = start + size + 2


# ---------------------------------------------------------------------- client helpers
def http_get_json(port: int, path: str, timeout: float = 10.0) -> dict[str, Any]:
    """GET a control path on the sink and decode the JSON answer (stdlib only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path.encode())
        return json.loads(_read_response(sock))


def _read_response(sock: socket.socket) -> bytes:
    """Read one HTTP response with a Content-Length body; return the body."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("sink closed the connection")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("sink closed the connection")
        rest += chunk
    return rest[:length]


def sample_batch_body(n: int = 100) -> bytes:
    """A RudderStack-shaped JSON batch of ``n`` track messages with the benchmark payload."""
    msgs = []
    for i in range(n):
        msgs.append(
            {
                "type": "track",
                "event": "Order Completed",
                "userId": f"user-{i % 1000}",
                "anonymousId": None,
                "messageId": str(uuid.uuid4()),
                "timestamp": f"2024-05-01T12:00:{i % 60:02d}.{i * 7919 % 1000000:06d}+00:00",
                "channel": "server",
                "context": {"library": {"name": "analytics-python", "version": "2.1.9"}},
                "integrations": {"All": True},
                "properties": {
                    "order_id": f"ord-{i}",
                    "revenue": 49.99 + i,
                    "quantity": 3,
                    "currency": "USD",
                    "coupon": None,
                    "is_gift": False,
                    "discount": 0.15,
                    "created_at": "2024-05-01T12:00:00+00:00",
                    "tags": ["summer", "sale"],
                    "shipping": {"method": "express", "cost": 5.5, "address": {"city": "Berlin"}},
                },
            }
        )
    return json.dumps({"batch": msgs, "sentAt": "2024-05-01T12:00:00+00:00"}).encode()


def capacity(port: int, seconds: float, gzipped: bool = True, depth: int = 4) -> dict[str, Any]:
    """Post a pre-built batch of 100 in a tight loop for ``seconds``, keeping ``depth``
    requests in flight on one keep-alive connection (HTTP/1.1 pipelining, so the figure is
    the sink's throughput rather than the loopback round trip); return the rate."""
    raw = sample_batch_body(100)
    body = gzip.compress(raw, 6) if gzipped else raw
    head = (
        b"POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Basic YmVuY2g6\r\n"
    )
    if gzipped:
        head += b"Content-Encoding: gzip\r\n"
    request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
    expected = _OK_PLAIN  # every answer to /v1/batch is exactly this
    before = http_get_json(port, "/_count")
    sent = answered = 0
    pending = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        deadline = start + seconds
        for _ in range(max(1, depth)):
            sock.sendall(request)
            sent += 1
        while answered < sent:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("sink closed the connection")
            pending += chunk
            done, rest = divmod(len(pending), len(expected))
            if done:
                if pending[: len(expected)] != expected:
                    raise ValueError(f"unexpected answer from the sink: {pending[:80]!r}")
                pending = pending[len(pending) - rest :]
                answered += done
                if time.perf_counter() < deadline:
                    sock.sendall(request * done)
                    sent += done
        elapsed = time.perf_counter() - start
    after = http_get_json(port, "/_count")
    counted = after["events"] - before["events"]
    sink_cpu = after["cpu_s"] - before["cpu_s"]
    return {
        "requests": sent,
        "depth": depth,
        "events_sent": sent * 100,
        "events_counted": counted,
        "seconds": elapsed,
        "events_per_s": counted / elapsed,
        "events_per_sink_cpu_s": counted / sink_cpu if sink_cpu > 0 else None,
        "body_bytes": len(body),
        "raw_bytes": len(raw),
        "gzip": gzipped,
        "sink_cpu_s": sink_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    """Command line: serve (default) or ``capacity``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", nargs="?", default="serve", choices=["serve", "capacity"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--nice", type=int, default=0, help="nice increment (e.g. -10)")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this core (-1: don't)")
    parser.add_argument("--marker", default=DEFAULT_MARKER.decode())
    parser.add_argument("--verify-every", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=3600.0)
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process exits"
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="capacity: how long")
    parser.add_argument("--plain", action="store_true", help="capacity: no gzip")
    parser.add_argument("--depth", type=int, default=4, help="capacity: requests in flight")
    args = parser.parse_args(argv)
    pinned = pin_to_cpu(args.cpu) + renice(args.nice)
    if args.mode == "capacity":
        result = capacity(args.port, args.seconds, gzipped=not args.plain, depth=args.depth)
        result["pinned"] = pinned
        print(json.dumps(result), flush=True)
        return 0
    sink = Sink(port=args.port, marker=args.marker.encode(), verify_every=args.verify_every)
    print(json.dumps({"port": sink.port, "pid": os.getpid(), "pinned": pinned}), flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sink.serve(args.max_seconds, parent_pid=os.getppid() if args.exit_with_parent else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
