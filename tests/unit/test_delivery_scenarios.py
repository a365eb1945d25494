"""Behavioural scenarios of the delivery core, written once and run against both drivers.

Each runs on a fake clock with a scripted transport, in milliseconds: every
status class, ``Retry-After``, the shared hold, 413 splits, deadlines,
retries exhausted, unknown hosts and cancellation.
"""

from __future__ import annotations

import socket

import pytest

from rudder_analytics._core.delivery import Hold
from rudder_analytics._core.outcomes import Attempted, Deferred, Delivered, Dropped, Retrying
from rudder_analytics._core.policy import RetryPolicy
from rudder_analytics.exceptions import HTTPStatusError, RetriesExhaustedError, TransportError

from .fakes import SENT_AT, Deliver, failure, messages, ok, status


def test_success_sends_one_body_with_sent_at(deliver: Deliver) -> None:
    """200: one POST carrying every message in order, each stamped with sentAt; all delivered."""
    run = deliver(messages(3), [ok()])
    assert [s.numbers for s in run.sent] == [[0, 1, 2]]
    assert all(m["sentAt"] == SENT_AT for m in run.sent[0].body["batch"])
    assert run.report.ok and run.report.delivered == 3 and run.report.failed == 0
    assert [type(o) for o in run.log] == [Attempted, Delivered]
    assert run.log[-1] == Delivered(3)


@pytest.mark.parametrize("code", [429, 500, 502, 503, 504, 599])
def test_transient_statuses_are_retried(deliver: Deliver, code: int) -> None:
    """429 and every 5xx are retried; the retry is counted as one; then delivered."""
    run = deliver(messages(2), [status(code), ok()])
    assert len(run.sent) == 2 and run.report.delivered == 2
    attempts = [o for o in run.log if isinstance(o, Attempted)]
    assert [(a.ok, a.retry) for a in attempts] == [(False, False), (True, True)]
    assert any(isinstance(o, Retrying) for o in run.log)


@pytest.mark.parametrize("code", [400, 401, 403, 404, 405, 422])
def test_final_statuses_drop_at_once(deliver: Deliver, code: int) -> None:
    """Other 4xx are final: one POST, the chunk dropped as rejected with an HTTPStatusError."""
    run = deliver(messages(2), [status(code)])
    assert len(run.sent) == 1
    assert run.dropped() == [("rejected", 2)]
    [dropped] = [o for o in run.log if isinstance(o, Dropped)]
    assert isinstance(dropped.error, HTTPStatusError) and dropped.error.status_code == code
    assert run.report.failed == 2 and not run.report.ok


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_are_rejections_naming_location(deliver: Deliver, code: int) -> None:
    """A redirect is never followed for a POST: rejected, the error names the Location."""
    run = deliver(messages(1), [status(code, location="https://elsewhere.example/v1/batch")])
    assert len(run.sent) == 1 and run.dropped() == [("rejected", 1)]
    error = run.report.requests[0].error
    assert isinstance(error, HTTPStatusError)
    assert error.location == "https://elsewhere.example/v1/batch"
    assert "https://elsewhere.example/v1/batch" in str(error)


def test_network_error_is_retried(deliver: Deliver) -> None:
    """No answer (connection refused, reset, timeout) is retried."""
    run = deliver(messages(1), [failure(ConnectionResetError("reset")), ok()])
    assert len(run.sent) == 2 and run.report.delivered == 1
    first = next(o for o in run.log if isinstance(o, Attempted))
    assert isinstance(first.error, TransportError)


def test_unknown_host_is_final(deliver: Deliver) -> None:
    """DNS NXDOMAIN (wrapped as requests and httpx wrap it) is final: one attempt, rejected."""
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    wrapper = ConnectionError("failed to resolve")
    wrapper.__cause__ = gai
    run = deliver(messages(1), [failure(ConnectionError(wrapper))])
    assert len(run.sent) == 1 and run.dropped() == [("rejected", 1)]


