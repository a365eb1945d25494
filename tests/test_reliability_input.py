"""Bad input: every public call either raises the SDK's ValidationError or is stored.

Property-based (hypothesis) over every public event call with arbitrary nested values:
NaN and infinities, huge integers, non-string keys, bytes, deep nesting, very long
strings, unserializable objects and wrong types for every parameter. Plus oversized
messages: refused alone at the call, or split out of a batch the data plane answers 413.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rudder_analytics import Client, DeliveryError, MessageTooLargeError, ValidationError
from rudder_analytics.devserver import DevServer
from rudder_analytics.devserver.protocol import sanitize_unicode
from tests.helpers_reliability import make_client, produce, request_ids

EXAMPLES = 120


class Color(enum.Enum):
    RED = "red"
    BIG = 10**30


class Opaque:
    """An object no JSON encoder knows."""


class Recursive(dict):  # type: ignore[type-arg]
    """A dict that contains itself."""

    def __init__(self) -> None:
        super().__init__()
        self["self"] = self


def _nest(depth: int, leaf: Any, as_dict: bool) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value} if as_dict else [value]
    return value


class HugeInt(int):
    """An int whose repr stays printable past Python's 4300-digit str() limit."""

    __str__ = int.__repr__  # str() still converts the digits (and so may raise)

    def __repr__(self) -> str:
        return f"HugeInt({'-' if self < 0 else ''}2**{abs(self).bit_length()}ish)"


# --- strategies ------------------------------------------------------------------------
# Each parameter is drawn from values the SDK should accept (most of the time) or from
# hostile ones: wrong types, unserializable objects, values no JSON encoder takes.

BIG_INTS = [2**53, 2**53 + 1, -(2**53) - 1, 2**63, -(2**64), 10**30]
HUGE_INTS = st.sampled_from(
    [*BIG_INTS, HugeInt(10**4299), HugeInt(10**5000), HugeInt(-(10**6000))]
)
INVISIBLE = st.sampled_from(["\u200b", "\ufeff", "\u2060", "\u00ad", "\u3164", "\u2800",
                             "\x00", "\x1f", "\u202f", " \u200b\t"])
OFFSETS = st.builds(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
LONG_TEXT = st.builds(lambda n, c: c * n, st.integers(1000, 40_000), st.characters())

# Values the SDK converts: NaN, infinities, big ints, surrogates, dates, decimals, enums...
CONVERTIBLE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
    LONG_TEXT,
    st.text(max_size=10).map(str.encode),
    st.datetimes(timezones=st.one_of(st.none(), OFFSETS)),
    st.dates(),
    st.times(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.uuids(),
    st.sampled_from([Color.RED, Color.BIG]),
    st.frozensets(st.integers(), max_size=3),
)
CONVERTIBLE_KEYS = st.one_of(
    st.text(max_size=8), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.sampled_from([Color.RED]),
)
JSONISH = st.recursive(
    CONVERTIBLE,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(CONVERTIBLE_KEYS, children, max_size=4),
    ),
    max_leaves=12,
)

# Values that must be refused (or converted) without anything but ValidationError.
HOSTILE_SCALARS = st.one_of(
    CONVERTIBLE,
    HUGE_INTS,
    st.binary(max_size=12),
    st.sampled_from([decimal.Decimal("sNaN"), decimal.Decimal("1e400")]),
    st.builds(Opaque),
    st.just(lambda: None),
    st.complex_numbers(allow_nan=True),
    st.builds(bytearray, st.binary(max_size=5)),
    st.builds(Recursive),
)
HOSTILE_KEYS = st.one_of(
    CONVERTIBLE_KEYS, HUGE_INTS, st.binary(max_size=4), st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2), st.builds(Opaque),
)
HOSTILE_VALUES = st.recursive(
    HOSTILE_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(HOSTILE_KEYS, children, max_size=4),
        st.sets(st.integers(), max_size=3),
    ),
    max_leaves=12,
)
DEEP = st.builds(_nest, st.integers(1, 400), HOSTILE_SCALARS, st.booleans())
ANYTHING = st.one_of(HOSTILE_VALUES, DEEP)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = ANYTHING) -> Any:
    """``valid`` about five times in six, else ``hostile``: every parameter is hostile in
    about 20 of the 120 examples, and enough examples are valid as a whole. (``one_of``
    would not do: it picks between its branches about evenly, whatever their number.)"""
    return st.sampled_from((True, True, True, True, True, False)).flatmap(
        lambda use_valid: valid if use_valid else hostile
    )


