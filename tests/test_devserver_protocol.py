"""The stand-in data plane follows the gateway protocol, one test per spec rule.

Rules are those of "Protocol spec for a faithful stand-in server" in
``docs/dataplane-protocol.md`` (1-13 and 15; 14, ``/v1/import``, is not implemented).
Every test talks real HTTP to a ``DevServer`` on loopback and checks status, body and
headers exactly (the ``Date`` header is checked for its format and then set aside).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import json
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

import pytest

from rudder_analytics.devserver import DevServer

KEY = "test-write-key"
DISABLED = "disabled-write-key"
TEXT = "text/plain; charset=utf-8"
DATE = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")
RECEIVED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


@dataclass
class Answer:
    """One HTTP answer: status, headers (lower-case names, Date removed) and body."""

    status: int
    headers: Dict[str, str]
    body: bytes


def basic(key: str, password: str = "") -> str:
    """An ``Authorization`` header value for ``key``."""
    return "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()


def call(
    url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: Optional[Dict[str, str]] = None,
    *,
    key: Optional[str] = KEY,
    conn: Optional[http.client.HTTPConnection] = None,
) -> Answer:
    """Send one request (on ``conn`` if given, else a new connection) and read the answer."""
    parts = urlsplit(url)
    own = conn is None
    if conn is None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=20)
    sent: Dict[str, str] = {}
    if key is not None:
        sent["Authorization"] = basic(key)
    sent.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        data = response.read()
        received: Dict[str, str] = {}
        for name, value in response.getheaders():
            received[name.lower()] = value
        date = received.pop("date")
        assert DATE.match(date), date
        return Answer(response.status, received, data)
    finally:
        if own:
            conn.close()


def post(url: str, body: Any, path: str = "/v1/batch", **kwargs: Any) -> Answer:
    """POST ``body`` (bytes as is, anything else JSON-encoded)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(url, "POST", path, data, **kwargs)


def assert_error(answer: Answer, status: int, text: str) -> None:
    """The answer is Go's ``http.Error(w, text, status)``, exactly."""
    body = (text + "\n").encode()
    assert (answer.status, answer.body) == (status, body)
    assert answer.headers == {
        "content-length": str(len(body)),
        "content-type": TEXT,
        "x-content-type-options": "nosniff",
        "vary": "Origin",
    }


def assert_ok(answer: Answer, body: bytes = b"ok") -> None:
    """The answer is the gateway's success: 200, ``ok`` without a newline, text/plain."""
    assert (answer.status, answer.body) == (200, body)
    assert answer.headers == {
        "content-length": str(len(body)),
        "content-type": TEXT,
        "vary": "Origin",
    }


def track(user_id: Optional[str] = "u1", **fields: Any) -> Dict[str, Any]:
    """A minimal track event."""
    event: Dict[str, Any] = {"type": "track", "event": "Order Completed", **fields}
    if user_id is not None:
        event["userId"] = user_id
    return event


