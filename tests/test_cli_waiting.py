"""WaitNotices: what a command prints while it waits on the data plane, decided from the
client's public stats alone (a stand-in client with scripted stats; explicit clock)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from rudder_analytics.cli.waiting import NOTICE_AFTER, REPEAT_AFTER, WaitNotices


class _Client:
    """Only what WaitNotices uses: config.data_plane_url and stats()."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(data_plane_url="http://127.0.0.1:18799")
        self.failed_requests = 0
        self.last_error: Any = None

    def stats(self) -> dict[str, Any]:
        return {"failed_requests": self.failed_requests, "last_error": self.last_error}


def _notices() -> tuple[_Client, WaitNotices, list[str]]:
    client = _Client()
    said: list[str] = []
    return client, WaitNotices(client, said.append), said


def test_nothing_is_said_before_two_seconds_or_without_a_wait() -> None:
    """A wait shorter than NOTICE_AFTER, or no wait at all, prints nothing."""
    client, notices, said = _notices()
    client.failed_requests, client.last_error = 1, "connection refused by 127.0.0.1:18799"
    notices.poll(None, now=100.0)
    notices.poll(0.0, now=NOTICE_AFTER - 0.01)
    assert said == []


def test_a_failed_attempt_during_the_wait_is_named() -> None:
    """After 2 s, a request that failed during the wait is said as 'retrying: <error>'."""
    client, notices, said = _notices()
    notices.poll(0.0, now=0.1)
    client.failed_requests, client.last_error = 1, "connection refused by 127.0.0.1:18799"
    notices.poll(0.0, now=0.5)
    notices.poll(0.0, now=2.1)
    assert said == ["retrying: connection refused by 127.0.0.1:18799"]


def test_no_answer_at_all_is_said_as_waiting() -> None:
    """After 2 s with no failure, the notice says which host has not answered."""
    _, notices, said = _notices()
    notices.poll(0.0, now=0.1)
    notices.poll(0.0, now=2.5)
    assert said == ["waiting for an answer from 127.0.0.1:18799"]


def test_an_older_failure_is_not_blamed_for_a_new_wait() -> None:
    """A failure seen before the wait began does not make it a 'retrying'."""
    client, notices, said = _notices()
    client.failed_requests, client.last_error = 1, "data plane answered 503"
    notices.poll(None, now=1.0)
    notices.poll(5.0, now=7.5)
    assert said == ["waiting for an answer from 127.0.0.1:18799"]


def test_the_same_notice_is_repeated_only_after_a_while() -> None:
    """The same reason is not printed on every poll; a new reason is printed at once."""
    client, notices, said = _notices()
    notices.poll(0.0, now=2.0)
    notices.poll(0.0, now=2.1)
    notices.poll(0.0, now=2.0 + REPEAT_AFTER)
    client.failed_requests, client.last_error = 1, "request timed out"
    notices.poll(0.0, now=2.2 + REPEAT_AFTER)
    assert said == ["waiting for an answer from 127.0.0.1:18799"] * 2 + \
        ["retrying: request timed out"]
