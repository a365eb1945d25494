"""rudder_analytics.testing, the pytest plugin's fixtures and the TypedDict message shapes."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args
from unittest import mock

import pytest

import rudder_analytics
from rudder_analytics import Client, ValidationError
from rudder_analytics._build import capture as capture_module
from rudder_analytics.devserver import DevServer
from rudder_analytics.testing import CapturedEvents, capture
from rudder_analytics.types import Message

WRITE_KEY = "test-write-key"
FAST = {"upload_interval": 0.05, "atexit": False, "retry_base_delay": 0.01}


@pytest.fixture
def client(rudder_dataplane: DevServer) -> Iterator[Client]:
    """A background client pointed at the test's data plane."""
    built = Client(WRITE_KEY, rudder_dataplane.url, **FAST)
    yield built
    built.shutdown(timeout=5)


@pytest.fixture
def fresh_module_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No default client and no module settings or environment configuration."""
    rudder_analytics.default_client = None
    for name in ("write_key", "data_plane_url", "dataPlaneUrl", "host"):
        monkeypatch.setattr(rudder_analytics, name, None)
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.delenv("RUDDER_DATA_PLANE_URL", raising=False)
    yield
    rudder_analytics.shutdown()
    rudder_analytics.default_client = None


def _all_types(target: Any, user: str = "u1") -> None:
    target.track(user_id=user, event="Signed Up", properties={"plan": "pro", "seats": 3})
    target.identify(user_id=user, traits={"email": "a@b.c", "name": "Ada"})
    target.page(user_id=user, name="Pricing", category="Docs", properties={"url": "/p"})
    target.screen(anonymous_id="anon-1", name="Home")
    target.group(user_id=user, group_id="acme", traits={"size": 10})
    target.alias(previous_id="anon-1", user_id=user)


# --- capturing -------------------------------------------------------------------------


def test_capture_records_and_sends_nothing(client: Client, rudder_dataplane: DevServer
                                           ) -> None:
    """Inside capture() calls succeed and are recorded, and nothing reaches the data plane."""
    with capture() as events:
        ok, message = client.track(user_id="u1", event="Signed Up")
        assert ok
    assert client.flush(timeout=5)
    assert rudder_dataplane.count() == 0
    assert len(events) == 1 and events[0]["messageId"] == message["messageId"]
    assert client.stats()["enqueued"] == 0


def test_capture_restores_sending_on_exit(client: Client, rudder_dataplane: DevServer) -> None:
    """After the block, calls are queued and delivered again, and the hook is gone."""
    with capture():
        client.track(user_id="u1", event="Captured")
    assert not capture_module.HOOKS
    client.track(user_id="u1", event="Sent")
    assert client.flush(timeout=5)
    assert [e["event"] for e in rudder_dataplane.events()] == ["Sent"]


def test_capture_restores_after_an_exception() -> None:
    """An exception inside the block still removes the capture."""
    with pytest.raises(RuntimeError), capture():
        raise RuntimeError("boom")
    assert not capture_module.HOOKS


def test_batches_are_captured(client: Client, rudder_dataplane: DevServer) -> None:
    """Messages of a batch block are recorded with the batch's shared context; none sent."""
    with capture() as events:
        with client.batch() as batch:
            batch.context = {"ip": "10.0.0.1"}
            batch.identify(user_id="u1", traits={"a": 1})
            batch.track(user_id="u1", event="E")
        assert batch.result is not None and batch.result.delivered == 2
    assert [m["type"] for m in events] == ["identify", "track"]
    assert all(m["context"]["ip"] == "10.0.0.1" for m in events)
    assert rudder_dataplane.count() == 0


def test_validation_errors_still_raise() -> None:
    """A bad call raises as in production and is not recorded."""
    with capture() as events, pytest.raises(ValidationError):
        Client(WRITE_KEY, "http://127.0.0.1:9", atexit=False).track(user_id="u1")
    assert len(events) == 0