def md5_uuid(user_id: str, anonymous_id: str) -> str:
    """rudderId as the protocol doc defines it (independent of the server's code)."""
    digest = bytearray(hashlib.md5(f"{user_id}:{anonymous_id}".encode()).digest())
    digest[6] = digest[6] & 0x0F | 0x40
    digest[8] = digest[8] & 0x3F | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A stand-in with one enabled and one disabled source."""
    with DevServer(write_keys=(KEY,), disabled_write_keys=(DISABLED,)) as running:
        yield running


# --- rule 1 ----------------------------------------------------------------------------


def test_rule01_routes_health_unknown_paths_and_methods(server: DevServer) -> None:
    """Rule 1: the ingestion routes take POST; /health and / answer the liveness JSON;
    an unknown path is 404 ``404 page not found``; a wrong method is 405 with no body."""
    for name in ("batch", "track", "identify", "page", "screen", "group", "alias", "merge"):
        event = track() if name != "batch" else {"batch": [track()]}
        assert_ok(post(server.url, event, path=f"/v1/{name}"))
    assert server.count() == 8
    assert [e["type"] for e in server.events()] == [
        "track",
        "track",
        "identify",
        "page",
        "screen",
        "group",
        "alias",
        "merge",
    ]

    for path in ("/health", "/"):
        answer = call(server.url, "GET", path, key=None)
        assert answer.status == 200
        health = json.loads(answer.body)
        assert {k: health[k] for k in list(health)[:6]} == {
            "appType": "EMBEDDED",
            "server": "UP",
            "db": "UP",
            "acceptingEvents": "TRUE",
            "routingEvents": "TRUE",
            "mode": "NORMAL",
        }
        assert list(health) == [
            "appType",
            "server",
            "db",
            "acceptingEvents",
            "routingEvents",
            "mode",
            "backendConfigMode",
            "lastSync",
            "lastRegulationSync",
        ]
        assert answer.headers == {
            "content-length": str(len(answer.body)),
            "content-type": "application/json; charset=utf-8",
            "vary": "Origin",
        }

    for path in ("/v2/batch", "/v1/batch/", "/v1/import", "/v1", "/_devx"):
        assert_error(post(server.url, {"batch": [track()]}, path=path), 404, "404 page not found")

    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = call(server.url, method, "/v1/batch")
        assert (answer.status, answer.body) == (405, b"")
        assert answer.headers == {"allow": "POST", "content-length": "0", "vary": "Origin"}
    answer = call(server.url, "POST", "/health", b"{}")
    assert (answer.status, answer.body) == (405, b"")
    assert answer.headers == {"allow": "GET", "content-length": "0", "vary": "Origin"}
    assert server.count() == 8


# --- rule 2 ----------------------------------------------------------------------------


def test_rule02_overload_answers_503_before_auth() -> None:
    """Rule 2: with N requests in flight, one more gets 503 ``Service Unavailable``,
    before auth and body checks; the slot frees up when the request ends."""
    with DevServer(write_keys=(KEY,), max_concurrent_requests=1) as server:
        server.hang_next(1, seconds=60)
        outcome: List[str] = []

        def hung() -> None:
            try:
                post(server.url, {"batch": [track()]})
                outcome.append("answered")
            except OSError:
                outcome.append("cut")

        thread = threading.Thread(target=hung)
        thread.start()
        assert server.wait_for_requests(1, timeout=10)  # logged once it holds the slot

        assert_error(post(server.url, b"not json", key="wrong"), 503, "Service Unavailable")
        assert_error(call(server.url, "GET", "/health"), 503, "Service Unavailable")
        assert server.count() == 0
    thread.join(10)
    assert not thread.is_alive()
    assert outcome == ["cut"]  # stopping the server cut the hanging request


# --- rule 3 ----------------------------------------------------------------------------


def test_rule03_gzip_bodies(server: DevServer) -> None:
    """Rule 3: ``Content-Encoding: gzip`` (exactly) is gunzipped; a corrupt stream is 500
    ``failed to read body from request``; other encodings are raw bytes; Content-Type is
    ignored."""
    raw = json.dumps({"batch": [track("gz")]}).encode()
    assert_ok(post(server.url, gzip.compress(raw), headers={"Content-Encoding": "gzip"}))
    assert server.count(user_id="gz") == 1

    for corrupt in (gzip.compress(raw)[:-9], b"\x1f\x8b\x08\x00garbage", raw):
        answer = post(server.url, corrupt, headers={"Content-Encoding": "gzip"})
        assert_error(answer, 500, "failed to read body from request")

    for other in ("GZIP", "gzip, deflate", "deflate", "br", "x-gzip"):
        answer = post(server.url, gzip.compress(raw), headers={"Content-Encoding": other})
        assert_error(answer, 400, "invalid json")
    # Not gzip-encoded with an unknown encoding: the bytes are JSON, so they are accepted.
    assert_ok(post(server.url, raw, headers={"Content-Encoding": "identity"}))

    for content_type in ("text/plain", "application/x-www-form-urlencoded", "image/png"):
        assert_ok(post(server.url, raw, headers={"Content-Type": content_type}))
    assert server.count(user_id="gz") == 5


# --- rule 4 ----------------------------------------------------------------------------


def test_rule04_basic_auth_before_the_body(server: DevServer) -> None:
    """Rule 4: Basic auth with the write key as username (password ignored), checked
    before the body: missing/bad/empty -> 401 ``failed to read writekey from header``,
    unknown -> 401 ``invalid write key``, disabled source -> 404 ``source is disabled``."""
    event = {"batch": [track()]}
    missing = "failed to read writekey from header"
    for header in (
        None,
        "",
        "Bearer abc",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":password-only").decode(),
        "Basic " + base64.b64encode(f"{KEY}:ab".encode()).decode().rstrip("="),  # no padding
    ):
        headers = {} if header is None else {"Authorization": header}
        assert_error(post(server.url, event, key=None, headers=headers), 401, missing)

    assert_error(post(server.url, event, key="unknown-key"), 401, "invalid write key")
    assert_error(post(server.url, event, key=DISABLED), 404, "source is disabled")

    # The password is ignored, and the scheme name is case-insensitive (Go's BasicAuth).
    assert_ok(post(server.url, event, key=None, headers={"Authorization": basic(KEY, "x")}))
    lower = "basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    assert_ok(post(server.url, event, key=None, headers={"Authorization": lower}))

    # Auth errors win over body errors: the body is not even read.
    assert_error(post(server.url, b"{broken", key="unknown-key"), 401, "invalid write key")
    assert_error(post(server.url, b"{broken", key=None), 401, missing)
    assert server.count() == 2


def test_rule04_auth_error_keeps_the_connection_usable(server: DevServer) -> None:
    """Rule 4: after an auth error the unread body is discarded, so keep-alive works."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    try:
        body = json.dumps({"batch": [track()] * 50}).encode()
        answer = call(server.url, "POST", "/v1/batch", body, key="nope", conn=conn)
        assert_error(answer, 401, "invalid write key")
        assert_ok(call(server.url, "POST", "/v1/batch", body, conn=conn))
    finally:
        conn.close()
    assert server.count() == 50


