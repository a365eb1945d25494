"""The pure parts of the core: Retry-After parsing, classification, "fits", wire helpers,
the outcome sink and the awaitable-refusing call result."""

from __future__ import annotations

import asyncio
import email.utils
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudder_analytics._async.result import AWAIT_MESSAGE, CallResult
from rudder_analytics._build.encoding import build_body, message_overhead
from rudder_analytics._core import policy
from rudder_analytics._core.batching import BodyBudget, body_size, chunk_messages
from rudder_analytics._core.delivery import Answer, Delivery, Done, Send
from rudder_analytics._core.outcomes import DropReason as CoreReasons
from rudder_analytics._core.wire import CappedBody, request_headers
from rudder_analytics._report.sink import StatsSink
from rudder_analytics._sync.buffer import EventBuffer
from rudder_analytics.stats import DropReason, Stats

from .fakes import SENT_AT, messages


def test_retry_after_seconds() -> None:
    """Delta-seconds are read as is, clamped at zero and at MAX_RETRY_AFTER; junk is None."""
    now = 1_900_000_000.0
    assert policy.retry_after_seconds("7", None, now) == 7.0
    assert policy.retry_after_seconds(" 1.5 ", None, now) == 1.5
    assert policy.retry_after_seconds("-3", None, now) == 0.0
    assert policy.retry_after_seconds("99999999", None, now) == policy.MAX_RETRY_AFTER
    assert policy.retry_after_seconds("soon", None, now) is None
    assert policy.retry_after_seconds("nan", None, now) is None
    assert policy.retry_after_seconds(None, None, now) is None


def test_retry_after_date_is_measured_against_the_answers_date() -> None:
    """An HTTP-date Retry-After counts from the answer's Date, not from a skewed local clock."""
    server_now = 1_900_000_000.0
    date = email.utils.formatdate(server_now, usegmt=True)
    later = email.utils.formatdate(server_now + 120, usegmt=True)
    local_clock_an_hour_fast = server_now + 3600
    assert policy.retry_after_seconds(later, date, local_clock_an_hour_fast) == 120.0


def test_retry_after_date_without_date_header_uses_the_given_clock() -> None:
    """Without a (valid) Date header the driver's wall clock is the reference."""
    now = 1_900_000_000.0
    later = email.utils.formatdate(now + 30, usegmt=True)
    assert policy.retry_after_seconds(later, None, now) == 30.0
    assert policy.retry_after_seconds(later, "not a date", now) == 30.0


@pytest.mark.parametrize(("code", "verdict"), [
    (200, policy.DELIVERED), (413, policy.SPLIT), (301, policy.REJECTED),
    (308, policy.REJECTED), (400, policy.REJECTED), (404, policy.REJECTED),
    (429, policy.RETRY), (500, policy.RETRY), (503, policy.RETRY), (201, policy.REJECTED),
])
def test_classify_status(code: int, verdict: str) -> None:
    """Each status class maps to one verdict."""
    assert policy.classify(code, None) == verdict