def test_module_level_calls_use_a_stand_in(fresh_module_client: None) -> None:
    """With nothing configured, module-level calls work under capture and the stand-in goes."""
    with capture() as events:
        ok, _ = rudder_analytics.track(user_id="u1", event="Signed Up")
        assert ok
        assert rudder_analytics.flush() is True
    events.assert_tracked("Signed Up", user_id="u1")
    assert rudder_analytics.default_client is None
    with pytest.raises(rudder_analytics.ConfigurationError):
        rudder_analytics.track(user_id="u1", event="Signed Up")


def test_stand_in_can_be_refused(fresh_module_client: None) -> None:
    """stand_in_default=False keeps the usual configuration error."""
    with capture(stand_in_default=False), pytest.raises(rudder_analytics.ConfigurationError):
        rudder_analytics.track(user_id="u1", event="E")


def test_module_level_calls_with_real_configuration(
    fresh_module_client: None, rudder_dataplane: DevServer
) -> None:
    """A configured default client is kept: captured during the block, delivered after it."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = rudder_dataplane.url
    rudder_analytics.upload_interval = 0.05
    with capture() as events:
        rudder_analytics.identify(user_id="u1", traits={"plan": "pro"})
    events.assert_identified("u1", traits={"plan": "pro"})
    rudder_analytics.track(user_id="u1", event="After")
    assert rudder_analytics.flush(timeout=5)
    assert [e["type"] for e in rudder_dataplane.events()] == ["track"]


def test_captured_messages_are_wire_snapshots(client: Client) -> None:
    """Captured messages read as the data plane would get them, and later edits don't leak."""
    properties: dict[str, Any] = {"at": dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc),
                                  "price": Decimal("9.5"), "tags": ("a", "b")}
    with capture() as events:
        client.track(user_id=42, event="Bought", properties=properties)
    properties["price"] = Decimal("0")
    [message] = events.messages
    assert message["userId"] == "42"
    assert message["properties"]["at"].startswith("2024-05-01T12:00:00")
    assert message["properties"]["price"] == 9.5
    assert message["properties"]["tags"] == ["a", "b"]


