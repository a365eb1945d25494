"""Code written for rudder-sdk-python, with only the import changed, works here.

Each test is a usage pattern from rudder-sdk-python's README, RudderStack's docs for it
or its own test suite (rudderstack/analytics/test/), run against the local data plane.
The only edit to the peer's code is ``import rudderstack.analytics as rudder_analytics``
-> ``import rudder_analytics`` (and ``rudderstack.analytics.client`` ->
``rudder_analytics.client``). Differences that remain are in docs/migration.md, each
tested here as a clear error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest

import rudder_analytics
from rudder_analytics import ConfigurationError
from rudder_analytics.client import Client
from rudder_analytics.devserver import DevServer

WRITE_KEY = "test-write-key"
QUICK = {"upload_interval": 0.05, "retry_base_delay": 0.01, "atexit": False}


@pytest.fixture
def server() -> Iterator[DevServer]:
    """The data plane the peer's code talks to."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


@pytest.fixture(autouse=True)
def module(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The README's setup: write key and data plane URL set on the module."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.delenv("RUDDER_DATA_PLANE_URL", raising=False)
    rudder_analytics.default_client = None
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.dataPlaneUrl = server.url
    rudder_analytics.upload_interval = 0.05
    yield
    rudder_analytics.shutdown(timeout=5)
    for name in ("write_key", "dataPlaneUrl", "host", "on_error", "upload_interval", "gzip",
                 "upload_size", "max_retries", "timeout"):
        setattr(rudder_analytics, name, None)
    rudder_analytics.sync_mode = False
    rudder_analytics.default_client = None


def test_readme_module_calls_are_delivered(server: DevServer) -> None:
    """The README's calls, positional as written there, arrive with their fields."""
    rudder_analytics.identify("1hKOmRA4GRlm", {"email": "alex@example.com", "name": "Alex",
                                               "friends": 30})
    rudder_analytics.track("developer_user_id", "Simple Track Event",
                           {"key1": "val1"})
    rudder_analytics.page("developer_user_id", "Category", "Page Name", {"url": "/home"})
    rudder_analytics.screen("developer_user_id", "Category", "Screen Name", {"k": "v"})
    rudder_analytics.group("developer_user_id", "group_id", {"company": "Acme"})
    rudder_analytics.alias("previous_id", "developer_user_id")
    rudder_analytics.flush()
    events = {e["type"]: e for e in server.events()}
    assert set(events) == {"identify", "track", "page", "screen", "group", "alias"}
    assert events["identify"]["context"]["traits"]["friends"] == 30  # where the peer puts it
    assert events["track"]["properties"] == {"key1": "val1"}
    assert events["page"]["properties"] == {"url": "/home"}
    assert events["screen"]["name"] == "Screen Name"
    assert all(e["integrations"] == {"All": True} for e in events.values())
    assert all(e["channel"] == "server" for e in events.values())


def test_module_settings_of_the_readme(server: DevServer) -> None:
    """gzip, upload_size, upload_interval, max_retries, timeout and host are module settings."""
    rudder_analytics.dataPlaneUrl = None
    rudder_analytics.host = server.url  # the deprecated name still works
    rudder_analytics.gzip = False
    rudder_analytics.upload_size = 10
    rudder_analytics.max_retries = 3
    rudder_analytics.timeout = 5
    for i in range(25):
        rudder_analytics.track("u", "Batched", {"i": i})
    rudder_analytics.flush()
    client = rudder_analytics.default_client
    assert client is not None and not client.gzip and client.upload_size == 10
    assert client.max_retries == 3 and client.timeout == 5 and client.host == server.url
    assert server.count(event="Batched") == 25


def test_module_calls_may_ignore_the_result(server: DevServer) -> None:
    """The peer's module calls return None; code that ignores the result works (ours is
    ``(success, message)``, which is also what its Client methods return)."""
    assert rudder_analytics.track("userId", "python module event") is not None
    success, msg = rudder_analytics.track("userId", "python module event")
    assert success and msg["userId"] == "userId" and msg["anonymousId"] is None


def test_mocked_default_client_receives_the_calls() -> None:
    """The peer's test_module: ``mock.patch.object(analytics, 'default_client', Mock())``."""
    fake = mock.Mock()
    with mock.patch.object(rudder_analytics, "default_client", fake):
        rudder_analytics.track("userId", "python module event")
        rudder_analytics.identify("userId", {"email": "user@email.com"})
        rudder_analytics.flush()
    fake.track.assert_called_once()
    assert fake.track.call_args.args[:2] == ("userId", "python module event")
    assert fake.identify.call_args.args[:2] == ("userId", {"email": "user@email.com"})
    fake.flush.assert_called_once()
    assert rudder_analytics.default_client is None  # restored on leaving the patch


def test_no_write_key_fails_clearly() -> None:
    """The peer's test_no_write_key, which expects AssertionError: ours names the fix."""
    with mock.patch.object(rudder_analytics, "default_client", None), \
            mock.patch.object(rudder_analytics, "write_key", None), \
            pytest.raises(ConfigurationError, match="write_key or set RUDDER_WRITE_KEY"):
        rudder_analytics.track()


def test_client_with_host_keyword(server: DevServer) -> None:
    """``Client(write_key, host=DATA_PLANE_URL, ...)`` with the peer's options."""
    errors: list[Any] = []
    client = Client(WRITE_KEY, host=server.url, on_error=lambda e, batch: errors.append(e),
                    upload_size=100, upload_interval=0.05, thread=1, max_queue_size=10000,
                    gzip=True, max_retries=10, timeout=15, proxies=None)
    success, msg = client.track(user_id=157963456373623802, event="python test event")
    assert success and msg["userId"] == "157963456373623802"
    client.flush()
    client.join()
    client.shutdown()  # the peer's shutdown() after join(): harmless here
    assert server.count(user_id="157963456373623802") == 1 and not errors


def test_advanced_track_message(server: DevServer) -> None:
    """The peer's test_advanced_track: every positional argument lands in the message."""
    client = Client(WRITE_KEY, host=server.url, **QUICK)
    success, msg = client.track("userId", "python test event", {"property": "value"},
                                {"ip": "192.168.0.1"}, dt.datetime(2014, 9, 3), "anonymousId",
                                {"Amplitude": True}, "messageId")
    assert success
    assert dt.datetime.fromisoformat(msg["timestamp"]) == dt.datetime(
        2014, 9, 3, tzinfo=dt.timezone.utc)
    assert msg["context"]["ip"] == "192.168.0.1"
    assert msg["context"]["library"]["name"] == "rudder-analytics-python"  # ours, documented
    assert msg["integrations"] == {"Amplitude": True}
    assert msg["messageId"] == "messageId"
    client.shutdown()
    [event] = server.events()
    assert event["timestamp"] == msg["timestamp"] and event["anonymousId"] == "anonymousId"


def test_on_error_false_and_none(server: DevServer) -> None:
    """``rudder_analytics.on_error = None`` (the peer's default) and False both mean none."""
    for value in (None, False):
        rudder_analytics.on_error = value
        rudder_analytics.track("userId", "E")
        assert rudder_analytics.flush(timeout=10)
    assert server.count(event="E") == 2


def test_sync_mode(server: DevServer) -> None:
    """``sync_mode = True``: delivered before the call returns."""
    rudder_analytics.sync_mode = True
    success, _ = rudder_analytics.track("userId", "Sync")
    assert success and server.count(event="Sync") == 1
    assert rudder_analytics.default_client is not None
    assert rudder_analytics.default_client.sync_mode


def test_one_x_options_fail_clearly() -> None:
    """rudder-sdk-python 1.x's flush_at / flush_interval name their new names."""
    with pytest.raises(ConfigurationError, match="upload_size"):
        rudder_analytics.flush_at = 20
    with pytest.raises(ConfigurationError, match="upload_interval"):
        rudder_analytics.flush_interval = 1
    with pytest.raises(ConfigurationError, match="upload_interval"):
        rudder_analytics.upload_intervall = 1


def test_module_shutdown_then_reopen(server: DevServer) -> None:
    """After shutdown(), calls are refused and counted; ``default_client = None`` re-opens."""
    rudder_analytics.track("userId", "Before")
    rudder_analytics.shutdown()
    success, msg = rudder_analytics.track("userId", "After")
    assert not success and msg["event"] == "After"
    stats = rudder_analytics.stats()
    assert stats is not None and stats["dropped"]["after_shutdown"] == 1
    rudder_analytics.default_client = None
    assert rudder_analytics.track("userId", "Reopened")[0]
    rudder_analytics.flush()
    assert server.count(event="Before") == 1 and server.count(event="After") == 0
    assert server.count(event="Reopened") == 1


def test_patched_client_class_builds_the_default() -> None:
    """The peer's test_no_host_is_forwarded_to_client: the module builds its client with
    ``rudder_analytics.Client``, so patching that class takes effect."""
    created = mock.Mock()
    with mock.patch.object(rudder_analytics, "default_client", None), \
            mock.patch.object(rudder_analytics, "Client", return_value=created) as factory:
        rudder_analytics.track("userId", "python module event")
    assert factory.call_args.args[0] == WRITE_KEY
    assert created.track.call_args.args[:2] == ("userId", "python module event")


def test_a_1x_option_given_to_the_client_names_what_to_use() -> None:
    """Client(flush_at=...) (rudder-sdk-python 1.x) is refused with the option to use."""
    with pytest.raises(ConfigurationError, match="use upload_size instead"):
        Client("k", "http://127.0.0.1:1", flush_at=10)