MAPPINGS = mostly(
    st.one_of(
        st.none(),
        st.dictionaries(CONVERTIBLE_KEYS, JSONISH, max_size=5),
        st.builds(lambda d: {"nested": d}, st.builds(_nest, st.integers(1, 60), CONVERTIBLE,
                                                        st.booleans())),
    ),
    st.one_of(st.dictionaries(HOSTILE_KEYS, ANYTHING, max_size=4), ANYTHING),
)
IDS = mostly(
    st.one_of(st.text(min_size=1, max_size=20), st.integers(), st.uuids(), st.none()),
    st.one_of(INVISIBLE, HUGE_INTS, st.floats(allow_nan=True), st.decimals(allow_nan=True),
              st.text(max_size=3), ANYTHING),
)
NAMES = mostly(st.text(min_size=1, max_size=20), st.one_of(st.none(), INVISIBLE, ANYTHING))
TIMESTAMPS = mostly(
    st.one_of(st.none(), st.datetimes(timezones=st.one_of(st.none(), OFFSETS))),
    st.one_of(
        st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(1, 1, 2),
                     timezones=OFFSETS),
        st.datetimes(min_value=dt.datetime(9999, 12, 31), timezones=OFFSETS),
        st.dates(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        HUGE_INTS,
        st.text(max_size=30),
        st.sampled_from(["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00",
                         "2026-01-01T00:00:00Z", "2026-13-01", "nan"]),
        ANYTHING,
    ),
)
COMMON = {
    "context": MAPPINGS,
    "timestamp": TIMESTAMPS,
    "anonymous_id": IDS,
    "integrations": MAPPINGS,
    "message_id": mostly(st.none(), IDS),
}
# (required, optional) keyword arguments per call.
CALLS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "track": ({"user_id": IDS, "event": NAMES}, {"properties": MAPPINGS, **COMMON}),
    "identify": ({"user_id": IDS}, {"traits": MAPPINGS, **COMMON}),
    "page": ({"user_id": IDS},
             {"category": NAMES, "name": NAMES, "properties": MAPPINGS, **COMMON}),
    "screen": ({"user_id": IDS},
               {"category": NAMES, "name": NAMES, "properties": MAPPINGS, **COMMON}),
    "group": ({"user_id": IDS, "group_id": IDS}, {"traits": MAPPINGS, **COMMON}),
    "alias": ({"previous_id": IDS, "user_id": IDS}, COMMON),
}


def call_args(call: str) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``call``: the usual ones always, the others sometimes."""
    required, optional = CALLS[call]
    return st.fixed_dictionaries(required, optional=optional)


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _expected_stored_id(message: dict[str, Any]) -> str:
    """The message id the data plane stores for ``message`` ("" if it assigns its own)."""
    mid = message["messageId"]
    return sanitize_unicode(mid).strip() if isinstance(mid, str) else ""


class ErrorLog(logging.Handler):
    """Collects ERROR records of the SDK's logger (a worker that hit an unexpected error)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    """ERROR records logged by rudder_analytics during the test."""
    handler = ErrorLog()
    sdk_logger = logging.getLogger("rudder_analytics")
    sdk_logger.addHandler(handler)
    yield handler
    sdk_logger.removeHandler(handler)


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rudder-analytics-worker")]


# --- properties ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("call", sorted(CALLS))
def test_sync_call_raises_validation_error_or_is_stored(call: str, error_log: ErrorLog) -> None:
    """Sync mode: any arguments either raise ValidationError or are stored (200) at once."""
    with DevServer() as server:
        client = make_client(server.url, sync_mode=True, max_retries=0)
        stored: list[str] = []

        @SETTINGS
        @given(args=call_args(call))
        def check(args: dict[str, Any]) -> None:
            try:
                ok, message = getattr(client, call)(**args)
            except ValidationError:
                return
            assert ok, f"the data plane refused it: {client.stats()['last_error']}"
            stored.append(_expected_stored_id(message))

        try:
            check()
        finally:
            client.shutdown(timeout=2)
        assert len(stored) > 10, "too few valid examples to prove anything"
        assert server.count() == len(stored)
        ids = [e["messageId"] for e in server.events()]
        expected = [mid for mid in stored if mid]
        assert sorted(mid for mid in ids if mid in set(expected)) == sorted(expected)
        assert not error_log.records