def test_failures_name_their_kind() -> None:
    """An unknown host is final; a temporary DNS failure and the other kinds are retried."""
    import socket

    nxdomain = ConnectionError(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    again = OSError(socket.gaierror(socket.EAI_AGAIN, "Temporary failure"))
    assert policy.failure_of(nxdomain) == policy.Failure.UNKNOWN_HOST
    assert policy.classify(None, policy.failure_of(nxdomain)) == policy.REJECTED
    assert policy.failure_of(again) == policy.Failure.DNS_TEMPORARY
    assert policy.classify(None, policy.failure_of(again)) == policy.RETRY
    assert policy.failure_of(ConnectionRefusedError()) == policy.Failure.REFUSED
    assert policy.failure_of(TimeoutError()) == policy.Failure.TIMEOUT


def test_backoff_delay_is_reproducible_with_an_injected_rng() -> None:
    """The jitter comes only from the given generator."""
    first = [policy.backoff_delay(n, 0.5, 30.0, random.Random(1)) for n in range(8)]
    again = [policy.backoff_delay(n, 0.5, 30.0, random.Random(1)) for n in range(8)]
    assert first == again
    assert policy.backoff_delay(500, 0.5, 30.0, random.Random(1)) <= 30.0


def test_core_drop_reasons_are_the_stats_reasons() -> None:
    """The core's reason strings are the keys of stats()["dropped"]."""
    for name in ("TOO_LARGE", "REJECTED", "RETRIES_EXHAUSTED", "SHUTDOWN"):
        assert getattr(CoreReasons, name) == getattr(DropReason, name)


sizes = st.lists(st.integers(min_value=1, max_value=3000), min_size=0, max_size=60)


@given(sizes, st.integers(min_value=1, max_value=30), st.integers(min_value=3500, max_value=20000))
def test_one_fits_rule_for_queue_and_batches(lengths: list[int], upload_size: int,
                                             upload_bytes: int) -> None:
    """The queue's take() cuts exactly where BodyBudget (which batch packing uses) says."""
    msgs = [b"x" * n for n in lengths]
    budget = BodyBudget.for_queue(upload_size, upload_bytes, 4_096_000)
    expected = chunk_messages(msgs, budget)
    buffer = EventBuffer(10_000, 10**9, 10_000)
    for m in msgs:
        buffer.put(m)
    taken = []
    while len(buffer):
        batch, _ = buffer.take(budget.max_events, budget.limit, message_overhead())
        taken.append(batch)
    assert taken == expected
    for chunk in expected[:-1] if expected else []:
        assert len(chunk) == 1 or body_size(chunk) <= max(upload_bytes, body_size(chunk[:1]))


def test_body_size_is_exact() -> None:
    """body_size() is len(build_body()) for any number of messages, zero included."""
    for n in (0, 1, 5):
        msgs = messages(n)
        assert body_size(msgs) == len(build_body(msgs, SENT_AT))


def test_capped_body_stops_at_the_cap() -> None:
    """An answer longer than the cap is cut there and says to stop reading."""
    capped = CappedBody(10)
    capped.feed(b"0123456")
    assert not capped.full
    capped.feed(b"789abc")
    assert capped.full and capped.text() == "0123456789"


def test_request_headers_match_the_requests_transport() -> None:
    """Both transports send the headers the blocking Transport sends."""
    from rudder_analytics._sync.transport import Transport
    from rudder_analytics.config import Config

    config = Config.build("key", "http://127.0.0.1:9")
    blocking = Transport(config)
    try:
        assert request_headers("key", True) == blocking._headers
    finally:
        blocking.close()


def test_receive_without_send_is_an_error() -> None:
    """Answers only follow a Send: a driver bug fails loudly."""
    machine = Delivery(messages(1), policy.RetryPolicy(), now=0.0)
    with pytest.raises(RuntimeError):
        machine.receive(Answer(200), 0.0)
    assert isinstance(machine.next_action(0.0, SENT_AT), Send)
    machine.receive(Answer(200, "ok"), 0.0)
    assert isinstance(machine.next_action(0.0, SENT_AT), Done)


def test_abandon_drops_current_and_pending_chunks() -> None:
    """abandon() (a cancelled asyncio task) drops everything left as shutdown, once."""
    machine = Delivery(messages(4), policy.RetryPolicy(), now=0.0)
    machine.next_action(0.0, SENT_AT)
    machine.receive(Answer(413), 0.0)  # split: two chunks pending
    machine.next_action(0.0, SENT_AT)
    done = machine.abandon()
    assert done.report.failed == 4 and done.report.delivered == 0
    assert machine.next_action(1.0, SENT_AT) is done


def test_sink_applies_outcomes_to_stats() -> None:
    """The one translation to Stats: requests, retries, delivered and drops by reason."""
    stats = Stats()
    sink = StatsSink(stats, queued=False)
    machine = Delivery(messages(3), policy.RetryPolicy(max_retries=0), now=0.0, sink=sink)
    machine.next_action(0.0, SENT_AT)
    machine.receive(Answer(413), 0.0)
    machine.next_action(0.0, SENT_AT)
    machine.receive(Answer(200, "ok", wire_bytes=10), 0.0)  # [0]
    machine.next_action(0.0, SENT_AT)
    machine.receive(Answer(500, "boom"), 0.0)  # [1, 2], no retries allowed
    machine.next_action(0.0, SENT_AT)
    snapshot = stats.snapshot(0, 0, 0)
    assert snapshot["delivered"] == 1 and snapshot["requests"] == 3
    assert snapshot["failed_requests"] == 2 and snapshot["bytes_sent"] == 10
    assert snapshot["dropped"]["retries_exhausted"] == 2
    assert "500" in (snapshot["last_error"] or "")


def test_call_result_is_a_tuple_that_refuses_await() -> None:
    """track()'s result unpacks and compares as a tuple; awaiting it says why it cannot."""
    result = CallResult((True, {"type": "track"}))
    ok, message = result
    assert ok and message == {"type": "track"} and result == (True, {"type": "track"})

    async def misuse() -> None:
        await result

    with pytest.raises(TypeError, match="synchronous") as caught:
        asyncio.run(misuse())
    assert str(caught.value) == AWAIT_MESSAGE


def test_the_core_imports_no_io() -> None:
    """_core never imports threading, time, asyncio, requests or httpx, directly or through
    the package modules it uses (encoding, exceptions, version)."""
    import ast
    from pathlib import Path

    import rudder_analytics

    package = Path(rudder_analytics.__file__).parent
    banned = {"threading", "time", "asyncio", "requests", "httpx", "urllib3", "select"}
    allowed_parents = {"_build.encoding", "exceptions", "version"}
    files = [*sorted((package / "_core").glob("*.py")),
             *(package.joinpath(*name.split(".")).with_suffix(".py")
               for name in sorted(allowed_parents))]
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.ImportFrom) and node.level == 2:
                assert (node.module or "") in allowed_parents, (path.name, node.module)
                continue
            else:
                continue
            assert not banned & set(names), (path.name, names)