def test_capture_is_thread_safe_and_wait_for_has_a_deadline(client: Client) -> None:
    """Calls from many threads are all recorded; wait_for returns once they are there."""
    with capture() as events:
        barrier = threading.Barrier(8)

        def produce(index: int) -> None:
            barrier.wait(timeout=10)
            for n in range(200):
                client.track(user_id=f"u{index}", event="E", properties={"n": n})

        threads = [threading.Thread(target=produce, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        assert events.wait_for(1600, timeout=30)
        for thread in threads:
            thread.join(timeout=30)
    assert len(events) == 1600
    assert len(events.for_user("u3")) == 200
    assert not events.wait_for(1601, timeout=0.01)


def test_nested_captures(client: Client) -> None:
    """An inner capture sees its own span, the outer sees everything, each removes itself."""
    with capture() as outer:
        client.track(user_id="u1", event="Before")
        with capture() as inner:
            client.track(user_id="u1", event="Inside")
        assert len(capture_module.HOOKS) == 1
        client.track(user_id="u1", event="After")
    assert [m["event"] for m in inner] == ["Inside"]
    assert [m["event"] for m in outer] == ["Before", "Inside", "After"]
    assert not capture_module.HOOKS


def test_start_and_stop_without_with(client: Client) -> None:
    """start()/stop() work like the block; stop is idempotent and starting twice is refused."""
    events = CapturedEvents().start()
    assert events.active
    with pytest.raises(RuntimeError):
        events.start()
    client.track(user_id="u1", event="E")
    events.stop()
    events.stop()
    assert not events.active and len(events) == 1


# --- reading and assertions ------------------------------------------------------------


def test_filters(client: Client) -> None:
    """of_type, named, for_user, for_anonymous and find select the right messages."""
    with capture() as events:
        _all_types(client)
        client.track(user_id=7, event="Other")
    assert [m["type"] for m in events.of_type("track")] == ["track", "track"]
    assert [m["type"] for m in events.named("Pricing")] == ["page"]
    assert [m["event"] for m in events.named("Signed Up")] == ["Signed Up"]
    assert len(events.for_user("u1")) == 5
    assert [m["event"] for m in events.for_user(7)] == ["Other"]
    assert [m["type"] for m in events.for_anonymous("anon-1")] == ["screen"]
    assert len(events.find("track", properties={"plan": "pro"})) == 1
    assert events.find("track", properties={"plan": "free"}) == []
    assert len(events.find(context={"library": {"name": "rudder-analytics-python"}})) == 7
    events.clear()
    assert len(events) == 0 and events.messages == []


def test_assertions_pass(client: Client) -> None:
    """Each assert_* helper finds its call and returns the message."""
    with capture() as events:
        _all_types(client)
    message = events.assert_tracked("Signed Up", user_id="u1", properties={"plan": "pro"})
    assert message["properties"]["seats"] == 3
    events.assert_tracked("Signed Up", times=1)
    events.assert_tracked("Signed Up", properties={"seats": mock.ANY})
    events.assert_identified("u1", traits={"email": "a@b.c"})
    events.assert_paged("Pricing", category="Docs", properties={"url": "/p"})
    events.assert_screened("Home", anonymous_id="anon-1")
    events.assert_grouped("acme", "u1", traits={"size": 10})
    events.assert_aliased("anon-1", "u1")
    events.assert_not_tracked("Churned")


def test_assertion_failures_explain_what_was_captured(client: Client) -> None:
    """A failing assertion says what was expected and lists what was captured."""
    with capture() as events:
        client.track(user_id="u1", event="Signed Up", properties={"plan": "pro"})
    with pytest.raises(AssertionError) as failure:
        events.assert_tracked("Signed Up", user_id="u2")
    text = str(failure.value)
    assert "expected track 'Signed Up' (user_id='u2'), found none" in text
    with pytest.raises(AssertionError) as failure:
        events.assert_tracked("Signed Up", user_id="u1", properties={"plan": "free"})
    assert ("expected track 'Signed Up' (user_id='u1', properties={'plan': 'free'})"
            in str(failure.value))
    assert "track user_id='u1' 'Signed Up'" in text and "'plan': 'pro'" in text
    with pytest.raises(AssertionError, match=r"2 time\(s\), found 1"):
        events.assert_tracked("Signed Up", times=2)
    with pytest.raises(AssertionError, match="expected no track"):
        events.assert_not_tracked("Signed Up")
    with pytest.raises(AssertionError, match="expected no messages"):
        events.assert_nothing_sent()
    with pytest.raises(AssertionError, match="nothing was captured"), capture() as empty:
        empty.assert_identified("u1")


def test_expected_values_are_compared_as_sent(client: Client) -> None:
    """Expected Decimal, datetime and big ints match their wire form."""
    when = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)
    with capture() as events:
        client.track(user_id="u1", event="E",
                     properties={"price": Decimal("9.5"), "at": when, "big": 2**60})
    events.assert_tracked("E", properties={"price": Decimal("9.5"), "at": when, "big": 2**60})


# --- fixtures --------------------------------------------------------------------------


def test_rudder_events_fixture(rudder_events: CapturedEvents, client: Client,
                               rudder_dataplane: DevServer) -> None:
    """The rudder_events fixture captures for the test; nothing is sent."""
    client.track(user_id="u1", event="Fixture")
    rudder_events.assert_tracked("Fixture", user_id="u1")
    assert client.flush(timeout=5) and rudder_dataplane.count() == 0


def test_rudder_dataplane_fixture_sets_the_environment(rudder_dataplane: DevServer) -> None:
    """rudder_dataplane points RUDDER_* at itself, so Client() needs no arguments."""
    assert os.environ["RUDDER_DATA_PLANE_URL"] == rudder_dataplane.url
    with Client(**FAST) as configured:
        configured.track(user_id="env", event="E")
    assert rudder_dataplane.count(user_id="env") == 1


def test_plugin_is_loaded_in_a_users_test_suite(tmp_path: Path) -> None:
    """In a separate pytest run the fixtures exist without imports and clean up after."""
    (tmp_path / "test_user_code.py").write_text(textwrap.dedent('''
        import os
        import rudder_analytics
        from rudder_analytics import Client
        from rudder_analytics._build.capture import HOOKS as _capture_hooks

        def signup(user_id):
            rudder_analytics.track(user_id=user_id, event="Signed Up")

        def test_uses_capture(rudder_events):
            signup("u1")
            rudder_events.assert_tracked("Signed Up", user_id="u1")

        def test_hooks_are_gone_afterwards():
            assert _capture_hooks == []

        def test_dataplane(rudder_dataplane):
            with Client(upload_interval=0.05) as client:
                client.track(user_id="u2", event="Real")
            assert rudder_dataplane.count(user_id="u2") == 1

        def test_environment_restored():
            assert "RUDDER_DATA_PLANE_URL" not in os.environ
    '''), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUDDER_")}
    env.pop("PYTEST_ADDOPTS", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


# --- types -----------------------------------------------------------------------------


def test_typed_dicts_describe_built_messages(client: Client) -> None:
    """Every built message has its TypedDict's required keys and no unknown keys."""
    with capture() as events:
        _all_types(client)
        client.track(user_id="u1", event="E", timestamp=dt.datetime(2024, 1, 1))
    by_type = {cls.__name__.replace("Message", "").lower(): cls for cls in get_args(Message)}
    assert len(by_type) == 6
    for message in events:
        cls = by_type[message["type"]]
        assert cls.__required_keys__ <= set(message), cls.__name__
        assert set(message) <= cls.__required_keys__ | cls.__optional_keys__, cls.__name__


# --- fixtures cannot leak between tests (pytester) -----------------------------------------

pytest_plugins = ["pytester"]


def test_rudder_dataplane_resets_the_module_client_per_test(pytester: pytest.Pytester) -> None:
    """Each test's module-level calls reach that test's own server; none wait on the last."""
    pytester.makepyfile(test_two='''
        import rudder_analytics

        def test_first(rudder_dataplane):
            rudder_analytics.upload_interval = 0.05
            rudder_analytics.track(user_id="first", event="E")

        def test_second(rudder_dataplane):
            rudder_analytics.track(user_id="second", event="E")
            assert rudder_analytics.flush(timeout=5)
            assert rudder_dataplane.count(user_id="second") == 1
            assert rudder_dataplane.count(user_id="first") == 0

        def test_first_was_delivered_to_its_own_server(rudder_dataplane):
            assert rudder_analytics.default_client is None
    ''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_rudder_dataplane_delivers_what_the_test_tracked(pytester: pytest.Pytester) -> None:
    """Module-level events a test leaves queued reach its server before it stops."""
    pytester.makepyfile(test_deliver='''
        import rudder_analytics
        seen = []

        def test_track(rudder_dataplane):
            for i in range(50):
                rudder_analytics.track(user_id=f"u{i}", event="Left Queued")
            seen.append(rudder_analytics.default_client)

        def test_check():
            assert seen[0].closed and seen[0].stats()["delivered"] == 50
    ''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_rudder_events_captures_clients_built_from_the_environment(
        pytester: pytest.Pytester) -> None:
    """With no RUDDER_* variables, Client() works under rudder_events and is captured."""
    pytester.makepyfile(test_env='''
        import os
        from rudder_analytics import Client

        def test_env_client(rudder_events):
            client = Client()
            client.track(user_id="u1", event="From Env")
            rudder_events.assert_tracked("From Env", user_id="u1")

        def test_environment_restored():
            assert "RUDDER_WRITE_KEY" not in os.environ
    ''')
    env_free = {k: v for k, v in os.environ.items() if k.startswith("RUDDER_")}
    for key in env_free:
        os.environ.pop(key)
    try:
        result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    finally:
        os.environ.update(env_free)
    result.assert_outcomes(passed=2)


def test_failed_assertion_hides_the_helpers_frames(pytester: pytest.Pytester) -> None:
    """A failing assert_* shows the user's line and every filter, not the helper's code."""
    pytester.makepyfile(test_fail='''
        import rudder_analytics

        def test_wrong_plan(rudder_events):
            rudder_analytics.track(user_id="u1", event="Signed Up", properties={"plan": "pro"})
            rudder_events.assert_tracked("Signed Up", user_id="u1", properties={"plan": "free"})
    ''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "expected track 'Signed Up' (user_id='u1', properties={'plan': 'free'})" in output
    assert "track user_id='u1' 'Signed Up' properties={'plan': 'pro'}" in output
    assert "_expect" not in output and "given = {k: v" not in output
    assert 'rudder_events.assert_tracked("Signed Up"' in output