@pytest.mark.slow
@pytest.mark.parametrize("call", sorted(CALLS))
def test_queued_call_raises_validation_error_or_is_stored(
    call: str, error_log: ErrorLog
) -> None:
    """Background mode: bad input raises in the caller; the rest is stored; no worker dies."""
    with DevServer() as server:
        existing = set(threading.enumerate())
        client = make_client(server.url, thread=2, upload_size=20)
        ok, first = client.track("u-first", "Workers Started")
        assert ok and client.flush(timeout=10)
        workers = [t for t in _workers() if t not in existing]
        assert len(workers) == 2
        accepted: list[dict[str, Any]] = [first]

        @SETTINGS
        @given(args=call_args(call))
        def check(args: dict[str, Any]) -> None:
            try:
                ok, message = getattr(client, call)(**args)
            except ValidationError:
                return
            assert ok
            accepted.append(message)

        try:
            check()
            assert client.flush(timeout=60), client.stats()
            assert all(t.is_alive() for t in workers), "a worker thread died"
            assert len(accepted) > 10, "too few valid examples to prove anything"
            stats = client.stats()
            assert stats["delivered"] == len(accepted)
            assert set(stats["dropped"]) >= {"invalid"}
            assert stats["dropped_total"] == stats["dropped"]["invalid"] + \
                stats["dropped"]["too_large"]
        finally:
            client.shutdown(timeout=5)
        assert server.count() == len(accepted)
        expected = [m for m in (_expected_stored_id(m) for m in accepted) if m]
        ids = [e["messageId"] for e in server.events()]
        assert sorted(mid for mid in ids if mid in set(expected)) == sorted(expected)
        assert not error_log.records


# --- targeted cases ----------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane for one test."""
    with DevServer() as srv:
        yield srv


@pytest.fixture
def client(server: DevServer) -> Iterator[Client]:
    """A background client for ``server`` (shut down after the test)."""
    made = make_client(server.url)
    yield made
    made.shutdown(timeout=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": HugeInt(10**5000), "event": "e"},
        {"user_id": "u", "event": "e", "properties": {"n": HugeInt(10**5000)}},
        {"user_id": "u", "event": "e", "properties": {HugeInt(10**5000): 1}},
        {"user_id": "u", "event": "e",
         "timestamp": dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))},
        {"user_id": "u", "event": "e", "timestamp": "9999-12-31T23:59:59-05:00"},
        {"user_id": "\u200b", "event": "e"},
        {"anonymous_id": "\ufeff \u2060", "event": "e"},
        {"user_id": "u", "event": "e", "properties": {"r": Recursive()}},
        {"user_id": "u", "event": "e", "properties": {"o": Opaque()}},
        {"user_id": "u", "event": "e", "properties": {"b": b"\xff\xfe"}},
        {"user_id": "u", "event": "e", "properties": _nest(100_000, 1, True)},
        {"user_id": "u", "event": b"bytes"},
        {"user_id": "u", "event": "e", "properties": ["not", "a", "mapping"]},
    ],
    ids=["huge-int-id", "huge-int-value", "huge-int-key", "timestamp-underflow",
         "timestamp-overflow", "invisible-user-id", "invisible-anonymous-id", "recursive",
         "opaque", "bad-utf8-bytes", "deep-100000", "bytes-event", "list-properties"],
)
def test_known_bad_inputs_raise_validation_error(
    client: Client, server: DevServer, kwargs: dict[str, Any]
) -> None:
    """Each known-bad argument raises ValidationError in the caller and sends nothing."""
    with pytest.raises(ValidationError):
        client.track(**kwargs)
    assert client.flush(timeout=5)
    assert client.stats()["dropped"]["invalid"] == 1
    assert server.count() == 0


