"""Message shape, validation rules and serialization, checked at the data plane."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import os
import re
import subprocess
import uuid
from decimal import Decimal
from typing import Any, Callable

import pytest

from rudder_analytics import (
    Client,
    InvalidTypeError,
    MessageTooLargeError,
    RudderAnalyticsError,
    ValidationError,
)
from rudder_analytics._build.encoding import decode_message, encode_message
from rudder_analytics.devserver import DevServer
from rudder_analytics.version import VERSION

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def sent(client: Client, server: DevServer, count: int = 1) -> list[dict[str, Any]]:
    """Flush and return what the data plane stored."""
    assert client.flush(timeout=10)
    assert server.wait_for_events(count, timeout=10)
    return server.events()


def test_track_payload_shape(make_client: Callable[..., Client], dataplane: DevServer) -> None:
    """A track call arrives with every field RudderStack expects, and nothing it owns."""
    client = make_client()
    ok, message = client.track(user_id="u1", event="Signed Up", properties={"plan": "pro"},
                               context={"ip": "10.0.0.1"})
    assert ok
    [event] = sent(client, dataplane)
    assert event["type"] == "track"
    assert event["event"] == "Signed Up"
    assert event["userId"] == "u1"
    assert event["properties"] == {"plan": "pro"}
    assert event["context"]["ip"] == "10.0.0.1"
    assert event["context"]["library"] == {"name": "rudder-analytics-python", "version": VERSION}
    assert event["integrations"] == {"All": True}
    assert event["channel"] == "server"
    assert event["messageId"] == message["messageId"]
    assert uuid.UUID(event["messageId"]).version == 4
    assert ISO_MS.match(event["originalTimestamp"])
    assert ISO_MS.match(event["sentAt"])
    assert "timestamp" not in message  # only when the caller gives one
    assert "rudderId" not in message and "receivedAt" not in message


def test_every_call_type_shape(make_client: Callable[..., Client], dataplane: DevServer) -> None:
    """identify, page, screen, group and alias carry their own fields."""
    client = make_client()
    client.identify(user_id="u1", traits={"email": "a@b.c"})
    client.page(user_id="u1", category="Food", name="Pizza", properties={"url": "/p"})
    client.screen(anonymous_id="a1", name="Home")
    client.group(user_id="u1", group_id="g1", traits={"name": "Acme"})
    client.alias(previous_id="old", user_id="u1")
    events = {e["type"]: e for e in sent(client, dataplane, 5)}
    assert events["identify"]["traits"] == {"email": "a@b.c"}
    assert events["identify"]["context"]["traits"] == {"email": "a@b.c"}
    assert events["page"]["name"] == "Pizza" and events["page"]["category"] == "Food"
    assert events["page"]["properties"] == {"url": "/p"}  # not copied, as the peers send it
    assert events["screen"]["anonymousId"] == "a1" and events["screen"]["name"] == "Home"
    assert events["screen"]["userId"] is None and events["page"]["anonymousId"] is None
    assert events["group"]["groupId"] == "g1" and events["group"]["traits"] == {"name": "Acme"}
    assert events["alias"]["previousId"] == "old" and events["alias"]["userId"] == "u1"


def test_caller_timestamp_message_id_and_integrations(make_client: Callable[..., Client],
                                                      dataplane: DevServer) -> None:
    """A caller's timestamp (naive = UTC), message id and integrations are kept."""
    client = make_client()
    client.track(user_id="u1", event="E", timestamp=dt.datetime(2026, 1, 2, 3, 4, 5, 678901),
                 message_id="my-id-1", integrations={"Amplitude": False})
    [event] = sent(client, dataplane)
    assert event["timestamp"] == "2026-01-02T03:04:05.678+00:00"
    assert event["messageId"] == "my-id-1"
    assert event["integrations"] == {"Amplitude": False}


def test_aware_timestamps_are_converted_to_utc() -> None:
    """An aware datetime in another zone is sent in UTC; ISO strings and epochs work too."""
    client = Client("k", "http://127.0.0.1:1", send=False, atexit=False)
    paris = dt.timezone(dt.timedelta(hours=1))
    _, m1 = client.track(user_id="u", event="E", timestamp=dt.datetime(2026, 1, 1, 1, tzinfo=paris))
    _, m2 = client.track(user_id="u", event="E", timestamp="2026-01-01T00:00:00.5Z")
    _, m3 = client.track(user_id="u", event="E", timestamp=0)
    assert m1["timestamp"] == "2026-01-01T00:00:00.000+00:00"
    assert m2["timestamp"] == "2026-01-01T00:00:00.500+00:00"
    assert m3["timestamp"] == "1970-01-01T00:00:00.000+00:00"


@pytest.fixture
def offline() -> Client:
    """A client that validates and builds but never sends."""
    return Client("k", "http://127.0.0.1:1", send=False, atexit=False)


