"""Code written for Segment's analytics-python, with only the import changed, works here.

Each test is a usage pattern from analytics-python's README, docs or own test suite
(segment/analytics/test/), run against the local data plane. The only edits to the
peer's code are ``import segment.analytics as analytics`` -> ``import rudder_analytics
as analytics`` (and ``segment.analytics.client`` -> ``rudder_analytics.client``), plus
``analytics.host`` / ``host=`` pointing at the DevServer where the peer has a default
host. Differences that remain are in docs/migration.md, each tested here as a clear error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

import rudder_analytics as analytics
from rudder_analytics import ConfigurationError
from rudder_analytics.client import Client
from rudder_analytics.devserver import DevServer

WRITE_KEY = "testsecret"
QUICK = {"upload_interval": 0.05, "retry_base_delay": 0.01, "atexit": False}


@pytest.fixture
def server() -> Iterator[DevServer]:
    """The data plane the peer's code talks to (it accepts the peer's test key)."""
    with DevServer(write_keys=(WRITE_KEY, "test-init")) as dev:
        yield dev


@pytest.fixture(autouse=True)
def module(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The peer's own setUp: a write key, and ``default_client = None``."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.delenv("RUDDER_DATA_PLANE_URL", raising=False)
    analytics.default_client = None
    analytics.write_key = WRITE_KEY
    analytics.host = server.url
    analytics.upload_interval = 0.05
    yield
    analytics.shutdown(timeout=5)
    for name in ("write_key", "host", "on_error", "upload_interval", "gzip", "timeout",
                 "max_queue_size"):
        setattr(analytics, name, None)
    analytics.debug = False
    analytics.send = True
    analytics.sync_mode = False
    analytics.default_client = None


def test_readme_module_calls_are_delivered(server: DevServer) -> None:
    """The README's six calls, positional as written there, arrive with their fields."""
    analytics.identify("019mr8mf4r", {"email": "john@example.com", "name": "John Smith",
                                      "friends": 30})
    analytics.track("f4ca124298", "Signed Up", {"plan": "Enterprise"})
    analytics.page("user_id", "Docs", "Python", {"url": "http://segment.com"})
    analytics.screen("user_id", "Food", "Pizza")
    analytics.group("user_id", "group_id", {"name": "Initech"})
    analytics.alias("previous_id", "user_id")
    analytics.flush()
    events = {e["type"]: e for e in server.events()}
    assert set(events) == {"identify", "track", "page", "screen", "group", "alias"}
    assert events["identify"]["traits"]["friends"] == 30
    assert events["track"]["event"] == "Signed Up"
    assert events["page"]["properties"] == {"url": "http://segment.com"}
    assert events["page"]["name"] == "Python" and events["page"]["category"] == "Docs"
    assert events["screen"]["properties"] == {}
    assert events["group"]["groupId"] == "group_id"
    assert events["alias"]["previousId"] == "previous_id"


def test_on_error_false_means_no_callback(server: DevServer) -> None:
    """The peer's test_module setUp: ``analytics.on_error = self.failed`` with failed=False."""
    failed = False
    analytics.on_error = failed
    analytics.track("userId", "python module event")
    analytics.flush()
    assert server.count(event="python module event") == 1


def test_on_error_gets_the_error_and_the_batch(server: DevServer) -> None:
    """``def on_error(error, items)`` is called with the batch that failed."""
    seen: list[tuple[Exception, list[Any]]] = []

    def on_error(error: Exception, items: list[Any]) -> None:
        seen.append((error, items))

    client = Client("not-a-key", host=server.url, on_error=on_error, **QUICK)
    client.track("userId", "Rejected")
    client.flush()
    client.shutdown()
    assert len(seen) == 1 and seen[0][1][0]["event"] == "Rejected"


def test_returned_message_reads_like_segments() -> None:
    """The peer's test_client assertions on the returned message hold."""
    client = Client(WRITE_KEY, host="http://127.0.0.1:9", send=False)
    success, msg = client.track("userId", "python test event")
    assert success
    assert msg["event"] == "python test event"
    assert isinstance(msg["messageId"], str)
    assert msg["userId"] == "userId" and msg["anonymousId"] is None
    assert msg["properties"] == {} and msg["type"] == "track"
    success, msg = client.track(user_id=157963456373623802, event="python test event")
    assert msg["userId"] == "157963456373623802" and msg["anonymousId"] is None
    success, msg = client.track(anonymous_id=157963456373623803, event="python test event")
    assert msg["userId"] is None and msg["anonymousId"] == "157963456373623803"
    success, msg = client.track("userId", "python test event", {"property": "value"},
                                {"ip": "192.168.0.1"}, dt.datetime(2014, 9, 3), "anonymousId",
                                {"Amplitude": True}, "messageId")
    assert msg["timestamp"] == "2014-09-03T00:00:00.000+00:00"  # Segment's exact format
    assert msg["properties"] == {"property": "value"}
    assert msg["context"]["ip"] == "192.168.0.1"
    assert msg["integrations"] == {"Amplitude": True}
    assert msg["messageId"] == "messageId" and msg["anonymousId"] == "anonymousId"
    success, msg = client.page("userId", "category", "name", {"property": "value"})
    assert msg["name"] == "name" and msg["category"] == "category"
    assert msg["properties"] == {"property": "value"}
    success, msg = client.identify("userId", {"birthdate": dt.date(1981, 2, 2)})
    assert success and msg["traits"]["birthdate"] == dt.date(1981, 2, 2)