# --- rule 5 ----------------------------------------------------------------------------


def test_rule05_invalid_json(server: DevServer) -> None:
    """Rule 5: a body that is not valid JSON (the empty body included) -> 400
    ``invalid json``."""
    for body in (
        b"",
        b"   ",
        b"{",
        b'{"batch": [}',
        b"nul",
        b'{"batch": [{"userId": "u", "n": NaN}]}',
        b'{"batch": [{"userId": "u", "n": Infinity}]}',
        b'\xef\xbb\xbf{"batch": []}',
        b'{"batch": []} {}',
        b"{'batch': []}",
    ):
        assert_error(post(server.url, body), 400, "invalid json")
    assert server.count() == 0


# --- rule 6 ----------------------------------------------------------------------------


def test_rule06_single_type_endpoints(server: DevServer) -> None:
    """Rule 6: the single-type routes set ``type`` to the route name (overwriting a sent
    one) and store one event; a body that is not an object -> 400
    ``event is not a valid rudder event``."""
    assert_ok(post(server.url, {"type": "identify", "userId": "u6"}, path="/v1/track"))
    assert_ok(post(server.url, {"userId": "u6", "name": "Home"}, path="/v1/page"))
    assert [(e["type"], e.get("name")) for e in server.events(user_id="u6")] == [
        ("track", None),
        ("page", "Home"),
    ]
    for body in (b"[1, 2]", b'"text"', b"5", b"null", b"true"):
        answer = post(server.url, body, path="/v1/identify")
        assert_error(answer, 400, "event is not a valid rudder event")
    assert_error(
        post(server.url, {"event": "x"}, path="/v1/track"),
        400,
        "request neither has anonymousId nor userId",
    )
    assert server.count() == 2


# --- rule 7 ----------------------------------------------------------------------------