def test_ids_are_stringified_exactly(offline: Client) -> None:
    """Large integer ids keep every digit; 0 is a valid id."""
    _, message = offline.track(user_id=157963456373623802, event="E")
    assert message["userId"] == "157963456373623802"
    _, message = offline.track(user_id=0, event="E")
    assert message["userId"] == "0"
    _, message = offline.identify(anonymous_id=uuid.UUID(int=1))
    assert message["anonymousId"] == "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("call", "kwargs", "error"),
    [
        ("track", {"event": "E"}, ValidationError),
        ("track", {"user_id": "  ", "event": "E"}, ValidationError),
        ("track", {"user_id": "u"}, ValidationError),
        ("track", {"user_id": "u", "event": ""}, ValidationError),
        ("track", {"user_id": "u", "event": 5}, InvalidTypeError),
        ("track", {"user_id": True, "event": "E"}, InvalidTypeError),
        ("track", {"user_id": ["u"], "event": "E"}, InvalidTypeError),
        ("track", {"user_id": "u", "event": "E", "properties": [1]}, InvalidTypeError),
        ("track", {"user_id": "u", "event": "E", "context": "x"}, InvalidTypeError),
        ("track", {"user_id": "u", "event": "E", "integrations": 1}, InvalidTypeError),
        ("track", {"user_id": "u", "event": "E", "timestamp": "yesterday"}, ValidationError),
        ("track", {"user_id": "u", "event": "E", "timestamp": object()}, InvalidTypeError),
        ("identify", {"user_id": "u", "traits": "x"}, InvalidTypeError),
        ("page", {"user_id": "u", "name": 3}, InvalidTypeError),
        ("group", {"user_id": "u"}, ValidationError),
        ("group", {"user_id": "u", "group_id": "g", "traits": 1}, InvalidTypeError),
        ("alias", {"user_id": "u"}, ValidationError),
        ("alias", {"previous_id": "p"}, ValidationError),
    ],
)
def test_validation_rules(offline: Client, call: str, kwargs: dict[str, Any],
                          error: type[Exception]) -> None:
    """Bad input raises a typed error in the caller, rooted in RudderAnalyticsError."""
    with pytest.raises(error) as raised:
        getattr(offline, call)(**kwargs)
    assert isinstance(raised.value, RudderAnalyticsError)
    assert isinstance(raised.value, ValueError)


def test_validation_errors_are_counted(offline: Client) -> None:
    """Invalid calls are counted as dropped with reason 'invalid'."""
    with pytest.raises(ValidationError):
        offline.track(event="E")
    assert offline.stats()["dropped"]["invalid"] == 1


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class WithIso:
    def isoformat(self) -> str:
        return "custom-iso"


def test_serializable_types(make_client: Callable[..., Client], dataplane: DevServer) -> None:
    """Every supported type arrives as JSON; NaN and infinities become null."""
    client = make_client()
    properties = {
        "datetime": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "date": dt.date(2026, 1, 2),
        "time": dt.time(3, 4, 5),
        "decimal": Decimal("9.95"),
        "uuid": uuid.UUID(int=5),
        "enum": Color.RED,
        "set": {1},
        "frozenset": frozenset({"a"}),
        "tuple": (1, 2),
        "dataclass": Point(1, 2),
        "isoformat": WithIso(),
        "nan": float("nan"),
        "inf": float("inf"),
        "big": 2**60,
        "nested": {"list": [1, {"deep": True}], 1: "int key"},
        "unicode": "héllo ✓",
    }
    client.track(user_id="u1", event="Types", properties=properties)
    [event] = sent(client, dataplane)
    got = event["properties"]
    assert got["datetime"] == "2026-01-02T03:04:05+00:00"
    assert got["date"] == "2026-01-02"
    assert got["time"] == "03:04:05"
    assert got["decimal"] == 9.95
    assert got["uuid"] == "00000000-0000-0000-0000-000000000005"
    assert got["enum"] == "red"
    assert got["set"] == [1] and got["frozenset"] == ["a"] and got["tuple"] == [1, 2]
    assert got["dataclass"] == {"x": 1, "y": 2}
    assert got["isoformat"] == "custom-iso"
    assert got["nan"] is None and got["inf"] is None
    assert got["big"] == str(2**60)  # beyond 2**53: a string, so float64 cannot corrupt it
    assert got["nested"] == {"list": [1, {"deep": True}], "1": "int key"}
    assert got["unicode"] == "héllo ✓"


def test_unserializable_value_names_its_path(offline: Client) -> None:
    """An unknown type is refused at the call, naming where it is."""
    with pytest.raises(InvalidTypeError, match=r"properties\.items\[2\]"):
        offline.track(user_id="u", event="E", properties={"items": [1, 2, object()]})
    with pytest.raises(InvalidTypeError, match=r"properties: keys must be strings"):
        offline.track(user_id="u", event="E", properties={(1, 2): "tuple key"})


def test_too_large_message_is_refused_without_echo() -> None:
    """Over max_message_size raises MessageTooLargeError that does not echo the content."""
    client = Client("k", "http://127.0.0.1:1", send=False, atexit=False, max_message_size=1000)
    with pytest.raises(MessageTooLargeError) as raised:
        client.track(user_id="u", event="E", properties={"secret": "s3cr3t" * 500})
    assert "s3cr3t" not in str(raised.value)
    assert client.stats()["dropped"]["too_large"] == 1


