"""Differential check: the core-based drop-in ``_sync.deliverer.Deliverer`` (the core run
by the blocking driver) reports exactly what today's ``delivery.Deliverer`` reports for
the same scripted answers (results, errors, causes, drop reasons and stats), so that
switching onto the core changes nothing.

Both run on the real clock here (Deliverer has no fake one), with millisecond delays.
"""

from __future__ import annotations

import socket
from typing import Any, Optional

import pytest

from rudder_analytics._core.delivery import Answer
from rudder_analytics._sync.deliverer import Deliverer as CoreDeliverer
from rudder_analytics.config import Config
from rudder_analytics.delivery import Deliverer
from rudder_analytics.retry import RetryAfterGate
from rudder_analytics.stats import Stats
from rudder_analytics.transport import Attempt

from .fakes import Script, Scripted, SyncFake, failure, messages, ok, status

URL = "http://127.0.0.1:8080"


class _Transport(SyncFake):
    attempt_timeout = 2.0

    def close(self) -> None:
        pass


class _Clock:
    now = 0.0


def _nxdomain() -> Answer:
    return failure(ConnectionError(socket.gaierror(socket.EAI_NONAME, "no such host")))


def _small_only(batch: list[dict[str, Any]]) -> Answer:
    return status(413) if len(batch) > 1 else ok()


SCENARIOS: dict[str, tuple[list[Scripted], Optional[Scripted], dict[str, Any]]] = {
    "ok": ([ok()], None, {}),
    "retry then ok": ([status(503), ok()], None, {}),
    "rejected": ([status(400, body="invalid json")], None, {}),
    "unknown key": ([status(401, body="invalid write key")], None, {}),
    "redirect": ([status(307, location="https://other.example/v1/batch")], None, {}),
    "split": ([], _small_only, {}),
    "all too large": ([], status(413), {}),
    "disabled source": ([status(404, body="source is disabled")], None, {}),
    "timeout then 502 then ok": ([failure(TimeoutError("read timed out")), status(502), ok()],
                                 None, {}),
    "exhausted": ([], status(500), {"max_retries": 2}),
    "refused then ok": ([failure(ConnectionRefusedError(111, "refused")), ok()], None, {}),
    "unknown host": ([_nxdomain()], None, {}),
    "retry-after then ok": ([status(429, retry_after=0.02), ok()], None, {}),
    "hold beyond retry_deadline": ([status(503, retry_after=30.0)], None,
                                   {"retry_deadline": 0.5}),
}


def _config(**options: Any) -> Config:
    return Config.build("key", URL, retry_base_delay=0.001, retry_max_delay=0.002,
                        atexit=False, **options)


def _summary(report: Any, stats: Stats) -> dict[str, Any]:
    snapshot = dict(stats.snapshot(0, 0, 0))
    snapshot.pop("last_error")
    requests = []
    for r in report.requests:
        error = r.error
        text = str(error) if error is not None and "Retry-After" not in str(error) else None
        requests.append((r.status_code, r.body, r.messages, r.delivered, r.attempts,
                         type(error).__name__, getattr(error, "cause", None), text))
    return {"delivered": report.delivered, "failed": report.failed,
            "deferred": [len(c) for c in report.deferred], "requests": requests,
            "stats": snapshot}


def _old(msgs: list[bytes], script: Script, config: Config, queued: bool,
         deadline: Optional[float], defer: bool) -> dict[str, Any]:
    stats = Stats()
    deliverer = Deliverer(config, stats, transport=_Transport(script, _Clock()),  # type: ignore[arg-type]
                          gate=RetryAfterGate(), queued=queued)
    return _summary(deliverer.deliver(msgs, deadline=deadline, defer=defer), stats)


def _new(msgs: list[bytes], script: Script, config: Config, queued: bool,
         deadline: Optional[float], defer: bool) -> dict[str, Any]:
    stats = Stats()
    deliverer = CoreDeliverer(config, stats, transport=_Transport(script, _Clock()),  # type: ignore[arg-type]
                              gate=RetryAfterGate(), queued=queued)
    return _summary(deliverer.deliver(msgs, deadline=deadline, defer=defer), stats)


@pytest.mark.parametrize("queued", [True, False], ids=["worker", "sync"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_core_matches_the_deliverer(name: str, queued: bool) -> None:
    """Same answers in, same report and stats out, for workers (defer) and sync sends."""
    answers, default, options = SCENARIOS[name]
    config = _config(**options)
    msgs = messages(4)
    defer = queued
    old = _old(msgs, Script(list(answers), default), config, queued, None, defer)
    new = _new(msgs, Script(list(answers), default), config, queued, None, defer)
    assert new == old


def test_core_matches_the_deliverer_under_a_sync_deadline() -> None:
    """A Retry-After beyond a sync send's deadline fails the same way in both."""
    import time

    config = _config()
    answers: list[Scripted] = [status(503, retry_after=30.0)]
    deadline = time.monotonic() + 1.0
    old = _old(messages(2), Script(list(answers)), config, False, deadline, False)
    new = _new(messages(2), Script(list(answers)), config, False, deadline, False)
    assert new == old


def test_attempt_shape_is_what_the_sync_driver_reads() -> None:
    """The blocking transport's Attempt carries failure and location for the core."""
    assert {"failure", "location"} <= set(Attempt._fields)
