"""The live feed (``GET /_dev/live``), rejected requests and the console lines, over
real loopback HTTP without a browser.

The feed is Server-Sent Events: a ``hello``, then one message per stored event or
refused request, numbered so that a reconnecting page resumes. Ingestion never waits
for a reader, and ``stop()`` ends open streams instead of hanging on them.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests

from rudder_analytics.devserver import DevServer
from rudder_analytics.devserver.console import format_line, format_rejection
from rudder_analytics.devserver.live import LiveFeed

KEY = "live-key"


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer(write_keys=(KEY,), disabled_write_keys=("off-key",)) as dev:
        yield dev


def post(server: DevServer, body: Any, key: str = KEY, path: str = "/v1/batch") -> int:
    return requests.post(server.url + path, json=body, auth=(key, ""), timeout=20).status_code


class Stream:
    """A raw SSE reader: ``messages(n)`` returns the next ``n`` (id, JSON) messages."""

    def __init__(self, server: DevServer, last_event_id: Optional[str] = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.conn.request("GET", "/_dev/live", headers=headers)
        self.response = self.conn.getresponse()

    def message(self) -> Optional[Tuple[Optional[str], Dict[str, Any]]]:
        """The next data message (comments and retry lines skipped); None at the end."""
        event_id: Optional[str] = None
        data: List[str] = []
        while True:
            line = self.response.readline()
            if not line:
                return None
            text = line.decode("utf-8").rstrip("\r\n")
            if text == "" and data:
                return event_id, json.loads("\n".join(data))
            if text.startswith("id: "):
                event_id = text[4:]
            elif text.startswith("data: "):
                data.append(text[6:])

    def messages(self, n: int) -> List[Tuple[Optional[str], Dict[str, Any]]]:
        out = []
        for _ in range(n):
            message = self.message()
            assert message is not None, "the stream ended early"
            out.append(message)
        return out

    def close(self) -> None:
        self.conn.close()


def test_stream_sends_hello_then_each_stored_event(server: DevServer) -> None:
    """The stream opens with the write keys, then carries every stored event exactly as
    stored (enrichment included), numbered in order."""
    stream = Stream(server)
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        _, hello = stream.messages(1)[0]
        assert hello["kind"] == "hello" and hello["write_keys"] == [KEY]
        body = {"batch": [{"type": "track", "userId": "u1", "event": "A", "properties": {
            "multi": "line\nvalue"}}, {"type": "page", "anonymousId": "a1", "name": "Home"}]}
        assert post(server, body) == 200
        (first_id, first), (second_id, second) = stream.messages(2)
        assert [first["kind"], second["kind"]] == ["event", "event"]
        assert [first["event"], second["event"]] == server.events()
        assert first_id is not None and second_id is not None
        assert int(second_id.split(":")[1]) == int(first_id.split(":")[1]) + 1
    finally:
        stream.close()


def test_reconnect_resumes_after_the_last_event_id(server: DevServer) -> None:
    """A reconnecting page (Last-Event-ID) gets only newer messages; an id from another
    server (a restart) gets everything kept."""
    assert post(server, {"batch": [{"type": "track", "userId": "u1", "event": "One"}]}) == 200
    stream = Stream(server)
    try:
        first_id, first = stream.messages(2)[1]
    finally:
        stream.close()
    assert first["event"]["event"] == "One"
    assert post(server, {"batch": [{"type": "track", "userId": "u1", "event": "Two"}]}) == 200
    resumed = Stream(server, last_event_id=first_id)
    try:
        _, message = resumed.messages(2)[1]
        assert message["event"]["event"] == "Two"
    finally:
        resumed.close()
    restarted = Stream(server, last_event_id="another-server:1")
    try:
        names = [m["event"]["event"] for _, m in restarted.messages(3)[1:]]
        assert names == ["One", "Two"]
    finally:
        restarted.close()


def test_rejections_are_recorded_with_status_reason_and_route(server: DevServer) -> None:
    """Refused requests (bad key, disabled source, bad JSON, wrong route, scripted
    failure, dropped connection) are recorded with status and reason, and reach the
    stream; accepted ones and /_dev/ calls are not."""
    stream = Stream(server)
    try:
        stream.messages(1)
        event = {"batch": [{"type": "track", "userId": "u1", "event": "E"}]}
        assert post(server, event, key="nope") == 401
        assert post(server, event, key="off-key") == 404
        bad = requests.post(server.url + "/v1/batch", data=b"{not json", auth=(KEY, ""),
                            timeout=20)
        assert bad.status_code == 400
        assert post(server, event, path="/v1/batch/") == 404
        server.fail_next(1, status=503)
        assert post(server, event) == 503
        server.drop_next(1)
        with pytest.raises(requests.ConnectionError):
            post(server, event)
        assert post(server, event) == 200
        assert requests.get(server.url + "/_dev/nothing", timeout=20).status_code == 404
        streamed = [m["rejection"] for _, m in stream.messages(6)]
    finally:
        stream.close()
    rejections = server.rejections()
    assert rejections == streamed
    summary = [(r["status"], r["path"], r["reason"], r["write_key"]) for r in rejections]
    assert summary == [
        (401, "/v1/batch", "invalid write key", "nope"),
        (404, "/v1/batch", "source is disabled", "off-key"),
        (400, "/v1/batch", "invalid json", KEY),
        (404, "/v1/batch/", "404 page not found", KEY),
        (503, "/v1/batch", "Service Unavailable", KEY),
        (None, "/v1/batch", "dropped on purpose before reading (drop_next)", KEY),
    ]
    assert rejections[2]["body"] == "{not json"
    assert rejections[4]["fault"] == "fail" and rejections[5]["fault"] == "drop"
    assert requests.get(server.url + "/_dev/rejections?limit=1", timeout=20).json() == [
        rejections[0]
    ]
    server.reset()
    assert server.rejections() == []


def test_stop_ends_open_streams_promptly(server: DevServer) -> None:
    """stop() does not wait for an open live page: it returns, and the stream ends."""
    stream = Stream(server)
    stream.messages(1)
    ended = threading.Event()

    def read_to_end() -> None:
        while stream.message() is not None:
            pass
        ended.set()

    reader = threading.Thread(target=read_to_end, daemon=True)
    reader.start()
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(20)
    assert not stopper.is_alive(), "stop() hung on an open stream"
    assert ended.wait(20), "the stream did not end"
    stream.close()


def test_a_stalled_reader_never_holds_up_ingestion(server: DevServer) -> None:
    """A page that stops reading (its socket buffers full) does not slow or block the
    requests: every one is answered and stored, and the feed stays bounded."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /_dev/live HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        big = "x" * 4000
        body = {"batch": [{"type": "track", "userId": f"u{i}", "event": "E",
                           "properties": {"pad": big}} for i in range(50)]}
        with requests.Session() as session:
            for _ in range(60):  # 3,000 events of 4 kB: far more than the buffers hold
                answer = session.post(server.url + "/v1/batch", json=body, auth=(KEY, ""),
                                      timeout=20)
                assert answer.status_code == 200
        assert server.count() == 3000
    finally:
        sock.close()


