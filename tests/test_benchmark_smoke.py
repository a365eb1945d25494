"""Smoke test of the benchmark sink: it counts events in plain and gzip bodies (no timing)."""

from __future__ import annotations

import gzip
import http.client
import importlib.util
import json
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SINK_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "sink.py"


def _load_sink() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sink", SINK_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def sink() -> Any:
    mod = _load_sink()
    server = mod.Sink(port=0)
    thread = threading.Thread(target=server.serve, args=(60.0,), daemon=True)
    thread.start()
    yield server
    server.stop()
    thread.join(5)


def _messages(n: int) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "Order Completed", "userId": f"u{i}", "properties": {"i": i}}
        for i in range(n)
    ]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, gzipped: bool) -> bytes:
    headers = {"Content-Type": "application/json"}
    if gzipped:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    assert resp.status == 200
    return resp.read()


def test_sink_counts_plain_and_gzip_bodies(sink: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=10)
    rudder_like = json.dumps({"batch": _messages(7), "sentAt": "2024-01-01T00:00:00Z"})
    posthog_like = json.dumps({"api_key": "k", "batch": _messages(5)}, separators=(",", ":"))
    assert _post(conn, "/v1/batch", rudder_like.encode(), gzipped=False) == b"OK"
    assert _post(conn, "/v1/batch", rudder_like.encode(), gzipped=True) == b"OK"
    assert json.loads(_post(conn, "/batch/", posthog_like.encode(), gzipped=True)) == {"status": 1}
    conn.request("GET", "/_count")
    snap = json.loads(conn.getresponse().read())
    assert snap["events"] == 7 + 7 + 5
    assert snap["requests"] == 3
    assert snap["mismatches"] == 0
    assert snap["verified"] == 3
    assert snap["paths"] == {"/v1/batch": 2, "/batch/": 1}

    conn.request("GET", "/_reset")
    conn.getresponse().read()
    conn.request("GET", "/_wait?n=0&timeout=1")
    assert json.loads(conn.getresponse().read())["events"] == 0
    conn.close()