def test_default_client_is_the_modules_client(server: DevServer) -> None:
    """The peer's test_init: flush() builds it; its options read back; None resets it."""
    analytics.write_key = "test-init"
    assert analytics.default_client is None
    analytics.flush()
    assert analytics.default_client is not None
    assert analytics.default_client.write_key == "test-init"
    assert analytics.default_client.host == server.url
    analytics.debug = True
    analytics.flush()
    assert analytics.default_client.debug
    analytics.default_client = None
    analytics.debug = False
    analytics.flush()
    assert not analytics.default_client.debug
    analytics.default_client.log.setLevel(0)  # reset log level after debug enable
    analytics.default_client = None
    analytics.gzip = False
    analytics.sync_mode = True
    analytics.timeout = 1.234
    analytics.max_queue_size = 1337
    analytics.flush()
    client = analytics.default_client
    assert not client.gzip and client.sync_mode and client.timeout == 1.234
    assert client.queue.maxsize == 1337 and client.max_queue_size == 1337
    assert client.send and client.send == True  # noqa: E712 - the peers' users compare


def test_client_flush_and_shutdown_empty_the_queue(server: DevServer) -> None:
    """The peer's test_flush / test_shutdown, except for the internal consumers."""
    client = Client(WRITE_KEY, host=server.url, **QUICK)
    for _ in range(1000):
        client.identify("userId", {"trait": "value"})
    client.flush()
    assert client.queue.empty()
    for _ in range(1000):
        client.identify("userId", {"trait": "value"})
    client.shutdown()
    assert client.queue.empty() and client.queue.qsize() == 0
    assert server.count(type="identify") == 2000
    with pytest.raises(AttributeError, match=r"consumers.*client.stats\(\)"):
        client.consumers  # noqa: B018 - the peer's test reads it


def test_synchronous_mode(server: DevServer) -> None:
    """The peer's test_synchronous: each call is delivered before it returns."""
    client = Client(WRITE_KEY, host=server.url, sync_mode=True)
    success, _ = client.identify("userId")
    assert success and client.queue.empty()
    assert server.count(type="identify") == 1
    analytics.sync_mode = True  # the serverless recipe of Segment's docs
    assert analytics.track("userId", "Lambda")[0]
    assert server.count(event="Lambda") == 1


def test_send_false_sends_nothing(server: DevServer) -> None:
    """``send=False`` builds and returns messages without sending; client.send reads False."""
    analytics.send = False
    success, msg = analytics.track("userId", "Dry Run")
    assert success and msg["event"] == "Dry Run"
    analytics.flush()
    assert analytics.default_client is not None and not analytics.default_client.send
    assert analytics.default_client.send == False  # noqa: E712
    assert server.count() == 0


def test_overflow_after_join_returns_false() -> None:
    """The peer's test_overflow / test_queue_full_returns_false: calls after join() are False
    and never raise (refused as after_shutdown here, where the peer's queue fills up)."""
    client = Client(WRITE_KEY, host="http://127.0.0.1:9", max_queue_size=1, **QUICK)
    client.join()
    for _ in range(10):
        client.identify("userId")
    success, _ = client.identify("userId")
    assert not success
    assert client.stats()["dropped"]["after_shutdown"] == 11


def test_debug_and_the_logger() -> None:
    """The peer's test_debug: ``client.log`` is the SDK's logger."""
    client = Client("bad_key", host="http://127.0.0.1:9", debug=True, send=False)
    assert client.log is logging.getLogger("rudder_analytics")
    assert client.log.level == logging.DEBUG
    client.log.setLevel(0)  # reset log level after debug enable


def test_timeout_gzip_and_proxies_read_back() -> None:
    """test_user_defined_timeout and friends read the options from the client."""
    proxies = {"http": "203.243.63.16:80", "https": "203.243.63.16:80"}
    client = Client(WRITE_KEY, host="http://127.0.0.1:9", timeout=10, gzip=True,
                    proxies=proxies, send=False)
    assert client.timeout == 10 and client.gzip and client.proxies == proxies
    assert Client(WRITE_KEY, host="http://127.0.0.1:9", send=False).timeout == 15


def test_options_are_fixed_once_built() -> None:
    """Assigning an option on a built client says how to set it instead."""
    client = Client(WRITE_KEY, host="http://127.0.0.1:9", send=False)
    with pytest.raises(ConfigurationError, match=r"Client\(\.\.\., debug=\.\.\.\)"):
        client.debug = True
    with pytest.raises(ConfigurationError, match="send"):
        client.send = False


def test_segment_only_options_fail_clearly() -> None:
    """log_handler, OAuth and the backoff limits name what to use instead."""
    with pytest.raises(ConfigurationError, match=r"getLogger\('rudder_analytics'\)"):
        analytics.log_handler = logging.StreamHandler()
    with pytest.raises(ConfigurationError, match="retry_deadline"):
        analytics.max_total_backoff_duration = 60
    with pytest.raises(ConfigurationError, match="oauth_client_id"):
        analytics.oauth_client_id = "id"
    with pytest.raises(ConfigurationError, match="log_handler"):
        Client(WRITE_KEY, host="http://127.0.0.1:9", log_handler=logging.StreamHandler())
    client = Client(WRITE_KEY, host="http://127.0.0.1:9", send=False)
    with pytest.raises(AttributeError, match="OAuth is Segment-only"):
        client.oauth_manager  # noqa: B018


def test_missing_write_key_fails_clearly() -> None:
    """The peer's test_no_write_key: ``assertRaises(Exception, analytics.track)``."""
    analytics.write_key = None
    with pytest.raises(ConfigurationError, match="write key"):
        analytics.track()
    with pytest.raises(ConfigurationError, match="RUDDER_DATA_PLANE_URL"):
        Client("testsecret")  # the peer has a default host; a RudderStack one must be given