def test_temporary_dns_failure_is_retried(deliver: Deliver) -> None:
    """EAI_AGAIN (the resolver could not answer now) is retried like any network error."""
    gai = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    run = deliver(messages(1), [failure(OSError(gai)), ok()])
    assert len(run.sent) == 2 and run.report.ok


def test_retry_after_is_obeyed_exactly(deliver: Deliver) -> None:
    """Retry-After (seconds) sets the wait exactly: no jitter, not shortened by the cap."""
    run = deliver(messages(1), [status(429, retry_after=42.0), ok()],
                  policy=RetryPolicy(10, 600.0, 0.5, 1.0))
    assert run.times[1] - run.times[0] == pytest.approx(42.0)


def test_retry_after_hold_is_shared(deliver: Deliver) -> None:
    """A Retry-After read by one delivery holds back another that shares the hold."""
    hold = Hold()
    first = deliver(messages(1), [status(503, retry_after=30.0), ok()], hold=hold)
    start = first.times[0]
    deliver.clock.now = start + 1.0  # a second sender starts while the hold is on
    second = deliver(messages(1), [ok()], hold=hold)
    assert second.times[0] >= start + 30.0


def test_backoff_doubles_with_jitter_up_to_the_cap(deliver: Deliver) -> None:
    """Waits follow base*2**n capped, each within [d/2, d] (equal jitter)."""
    run = deliver(messages(1), [status(503)] * 6 + [ok()],
                  policy=RetryPolicy(10, 600.0, 1.0, 8.0))
    waits = [b - a for a, b in zip(run.times, run.times[1:])]
    for wait, full in zip(waits, [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        assert full / 2 <= wait <= full


def test_413_splits_until_each_half_fits(deliver: Deliver) -> None:
    """413 halves the chunk, in order, until the halves are accepted; nothing is lost."""
    def small_only(batch: list[dict[str, object]]):  # type: ignore[no-untyped-def]
        return status(413) if len(batch) > 2 else ok()

    run = deliver(messages(8), [], default=small_only)
    delivered = [s.numbers for s in run.sent if len(s.numbers) <= 2]
    assert delivered == [[0, 1], [2, 3], [4, 5], [6, 7]]
    assert run.report.delivered == 8 and run.report.ok
    assert len(run.report.requests) == 4  # a split request is not a result of its own


def test_413_on_one_message_drops_only_it(deliver: Deliver) -> None:
    """A message refused alone with 413 is too large; the others are delivered."""
    def refuse_big(batch: list[dict[str, object]]):  # type: ignore[no-untyped-def]
        big = any(len(str(m["pad"])) > 100 for m in batch)
        return status(413) if big else ok()

    msgs = messages(3)
    msgs[1] = messages(2, pad=500)[1]
    run = deliver(msgs, [], default=refuse_big)
    assert run.dropped() == [("too_large", 1)]
    assert run.report.delivered == 2 and run.report.failed == 1


def test_retries_exhausted_after_max_retries(deliver: Deliver) -> None:
    """After max_retries retries the chunk is dropped; the error says how many attempts."""
    run = deliver(messages(2), [], default=status(500), policy=RetryPolicy(3, 600.0, 0.1, 0.2))
    assert len(run.sent) == 4
    assert run.dropped() == [("retries_exhausted", 2)]
    error = run.report.requests[0].error
    assert isinstance(error, RetriesExhaustedError) and error.attempts == 4
    assert error.last_error.status_code == 500


def test_retry_deadline_ends_retries(deliver: Deliver) -> None:
    """No retry is scheduled past retry_deadline from the chunk's first attempt."""
    run = deliver(messages(1), [], default=status(503), policy=RetryPolicy(100, 10.0, 2.0, 4.0))
    assert run.times[-1] - run.times[0] <= 10.0
    assert run.dropped() == [("retries_exhausted", 1)]


def test_callers_deadline_caps_the_retry_deadline(deliver: Deliver) -> None:
    """A sync send's deadline bounds the retries even when retry_deadline is longer."""
    start = deliver.clock.now
    run = deliver(messages(1), [], default=status(503), deadline=start + 3.0,
                  policy=RetryPolicy(100, 600.0, 0.5, 1.0))
    assert run.times[-1] <= start + 3.0
    assert run.dropped() == [("retries_exhausted", 1)]


def test_hold_past_the_deadline_defers_when_kept(deliver: Deliver) -> None:
    """A Retry-After longer than what remains is not a drop when the caller can keep it."""
    run = deliver(messages(2), [status(429, retry_after=900.0)], keep_deferred=True,
                  policy=RetryPolicy(10, 60.0, 0.5, 1.0))
    assert len(run.sent) == 1 and run.dropped() == []
    assert [len(c) for c in run.report.deferred] == [2] and not run.report.ok
    [deferred] = [o for o in run.log if isinstance(o, Deferred)]
    assert deferred.until == pytest.approx(run.times[0] + 900.0)


def test_hold_past_the_deadline_drops_when_not_kept(deliver: Deliver) -> None:
    """Without a queue to keep it (sync sends), a hold past the deadline is a drop that
    names the wait; never sent, the error is not a retries-exhausted one."""
    hold = Hold()
    hold.hold_until(deliver.clock.now + 500.0)
    run = deliver(messages(1), [], hold=hold, deadline=deliver.clock.now + 30.0)
    assert run.sent == [] and run.dropped() == [("retries_exhausted", 1)]
    error = run.report.requests[0].error
    assert "not sent" in str(error) and "500 s (Retry-After)" in str(error)
    assert "sync_deadline" in str(error) and not isinstance(error, RetriesExhaustedError)


def test_retry_after_past_the_deadline_fails_naming_it(deliver: Deliver) -> None:
    """An answer asking to wait beyond what remains fails at once, saying how long."""
    run = deliver(messages(1), [status(503, retry_after=900.0)],
                  policy=RetryPolicy(10, 60.0, 0.5, 1.0))
    assert len(run.sent) == 1 and run.dropped() == [("retries_exhausted", 1)]
    error = run.report.requests[0].error
    assert isinstance(error, RetriesExhaustedError)
    assert "900 s (Retry-After)" in str(error) and "retry_deadline" in str(error)


def test_hold_before_the_first_attempt_does_not_eat_the_retry_deadline(
        deliver: Deliver) -> None:
    """retry_deadline counts from the first attempt: a long hold first is waited out."""
    hold = Hold()
    start = deliver.clock.now
    hold.hold_until(start + 100.0)
    run = deliver(messages(1), [status(503), ok()], hold=hold,
                  policy=RetryPolicy(10, 50.0, 1.0, 1.0))
    assert run.times[0] == pytest.approx(start + 100.0) and run.report.ok


def test_cancel_during_a_retry_wait_drops_as_shutdown(deliver: Deliver) -> None:
    """Shutdown (or a cancelled task) ends the retry wait: the chunk is dropped as shutdown."""
    start = deliver.clock.now
    run = deliver(messages(3), [status(503, retry_after=60.0)], cancel_at=start + 5.0)
    assert len(run.sent) == 1
    assert run.dropped() == [("shutdown", 3)]
    assert deliver.clock.now < start + 60.0


def test_cancel_during_a_backoff_wait_drops_as_shutdown(deliver: Deliver) -> None:
    """A cancel during a backoff wait drops the chunk with the last error wrapped."""
    start = deliver.clock.now
    run = deliver(messages(1), [status(500)], cancel_at=start + 0.1,
                  policy=RetryPolicy(10, 600.0, 10.0, 10.0))
    assert len(run.sent) == 1 and run.dropped() == [("shutdown", 1)]
    error = run.report.requests[0].error
    assert isinstance(error, RetriesExhaustedError) and error.last_error.status_code == 500


def test_cancel_during_a_hold_drops_as_shutdown(deliver: Deliver) -> None:
    """A chunk waiting for another sender's Retry-After is dropped as shutdown when cancelled."""
    hold = Hold()
    hold.hold_until(deliver.clock.now + 50.0)
    run = deliver(messages(2), [], hold=hold, cancel_at=deliver.clock.now + 1.0)
    assert run.sent == [] and run.dropped() == [("shutdown", 2)]