def test_rule07_elements_and_the_identity_check(server: DevServer) -> None:
    """Rule 7: only ``batch`` is used; every element must be an object; an element with
    neither userId nor anonymousId (after stringifying, stripping invisible characters
    and trimming) fails the whole request, except ``extract`` and ``record`` events."""
    not_event = "event is not a valid rudder event"
    no_id = "request neither has anonymousId nor userId"
    assert_error(post(server.url, {"batch": [track(), 5]}), 400, not_event)
    assert_error(post(server.url, {"batch": [track(), [track()]]}), 400, not_event)
    assert_error(post(server.url, {"batch": "x"}), 400, not_event)
    # Checks run element by element: the first failing element decides the answer.
    assert_error(post(server.url, {"batch": [track(None), 5]}), 400, no_id)

    for ids in (
        {},
        {"userId": ""},
        {"userId": "   "},
        {"userId": None, "anonymousId": None},
        {"anonymousId": "\u200b\u00a0\t"},
        {"userId": " \ufeff ", "anonymousId": "\u2060"},
    ):
        body = {"batch": [track("ok"), {"type": "track", "event": "E", **ids}]}
        assert_error(post(server.url, body), 400, no_id)
    assert server.count() == 0  # all-or-nothing: the valid first event was not stored

    # Non-string ids are JSON-encoded: 123 -> "123", false -> "false", {} -> "{}".
    assert_ok(post(server.url, {"batch": [{"type": "track", "userId": 123}]}))
    assert_ok(post(server.url, {"batch": [{"type": "track", "anonymousId": False}]}))
    assert server.count(user_id="123") == 1
    assert server.count(anonymous_id="false") == 1
    # extract and record events need no id; type is not otherwise checked.
    assert_ok(post(server.url, {"batch": [{"type": "extract"}, {"type": "record"}]}))
    assert_ok(post(server.url, {"batch": [{"userId": "no-type"}, {"userId": "t", "type": 7}]}))
    # A batch that is an object counts as a batch of one.
    assert_ok(post(server.url, {"batch": track("single")}))
    assert server.count() == 7
    assert server.count(user_id="single") == 1


# --- rule 8 ----------------------------------------------------------------------------


def test_rule08_enrichment(server: DevServer) -> None:
    """Rule 8: the server sets ``rudderId`` (always), ``receivedAt`` and ``request_ip``
    (when absent) and normalises ``messageId``; nothing is echoed in the answer."""
    events = [
        track("u8", anonymousId="a8", messageId="  m-1  "),
        track(None, anonymousId=" anon ", rudderId="client-value"),
        track("u8", messageId=""),
        track("u8", messageId=42),
        track("u8", receivedAt="2001-01-01T00:00:00.000Z", messageId="m-5"),
        track("u8", request_ip="10.1.1.1", messageId="m-6"),
        track("u9", messageId="m-7"),
    ]
    answer = post(
        server.url, {"batch": events}, headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
    )
    assert_ok(answer)
    stored = server.events()
    assert len(stored) == 7

    assert stored[0]["rudderId"] == md5_uuid("u8", "a8")
    assert stored[1]["rudderId"] == md5_uuid("", "anon")  # trimmed; client value replaced
    assert stored[1]["anonymousId"] == " anon "  # ids are stored as sent
    assert stored[0]["messageId"] == "m-1"
    for replaced in (stored[1], stored[2], stored[3]):
        assert uuid.UUID(replaced["messageId"]).version == 4
    assert stored[4]["messageId"] == "m-5"

    assert stored[4]["receivedAt"] == "2001-01-01T00:00:00.000Z"  # kept when sent
    for event in stored[:4] + stored[5:]:
        assert RECEIVED_AT.match(event["receivedAt"]), event["receivedAt"]

    # First X-Forwarded-For entry; an event's own request_ip is kept and, as in
    # rudder-server, becomes the request ip for the events after it.
    assert [e["request_ip"] for e in stored] == ["203.0.113.9"] * 5 + ["10.1.1.1"] * 2
    assert {job["requestIP"] for job in server.jobs()} == {"10.1.1.1"}

    server.reset()
    assert_ok(post(server.url, {"batch": [track("peer")]}))
    assert server.events()[0]["request_ip"] == "127.0.0.1"  # no header: the peer address


# --- rule 9 ----------------------------------------------------------------------------


def test_rule09_rate_limit() -> None:
    """Rule 9: with the rate limit on, cost = events per request; over the limit -> 429
    ``max requests limit reached`` without Retry-After; job/task run ids skip it."""
    with DevServer(write_keys=(KEY,), rate_limit=(10, 3600)) as server:
        assert_ok(post(server.url, {"batch": [track()] * 6}))
        assert_ok(post(server.url, {"batch": [track()] * 4}))
        assert_error(post(server.url, {"batch": [track()]}), 429, "max requests limit reached")
        assert_error(post(server.url, track(), path="/v1/track"), 429, "max requests limit reached")
        assert server.count() == 10

        assert_ok(post(server.url, {"batch": [track()]}, headers={"X-Rudder-Job-Run-Id": "j"}))
        assert_ok(post(server.url, {"batch": [track()]}, headers={"X-Rudder-Task-Run-Id": "t"}))
        sourced = track(context={"sources": {"job_run_id": "job-1"}})
        assert_ok(post(server.url, {"batch": [sourced]}))
        assert server.count() == 13

    with DevServer(write_keys=(KEY,)) as server:  # off by default
        for _ in range(3):
            assert_ok(post(server.url, {"batch": [track()] * 500}))