def test_message_snapshot_at_call_time(make_client: Callable[..., Client],
                                       dataplane: DevServer) -> None:
    """Mutating properties after the call does not change what is sent."""
    client = make_client()
    properties = {"n": 1}
    client.track(user_id="u", event="E", properties=properties)
    properties["n"] = 2
    [event] = sent(client, dataplane)
    assert event["properties"] == {"n": 1}


def test_encoders_agree() -> None:
    """orjson (when installed) and the standard library encode the same JSON values."""
    from rudder_analytics._build import encoding

    message = {
        "a": [1, 2.5, "x", None, True], "b": {"c": dt.datetime(2026, 1, 1, 0, 0, 0, 123456)},
        "d": float("nan"), "e": 2**60, "f": {1: "k"}, "g": Decimal("1.5"), "h": "ü\u2028",
        "i": dt.date(2026, 1, 1), "j": dt.time(1, 2, 3, 4000), "k": Point(1, 2),
        "l": 1e16, "m": -0.0, "n": 12345678901234567890123,
    }
    fast = decode_message(encode_message(message, 10**6))
    slow = decode_message(encoding._encode_stdlib(message)[1:])
    assert fast == slow
    simple = {"type": "track", "properties": {"x": 1, "y": "z", "w": [True, None, 1.5]}}
    assert encode_message(simple, 10**6) == encoding._encode_stdlib(simple)[1:]
    assert json.loads(b"{" + encode_message(simple, 10**6)) == simple


def test_stdlib_backend_without_orjson() -> None:
    """Without orjson installed, the standard library path encodes the same messages."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys, json, datetime as dt
        sys.modules["orjson"] = None  # as if it were not installed
        from rudder_analytics import Client, InvalidTypeError
        from rudder_analytics._build import encoding
        assert encoding.BACKEND == "json", encoding.BACKEND
        client = Client("k", "http://127.0.0.1:1", send=False, atexit=False)
        _, m = client.track(user_id="u", event="E", properties={
            "nan": float("nan"), "big": 2**60, "when": dt.date(2026, 1, 2), "k": {1: "x"}})
        data = json.loads(b"{" + encoding.encode_message(m, 32768))
        assert data["properties"] == {"nan": None, "big": str(2**60), "when": "2026-01-02",
                                      "k": {"1": "x"}}, data["properties"]
        try:
            client.track(user_id="u", event="E", properties={"items": [1, object()]})
        except InvalidTypeError as exc:
            assert "properties.items[1]" in str(exc)
        else:
            raise AssertionError("no error")
        print("stdlib ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "stdlib ok", out.stderr


def test_nesting_limit_is_the_same_on_both_paths(offline: Client) -> None:
    """With orjson, the deepest accepted nesting does not depend on which path runs."""
    from rudder_analytics._build.encoding import BACKEND, MAX_DEPTH

    if BACKEND != "orjson":
        pytest.skip("the standard library encoder allows deeper nesting")

    def nest(levels: int, leaf: Any) -> Any:
        value = leaf
        for _ in range(levels):
            value = {"a": value}
        return value

    for leaf in ("plain", float("nan")):  # NaN forces the sanitizing path
        offline.track(user_id="u", event="E", properties=nest(MAX_DEPTH, leaf))
        with pytest.raises(ValidationError, match="nested deeper"):
            offline.track(user_id="u", event="E", properties=nest(MAX_DEPTH + 1, leaf))


_OLD_PYTHONS = [p for p in (
    f"/root/.pyenv/versions/{v}/bin/python" for v in ("3.9.18", "3.10.13")) if os.path.exists(p)]
_PY39_ISO = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d(:\d\d(:\d\d(\.(\d{3}|\d{6}))?)?)?"
                       r"([+-]\d\d:\d\d(:\d\d(\.\d{6})?)?)?$")
"""What datetime.fromisoformat accepts on Python 3.9 and 3.10 (no "Z", 3 or 6 digits)."""


def test_returned_timestamps_parse_with_fromisoformat_on_python_39_and_310() -> None:
    """originalTimestamp and timestamp read back with 3.9/3.10's fromisoformat (no "Z")."""
    client = Client("k", "http://127.0.0.1:1", send=False, atexit=False)
    _, message = client.track(user_id="u", event="E", timestamp=dt.datetime(2024, 5, 1, 12))
    stamps = [message["originalTimestamp"], message["timestamp"]]
    assert all(_PY39_ISO.match(s) for s in stamps), stamps
    assert dt.datetime.fromisoformat(message["timestamp"]) == dt.datetime(
        2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    for python in _OLD_PYTHONS:  # the real thing, where those interpreters are installed
        code = ("import sys, datetime\n"
                "for s in sys.argv[1:]: datetime.datetime.fromisoformat(s)\n")
        run = subprocess.run([python, "-c", code, *stamps], capture_output=True, text=True,
                             timeout=60, check=False)
        assert run.returncode == 0, (python, run.stderr)