def test_convertible_values_are_stored(client: Client, server: DevServer) -> None:
    """NaN, infinities, big ints, non-string keys, sets, dates, UUIDs and enums are sent."""
    properties = {
        "nan": float("nan"), "inf": float("-inf"), "big": 2**64, "small": -(2**70),
        7: "int key", 2.5: "float key", None: "none key", True: "bool key",
        "set": {1, 2}, "date": dt.date(2026, 1, 2), "uuid": uuid.UUID(int=1),
        "enum": Color.RED, "bytes": b"utf-8 text", "decimal": decimal.Decimal("1.5"),
        "nested": {"deep": _nest(40, "leaf", False)},
    }
    ok, message = client.track("u", "Converted", properties)
    assert ok
    assert client.flush(timeout=10)
    (stored,) = server.events(message_id=message["messageId"])
    props = stored["properties"]
    assert props["nan"] is None and props["inf"] is None
    assert props["big"] == str(2**64) and props["small"] == str(-(2**70))
    assert props["7"] == "int key" and props["2.5"] == "float key"
    assert props["null"] == "none key" and props["true"] == "bool key"
    assert sorted(props["set"]) == [1, 2] and props["date"] == "2026-01-02"
    assert props["uuid"] == str(uuid.UUID(int=1)) and props["enum"] == "red"
    assert props["bytes"] == "utf-8 text" and props["decimal"] == 1.5


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        (dt.datetime(5, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc),
         "0005-01-02T03:04:05.678+00:00"),
        ("0999-12-31T23:59:59+00:00", "0999-12-31T23:59:59.000+00:00"),
        (dt.datetime(9999, 12, 31, 23, 59, 59), "9999-12-31T23:59:59.000+00:00"),
    ],
)
def test_timestamps_at_the_edges_are_sent_as_iso_8601(
    client: Client, server: DevServer, given: Any, sent: str
) -> None:
    """Early and late event times are stored as ISO-8601 (four-digit years) in UTC."""
    ok, message = client.track("u", "Edge Time", timestamp=given)
    assert ok and message["timestamp"] == sent
    assert client.flush(timeout=5)
    assert server.events(message_id=message["messageId"])[0]["timestamp"] == sent


def test_oversized_message_is_refused_at_the_call(client: Client, server: DevServer) -> None:
    """A message over max_message_size raises MessageTooLargeError and is counted too_large."""
    with pytest.raises(MessageTooLargeError):
        client.track("u", "Huge", {"blob": "x" * 40_000})
    ok, _ = client.track("u", "Small")
    assert ok and client.flush(timeout=5)
    assert client.stats()["dropped"]["too_large"] == 1
    assert server.count() == 1


def test_413_splits_the_batch_and_drops_only_the_oversized_message() -> None:
    """A batch answered 413 is split; only the message too large alone is dropped, once."""
    errors: list[tuple[DeliveryError, list[dict[str, Any]]]] = []
    drops: list[tuple[str, list[dict[str, Any]]]] = []
    with DevServer(max_request_bytes=60_000) as server:
        client = make_client(
            server.url, upload_size=100, max_message_size=200_000, thread=1,
            on_error=lambda error, batch: errors.append((error, batch)),
            on_drop=lambda reason, messages: drops.append((reason, messages)),
        )
        try:
            before = produce(client, threads=3, per_thread=100, tag="before")
            ok, big = client.track("u-big", "Too Big For The Server", {"blob": "y" * 90_000})
            assert ok
            after = produce(client, threads=3, per_thread=100, tag="after")
            assert client.flush(timeout=30) is False  # one message could not be delivered
        finally:
            client.shutdown(timeout=2)
        stored = {e["messageId"] for e in server.events()}
        assert stored == set(before + after)
        assert big["messageId"] not in stored
        assert any(r.status == 413 for r in server.requests())
        assert len(errors) == 1
        error, batch = errors[0]
        assert error.status_code == 413 and [m["messageId"] for m in batch] == [big["messageId"]]
        assert drops == [("too_large", batch)]
        stats = client.stats()
        assert stats["dropped"]["too_large"] == 1 and stats["dropped_total"] == 1
        assert stats["delivered"] == len(before) + len(after)
        # the big message was sent alone at least once, then never again
        alone = [r for r in server.requests() if request_ids(r) == [big["messageId"]]]
        assert len(alone) == 1
