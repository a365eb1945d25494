"""The loss reporter and the callback dispatcher, with a fake clock and a list as the sink."""

from __future__ import annotations

import threading
import time
from typing import Any

from rudder_analytics._report.callbacks import CallbackDispatcher
from rudder_analytics._report.lines import WARNING_INTERVAL, Reporter
from rudder_analytics.exceptions import DeliveryError


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _reporter() -> tuple[Reporter, Clock, list[str]]:
    clock, lines = Clock(), []
    return Reporter(clock=clock, sink=lines.append), clock, lines


def _counts(lines: list[str]) -> int:
    return sum(int(line.split("queue full: ")[1].split(" ")[0].replace(",", ""))
               for line in lines)


def test_first_drop_is_said_at_once_and_the_rest_is_never_hidden() -> None:
    """194,000 queue_full drops within one window: the first line says 1, the next line
    (at flush) says the 193,999 it held back; the lines add up to the total."""
    reporter, _, lines = _reporter()
    for _ in range(194_000):
        reporter.dropped("queue_full", 1)
    assert lines == ["queue full: 1 event(s) dropped"]
    reporter.flush()
    assert lines[1] == "queue full: 193,999 event(s) dropped"
    assert _counts(lines) == 194_000


def test_a_new_window_says_what_the_last_one_held_back() -> None:
    """After a window passes, the next drop's line carries everything held back."""
    reporter, clock, lines = _reporter()
    reporter.dropped("queue_full", 1)
    reporter.dropped("queue_full", 5)
    clock.now += WARNING_INTERVAL
    reporter.dropped("queue_full", 10)
    assert lines == ["queue full: 1 event(s) dropped", "queue full: 15 event(s) dropped"]
    reporter.flush()
    assert len(lines) == 2  # nothing held: flush says nothing


def test_one_line_per_cause_while_retrying() -> None:
    """A failing cause is said once while its events wait, and again after a success."""
    reporter, _, lines = _reporter()
    for _ in range(50):
        reporter.retrying("connection refused by 127.0.0.1:18799")
    reporter.retrying("unknown host no-such-host.invalid")
    assert len(lines) == 2
    assert "connection refused by 127.0.0.1:18799" in lines[0]
    reporter.recovered()
    reporter.retrying("connection refused by 127.0.0.1:18799")
    assert len(lines) == 3


def test_drops_are_summed_by_reason_and_cause() -> None:
    """Drops of different causes make different lines, each with its own count."""
    reporter, _, lines = _reporter()
    reporter.dropped("rejected", 100, "401 invalid write key for http://h")
    reporter.dropped("rejected", 100, "401 invalid write key for http://h")
    reporter.dropped("retries_exhausted", 7, "connection refused by h:1")
    reporter.flush()
    assert lines[0] == "100 event(s) dropped (rejected): 401 invalid write key for http://h"
    assert sorted(lines[1:]) == [
        "100 event(s) dropped (rejected): 401 invalid write key for http://h",
        "7 event(s) dropped (retries_exhausted): connection refused by h:1",
    ]


def test_invalid_calls_and_shutdown_drops_are_said_elsewhere() -> None:
    """A call that raised ValidationError told its caller; shutdown drops are counted in
    the "not delivered" line: neither makes a drop line."""
    reporter, _, lines = _reporter()
    reporter.dropped("invalid", 3)
    reporter.dropped("shutdown", 3)
    reporter.flush()
    assert lines == []


def test_dispatcher_runs_callbacks_in_order_off_the_calling_thread() -> None:
    """Callbacks run on one other thread, in submission order; wait_idle waits for them."""
    seen: list[tuple[str, int, str]] = []

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        seen.append((reason, len(messages), threading.current_thread().name))

    dispatcher = CallbackDispatcher(on_drop=on_drop)
    for i in range(5):
        dispatcher.dropped("queue_full", 1, lambda i=i: [{"i": i}])
    assert dispatcher.wait_idle(time.monotonic() + 5)
    assert [s[0] for s in seen] == ["queue_full"] * 5
    assert {s[2] for s in seen} == {"rudder-analytics-callbacks"}


def test_dispatcher_is_bounded_and_says_what_it_skipped() -> None:
    """Past MAX_PENDING waiting messages, drops are not queued for on_drop (memory stays
    bounded) and one line says how many were skipped."""
    from rudder_analytics._report import callbacks

    release = threading.Event()
    calls: list[int] = []

    def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
        release.wait(5)
        calls.append(len(messages))

    said: list[str] = []
    dispatcher = CallbackDispatcher(on_drop=on_drop, sink=said.append)
    for _ in range(callbacks.MAX_PENDING + 500):
        dispatcher.dropped("queue_full", 1, lambda: [{}])
    release.set()
    assert dispatcher.wait_idle(time.monotonic() + 20)
    assert len(calls) <= callbacks.MAX_PENDING
    assert any("not passed to on_drop" in line for line in said)


def test_four_argument_on_error_gets_the_seed_form() -> None:
    """on_error(status, body, exception, response) gets the seed SDK's four values."""
    got: list[tuple[Any, ...]] = []
    dispatcher = CallbackDispatcher(on_error=lambda s, b, e, r: got.append((s, b, e, r)))
    error = DeliveryError("x", status_code=400, body="bad")
    dispatcher.failed(error, lambda: [], 1)
    assert dispatcher.wait_idle(time.monotonic() + 5)
    assert got == [(400, "bad", error, None)]