# --- rule 10 ---------------------------------------------------------------------------


def body_of_size(size: int) -> bytes:
    """A valid one-event batch body of exactly ``size`` bytes."""
    empty = json.dumps({"batch": [{"userId": "big", "pad": ""}]}).encode()
    pad = size - len(empty)
    assert pad >= 0
    body = json.dumps({"batch": [{"userId": "big", "pad": "x" * pad}]}).encode()
    assert len(body) == size
    return body


def test_rule10_request_size_limit_default(server: DevServer) -> None:
    """Rule 10: the default limit is 4,096,000 bytes: one byte more -> 413
    ``request size exceeds max limit``."""
    assert server.max_request_bytes == 4_096_000
    assert_ok(post(server.url, body_of_size(4_096_000)))
    too_large = "request size exceeds max limit"
    assert_error(post(server.url, body_of_size(4_096_001)), 413, too_large)
    assert server.count() == 1


def test_rule10_size_is_measured_after_gunzip_and_after_other_checks() -> None:
    """Rule 10: the size is the decompressed length (the wrapped body on single-type
    routes), checked after JSON, identity and rate-limit checks; audiencelist is exempt."""
    too_large = "request size exceeds max limit"
    with DevServer(write_keys=(KEY,), max_request_bytes=1000) as server:
        assert_ok(post(server.url, body_of_size(1000)))
        assert_error(post(server.url, body_of_size(1001)), 413, too_large)
        compressed = gzip.compress(body_of_size(1001))
        assert len(compressed) < 1000
        answer = post(server.url, compressed, headers={"Content-Encoding": "gzip"})
        assert_error(answer, 413, too_large)

        # Oversized but invalid in another way: the other error wins.
        assert_error(post(server.url, b"{" * 2000), 400, "invalid json")
        no_id = {"batch": [{"type": "track", "pad": "x" * 2000}]}
        assert_error(post(server.url, no_id), 400, "request neither has anonymousId nor userId")

        # Single-type routes measure the body after wrapping it in a batch (+20..40 bytes).
        single = {"userId": "s", "pad": ""}
        single["pad"] = "x" * (1000 - len(json.dumps(single)) - 5)
        assert_error(post(server.url, single, path="/v1/track"), 413, too_large)
        single["pad"] = single["pad"][:-60]
        assert_ok(post(server.url, single, path="/v1/track"))

        audience = {"batch": [{"type": "audiencelist", "userId": "a", "pad": "x" * 5000}]}
        assert_ok(post(server.url, audience))
        assert server.count() == 3


# --- rule 11 ---------------------------------------------------------------------------


def test_rule11_empty_batches(server: DevServer) -> None:
    """Rule 11: zero events -> 400 ``empty batch payload`` (missing, null or empty
    batch, or a body that is not an object)."""
    for body in ({"batch": []}, {}, {"batch": None}, {"events": [track()]}, [], [track()], 5):
        assert_error(post(server.url, body), 400, "empty batch payload")
    assert server.count() == 0


# --- rule 12 ---------------------------------------------------------------------------