def test_feed_keeps_a_bounded_window() -> None:
    """The feed keeps only its newest entries, by count and by size, so a long run (or
    huge events) does not grow memory without bound."""
    feed = LiveFeed(capacity=10)
    feed.publish_events([json.dumps({"n": i}) for i in range(25)])
    entries = feed.read_after(0, timeout=0)
    assert entries is not None and [n for n, _ in entries] == list(range(16, 26))
    assert feed.read_after(25, timeout=0) == []
    feed.close()
    assert feed.read_after(25, timeout=5) is None
    by_size = LiveFeed(capacity=1000, max_chars=1000)
    by_size.publish_events(["[" + "1," * 100 + "1]"] * 20)  # 201 + 25 chars each
    kept = by_size.read_after(0, timeout=0)
    assert kept is not None and [n for n, _ in kept] == [17, 18, 19, 20]


def test_page_for_browsers_health_for_everyone_else(server: DevServer) -> None:
    """GET / gives a browser (Accept: text/html) the page and anything else the health
    JSON, as rudder-server; the page's files are served under /_dev/web/."""
    page = requests.get(server.url + "/", headers={"Accept": "text/html,*/*"}, timeout=20)
    assert page.status_code == 200 and "<title>rudder-analytics dev server" in page.text
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    health = requests.get(server.url + "/", headers={"Accept": "*/*"}, timeout=20)
    assert health.json()["server"] == "UP"
    script = requests.get(server.url + "/_dev/web/app.js", timeout=20)
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "innerHTML" not in script.text
    assert requests.get(server.url + "/_dev/web/", timeout=20).text == page.text
    assert requests.get(server.url + "/_dev/web/../server.py", timeout=20).status_code == 404
    assert requests.get(server.url + "/_dev/web/secret", timeout=20).status_code == 404


def test_console_lines_show_properties_in_aligned_columns() -> None:
    """Text lines carry properties or traits (and groupId, previousId), and the columns
    start at the same offsets whatever the values' lengths; rejections share them."""
    stream = io.StringIO()
    with DevServer(write_keys=(KEY,), console="text", console_stream=stream) as printing:
        body = {"batch": [
            {"type": "track", "userId": "u1", "event": "Order Completed",
             "properties": {"revenue": 9.95}},
            {"type": "audiencelist", "userId": "a-very-long-user-id-" * 3,
             "event": "An event name far longer than its column"},
            {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme"}},
        ]}
        assert post(printing, body) == 200
        assert post(printing, body, key="wrong") == 401
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].endswith('{"revenue":9.95}')
    assert "groupId=acme" in lines[2] and lines[2].endswith('{"name":"Acme"}')
    assert "REJECTED 401" in lines[3] and "invalid write key" in lines[3]
    for line in lines:  # type/status, who/route, label/reason, details start alike
        for offset in COLUMNS:
            if len(line) > offset:
                assert line[offset - 1] == " " and line[offset] != " ", (offset, line)
    assert all(len(line) > COLUMNS[-1] for line in (lines[0], lines[2], lines[3]))


#: Where the text columns after the time start: type, who, label, details.
COLUMNS = (14, 28, 54, 80)


def test_format_functions_cut_long_values() -> None:
    """format_line and format_rejection keep each column within its width."""
    line = format_line({"type": "track", "userId": "u" * 80, "event": "e" * 80,
                        "receivedAt": "2024-01-01T00:00:00.000Z"})
    assert line[14:27].rstrip() == "track"
    assert line[28:53].rstrip().endswith("\u2026") and line[53] == " "
    assert line[54:79].rstrip().endswith("\u2026")
    rejected = format_rejection({"time": "2024-01-01T00:00:00.000Z", "status": None,
                                 "method": "POST", "path": "/v1/batch", "reason": "r",
                                 "write_key": ""})
    assert rejected.startswith("00:00:00.000  REJECTED ---")
    assert rejected.endswith("no write key")


def test_json_console_prints_rejections_as_objects() -> None:
    """With console='json' a refused request is one ``{"rejected": {...}}`` line."""
    stream = io.StringIO()
    with DevServer(write_keys=(KEY,), console="json", console_stream=stream) as printing:
        assert post(printing, {"batch": [{"type": "track", "userId": "u"}]}, key="bad") == 401
    (line,) = stream.getvalue().splitlines()
    rejected = json.loads(line)["rejected"]
    assert (rejected["status"], rejected["reason"], rejected["write_key"]) == (
        401, "invalid write key", "bad")