def test_rule12_persist_then_ack_all_or_nothing(server: DevServer) -> None:
    """Rule 12: events are stored (one record per event) before the 200 ``ok`` goes out;
    a refused request stores nothing; a failing store is 500 with the raw error text."""
    body = {"batch": [track("p1"), track("p2", anonymousId="a2")]}
    assert_ok(post(server.url, body))
    assert server.count() == 2  # already stored when the answer arrived, no waiting
    jobs = server.jobs()
    assert [sorted(job) for job in jobs] == [["batch", "receivedAt", "requestIP", "writeKey"]] * 2
    assert [job["batch"][0]["userId"] for job in jobs] == ["p1", "p2"]
    assert {job["writeKey"] for job in jobs} == {KEY}
    assert all(RECEIVED_AT.match(job["receivedAt"]) for job in jobs)

    assert_error(
        post(server.url, {"batch": [track("p3"), "bad"]}), 400, "event is not a valid rudder event"
    )
    assert server.count() == 2

    server.fail_next(1, status=500, body="tx error")
    assert_error(post(server.url, body), 500, "tx error")
    server.fail_next(1, status=504)
    assert_error(post(server.url, body), 504, "gateway timeout")
    assert server.count() == 2

    server._store.close()  # a real store failure: the database is gone
    answer = post(server.url, body)
    assert answer.status == 500
    assert answer.body == b"Cannot operate on a closed database.\n"
    assert answer.headers["x-content-type-options"] == "nosniff"


# --- rule 13 ---------------------------------------------------------------------------


def test_rule13_error_format_and_legacy_bodies() -> None:
    """Rule 13: errors are ``http.Error`` text (text/plain, nosniff, message + newline);
    the legacy switch gives the capitalised bodies of rudder-server before v1.46.0."""
    with DevServer(
        write_keys=(KEY,),
        disabled_write_keys=(DISABLED,),
        legacy_bodies=True,
        max_request_bytes=500,
        rate_limit=(1000, 3600),
    ) as server:
        assert_ok(post(server.url, {"batch": [track()]}), body=b"OK")
        cases = [
            (post(server.url, {}, key="nope"), 401, "Invalid Write Key"),
            (post(server.url, {}, key=None), 401, "Failed to read writeKey from header"),
            (post(server.url, {}, key=DISABLED), 404, "Source is disabled"),
            (post(server.url, b"{"), 400, "Invalid JSON"),
            (post(server.url, {"batch": [1]}), 400, "Event is not a valid rudder event"),
            (
                post(server.url, {"batch": [{"type": "track"}]}),
                400,
                "Request neither has anonymousId nor userId",
            ),
            (post(server.url, {"batch": []}), 400, "Empty batch payload"),
            (post(server.url, body_of_size(501)), 413, "Request size exceeds max limit"),
            (
                post(server.url, b"\x1f\x8bxx", headers={"Content-Encoding": "gzip"}),
                500,
                "Failed to read body from request",
            ),
        ]
        for answer, status, text in cases:
            assert_error(answer, status, text)
        assert_error(
            post(server.url, {"batch": [track()] * 1000}), 429, "Max Requests Limit reached"
        )
        server.fail_next(1, status=504)
        assert_error(post(server.url, {"batch": [track()]}), 504, "Gateway timeout")
        # Router answers are the same in both versions.
        assert_error(call(server.url, "GET", "/nope"), 404, "404 page not found")


# --- rule 15 ---------------------------------------------------------------------------


def test_rule15_envelope_fields_and_anonymous_id_header(server: DevServer) -> None:
    """Rule 15: envelope fields other than ``batch`` (sentAt, context, ...) are ignored;
    the ``AnonymousId`` header is accepted but not required."""
    body = {
        "batch": [track("e1", sentAt="2026-01-01T00:00:01.000Z")],
        "sentAt": "2030-01-01T00:00:00.000Z",
        "context": {"library": {"name": "envelope"}},
        "integrations": {"All": False},
        "writeKey": "ignored",
    }
    assert_ok(post(server.url, body, headers={"AnonymousId": "header-anon"}))
    assert_ok(post(server.url, {"batch": [track("e2")]}))
    first, second = server.events()
    assert first["sentAt"] == "2026-01-01T00:00:01.000Z"
    assert "context" not in first and "integrations" not in first
    assert "anonymousId" not in first  # the header does not become a field
    assert first["rudderId"] == md5_uuid("e1", "")
    assert second["userId"] == "e2"
    assert {job["writeKey"] for job in server.jobs()} == {KEY}


# --- extras (not numbered rules) ---------------------------------------------------------


def test_cors_headers(server: DevServer) -> None:
    """rs/cors in front of the gateway: any origin is echoed with credentials; a preflight
    is answered 204 with max-age 900."""
    answer = post(server.url, {"batch": [track()]}, headers={"Origin": "https://app.example"})
    assert (answer.status, answer.body) == (200, b"ok")
    assert answer.headers["access-control-allow-origin"] == "https://app.example"
    assert answer.headers["access-control-allow-credentials"] == "true"

    answer = call(
        server.url,
        "OPTIONS",
        "/v1/batch",
        key=None,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert (answer.status, answer.body) == (204, b"")
    assert answer.headers == {
        "access-control-allow-credentials": "true",
        "access-control-allow-headers": "authorization, content-type",
        "access-control-allow-methods": "POST",
        "access-control-allow-origin": "https://app.example",
        "access-control-max-age": "900",
        "vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
    }


def test_chunked_request_body(server: DevServer) -> None:
    """A chunked request body (no Content-Length) is read like any other."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=20)
    body = json.dumps({"batch": [track("chunked")] * 3}).encode()
    try:
        conn.request(
            "POST",
            "/v1/batch",
            body=iter([body[:10], body[10:]]),
            headers={"Authorization": basic(KEY), "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
    finally:
        conn.close()
    assert server.count(user_id="chunked") == 3


def test_big_integers_lose_precision_like_float64(server: DevServer) -> None:
    """Numbers pass through float64 in rudder-server: integers above 2^53 are rounded."""
    big = 2**53 + 1
    assert_ok(post(server.url, {"batch": [track("n", properties={"big": big, "small": 7})]}))
    properties = server.events()[0]["properties"]
    assert properties["small"] == 7 and isinstance(properties["small"], int)
    assert properties["big"] == float(big) != big


def test_decoder_accepts_exactly_what_json_accepts() -> None:
    """The span-finding decoder (used to store unchanged events without re-encoding)
    accepts and rejects the same bodies as ``json.loads``, and gives the same values."""
    import random

    from rudder_analytics.devserver import jsontext

    def reference(text: str) -> Any:
        try:
            return json.loads(text, parse_constant=jsontext.reject_constant)
        except ValueError:
            return "<invalid>"

    def ours(text: str) -> Any:
        try:
            return jsontext.decode_with_spans(text)[0]
        except ValueError:
            return "<invalid>"

    seeds = [
        '{"batch": [{"userId": "u", "a": [1, 2.5, {"x": null}]}, {"anonymousId": "b"}]}',
        ' {"a" : 1 , "batch" : [ {"k":"v"} , 3 ] } ',
        '{"batch": [1], "batch": [{"u": 1}]}',
        '{"batch":[]}',
        "[]",
        '"s"',
    ]
    pieces = [*'{}[],:" \n\tab0123456789.-eE\\', "true", "null", '"batch"', "NaN"]
    rng = random.Random(20260819)
    for _ in range(3000):
        text = rng.choice(seeds)
        for _ in range(rng.randint(0, 3)):
            at = rng.randint(0, len(text))
            if rng.random() < 0.5:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 4) :]
        assert repr(ours(text)) == repr(reference(text)), text


def test_stored_payloads_equal_the_enriched_events(server: DevServer) -> None:
    """Whether an event is stored from its request text (unchanged events) or re-encoded
    (changed ones), reading it back gives the event as the server enriched it."""
    events = [
        {"type": "track", "userId": "a", "messageId": "m1", "properties": {"x": [1, 2.5, None]}},
        {"type": "track", "userId": "b", "messageId": " padded "},
        {"type": "track", "userId": "c", "rudderId": "mine", "receivedAt": "r", "request_ip": "i"},
        {"type": "track", "userId": "d", "messageId": "m4", "text": '\u00e9\u4e2d\U0001f600\\"'},
    ]
    body = json.dumps({"batch": events}, indent=2).encode()
    assert_ok(post(server.url, body))
    stored = server.events()
    assert [e["userId"] for e in stored] == ["a", "b", "c", "d"]
    assert stored[0]["properties"] == {"x": [1, 2.5, None]}
    assert stored[1]["messageId"] == "padded"
    assert stored[2]["rudderId"] == md5_uuid("c", "")
    assert (stored[2]["receivedAt"], stored[2]["request_ip"]) == ("r", "i")
    assert stored[3]["text"] == '\u00e9\u4e2d\U0001f600\\"'
    for event in stored:
        assert set(event) >= {"rudderId", "receivedAt", "request_ip", "messageId"}
