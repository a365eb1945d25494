"""The module-level API: settings, environment variables, the default client, exit and fork."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

import rudder_analytics
from rudder_analytics import ConfigurationError
from rudder_analytics.devserver import DevServer

from .conftest import WRITE_KEY


@pytest.fixture(autouse=True)
def clean_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no default client and no module settings."""
    monkeypatch.delenv("RUDDER_WRITE_KEY", raising=False)
    monkeypatch.delenv("RUDDER_DATA_PLANE_URL", raising=False)
    rudder_analytics.default_client = None
    yield
    rudder_analytics.shutdown(timeout=5)
    for name in ("write_key", "data_plane_url", "dataPlaneUrl", "host"):
        setattr(rudder_analytics, name, None)
    rudder_analytics.upload_interval = None
    rudder_analytics.shutdown_timeout = None
    rudder_analytics.sync_mode = False
    rudder_analytics.default_client = None


def test_import_has_no_side_effects() -> None:
    """Importing starts no thread and configures no logging."""
    code = textwrap.dedent("""
        import logging, threading
        before = threading.active_count()
        root_handlers = list(logging.getLogger().handlers)
        import rudder_analytics
        assert threading.active_count() == before, threading.enumerate()
        assert logging.getLogger().handlers == root_handlers
        assert rudder_analytics.stats() is None
        print("clean")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "clean", out.stderr


def test_calls_before_configuration_raise() -> None:
    """Without a write key or URL, a call raises a clear ConfigurationError."""
    with pytest.raises(ConfigurationError, match="write key"):
        rudder_analytics.track(user_id="u", event="E")
    rudder_analytics.write_key = WRITE_KEY
    with pytest.raises(ConfigurationError, match="data plane URL"):
        rudder_analytics.track(user_id="u", event="E")


def test_module_settings(dataplane: DevServer) -> None:
    """Module settings configure the default client; every call type works."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    rudder_analytics.upload_interval = 0.05
    assert rudder_analytics.track(user_id="u", event="E")[0]
    assert rudder_analytics.identify(user_id="u", traits={"a": 1})[0]
    assert rudder_analytics.page(user_id="u", name="P")[0]
    assert rudder_analytics.screen(user_id="u", name="S")[0]
    assert rudder_analytics.group(user_id="u", group_id="g")[0]
    assert rudder_analytics.alias(previous_id="p", user_id="u")[0]
    assert rudder_analytics.flush(timeout=10)
    assert sorted(e["type"] for e in dataplane.events()) == [
        "alias", "group", "identify", "page", "screen", "track"]
    stats = rudder_analytics.stats()
    assert stats is not None and stats["delivered"] == 6
    assert rudder_analytics.join(timeout=10)


def test_aliases_for_url(dataplane: DevServer) -> None:
    """dataPlaneUrl and host work as module settings, for rudder-sdk-python and Segment users."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.dataPlaneUrl = dataplane.url
    rudder_analytics.track(user_id="u", event="E")
    assert rudder_analytics.flush(timeout=10)
    rudder_analytics.dataPlaneUrl = None
    rudder_analytics.host = dataplane.url
    rudder_analytics.track(user_id="u", event="E2")
    assert rudder_analytics.flush(timeout=10)
    assert dataplane.count() == 2


def test_environment_variables(dataplane: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """RUDDER_WRITE_KEY and RUDDER_DATA_PLANE_URL are read when nothing is set in code."""
    monkeypatch.setenv("RUDDER_WRITE_KEY", WRITE_KEY)
    monkeypatch.setenv("RUDDER_DATA_PLANE_URL", dataplane.url)
    rudder_analytics.track(user_id="u", event="E")
    assert rudder_analytics.flush(timeout=10)
    assert dataplane.count() == 1


def test_changing_a_setting_builds_a_new_client(dataplane: DevServer) -> None:
    """Assigning a setting after the first call takes effect on the next call."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    rudder_analytics.track(user_id="u", event="E")
    first = rudder_analytics.default_client
    rudder_analytics.sync_mode = True
    assert rudder_analytics.default_client is None  # the next call builds the new one
    second = rudder_analytics.get_default_client()
    assert second is not first and second.config.sync_mode
    assert rudder_analytics.track(user_id="u", event="sync")[0]
    assert first.flush(timeout=10) or first.closed
    assert dataplane.wait_for_events(2, timeout=10)


def run_script(code: str, dataplane: DevServer,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUDDER_WRITE_KEY": WRITE_KEY, "RUDDER_DATA_PLANE_URL": dataplane.url}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_delivery_at_exit_without_flush(dataplane: DevServer) -> None:
    """A script that never flushes still delivers everything at normal exit."""
    out = run_script("""
        import rudder_analytics
        rudder_analytics.upload_interval = 30
        for i in range(500):
            rudder_analytics.track(user_id="u", event="E", message_id=str(i))
    """, dataplane)
    assert out.returncode == 0, out.stderr
    assert dataplane.count() == 500


def test_exit_with_data_plane_down_is_bounded() -> None:
    """With the data plane down, exit takes about shutdown_timeout and reports the loss."""
    code = textwrap.dedent("""
        import time, rudder_analytics
        c = rudder_analytics.Client("k", "http://127.0.0.1:9", shutdown_timeout=1.0,
                                    retry_base_delay=0.05)
        for i in range(100):
            c.track(user_id="u", event="E")
        print(time.monotonic(), flush=True)
    """)
    import time

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    finished = time.monotonic()
    assert out.returncode == 0, out.stderr
    started = float(out.stdout.strip())
    assert finished - started < 1.0 + 1.5
    assert "100 event(s) not delivered" in out.stderr


def test_fork_child_sends_its_own_events_once(dataplane: DevServer) -> None:
    """After fork, the child sends only its own events; the parent sends its queue once."""
    out = run_script("""
        import os, rudder_analytics
        rudder_analytics.upload_interval = 30
        for i in range(50):
            rudder_analytics.track(user_id="parent", event="E", message_id=f"p{i}")
        pid = os.fork()
        if pid == 0:
            rudder_analytics.track(user_id="child", event="E", message_id="c0")
            ok = rudder_analytics.flush(timeout=20)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert rudder_analytics.flush(timeout=20)
    """, dataplane)
    assert out.returncode == 0, out.stderr
    ids = [e["messageId"] for e in dataplane.events()]
    assert sorted(ids) == sorted([f"p{i}" for i in range(50)] + ["c0"])


def test_every_option_is_a_module_setting() -> None:
    """Each Client option can be set as a module attribute."""
    import dataclasses

    from rudder_analytics.config import Config

    options = {f.name for f in dataclasses.fields(Config)}
    assert all(hasattr(rudder_analytics, name) for name in options)
    assert options <= set(dir(rudder_analytics))
    missing = options - set(rudder_analytics.__annotations__)
    assert not missing, f"annotate these settings in rudder_analytics/__init__.py: {missing}"


def test_ids_reseeded_when_fork_hooks_did_not_run() -> None:
    """A child forked below Python (uWSGI without fork hooks) still gets its own ids."""
    code = textwrap.dedent("""
        import os
        from rudder_analytics import Client
        from rudder_analytics._build import messages
        client = Client("k", "http://127.0.0.1:1", send=False, atexit=False)
        parent_id = client.track(user_id="u", event="E")[1]["messageId"]
        state = (messages._id_prefix, messages._id_counter, messages._id_pid)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            # as if the fork had happened in C: Python's after-fork hooks never ran
            messages._id_prefix, messages._id_counter, messages._id_pid = state
            child_id = client.track(user_id="u", event="E")[1]["messageId"]
            os.write(w, child_id.encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child_id = os.read(r, 100).decode()
        next_parent_id = client.track(user_id="u", event="E")[1]["messageId"]
        print(parent_id[:24] != child_id[:24], child_id != next_parent_id)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["True", "True"], out.stderr


# --- lifecycle promises (issue #11) ------------------------------------------------------


def test_changing_a_setting_after_tracking_loses_nothing_at_exit(dataplane: DevServer) -> None:
    """5,000 tracked, then a setting changes, then the script exits: all 5,000 arrive."""
    out = run_script("""
        import rudder_analytics
        for i in range(5000):
            rudder_analytics.track(user_id="u", event="E", message_id=f"m{i}")
        rudder_analytics.shutdown_timeout = 10
    """, dataplane)
    assert out.returncode == 0, out.stderr
    assert dataplane.count() == 5000
    assert len({e["messageId"] for e in dataplane.events()}) == 5000


def test_settings_change_while_threads_track(dataplane: DevServer) -> None:
    """Threads keep calling track() while settings change: every call is accepted, once."""
    import threading

    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    rudder_analytics.upload_interval = 0.05
    per_thread, threads = 1500, 4
    started = threading.Barrier(threads + 1)
    refused: list[str] = []

    def worker(n: int) -> None:
        started.wait()
        for i in range(per_thread):
            ok, message = rudder_analytics.track(user_id=f"t{n}", event="E",
                                                 message_id=f"t{n}-{i}")
            if not ok:
                refused.append(message["messageId"])

    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    started.wait()
    for value in (0.06, 0.07, 0.08, 0.05):  # each change retires the client in use
        rudder_analytics.upload_interval = value
        rudder_analytics.track(user_id="main", event="Change")
    for thread in pool:
        thread.join()
    assert rudder_analytics.flush(timeout=10)
    assert not refused
    total = per_thread * threads + 4
    assert dataplane.wait_for_events(total, timeout=20), dataplane.count()
    assert dataplane.count() == total


def test_calls_after_shutdown_are_refused_until_reopened(dataplane: DevServer) -> None:
    """After shutdown() calls return False and count after_shutdown; a setting change or
    default_client = None builds a fresh client."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    assert rudder_analytics.shutdown()  # before any call: nothing to deliver
    ok, message = rudder_analytics.track(user_id="u", event="Refused")
    assert not ok and message["event"] == "Refused"
    stats = rudder_analytics.stats()
    assert stats is not None and stats["dropped"]["after_shutdown"] == 1
    rudder_analytics.upload_interval = 0.05  # a setting change re-opens
    assert rudder_analytics.track(user_id="u", event="Accepted")[0]
    assert rudder_analytics.shutdown(timeout=10)
    assert not rudder_analytics.identify(user_id="u")[0]
    rudder_analytics.default_client = None  # and so does resetting the client
    assert rudder_analytics.identify(user_id="u")[0]
    assert rudder_analytics.flush(timeout=10)
    assert dataplane.count(event="Refused") == 0 and dataplane.count(event="Accepted") == 1
    assert dataplane.count(type="identify") == 1


def test_flush_builds_the_default_client(dataplane: DevServer) -> None:
    """As in the peers, module-level flush() builds the client from the settings."""
    rudder_analytics.write_key = WRITE_KEY
    rudder_analytics.data_plane_url = dataplane.url
    assert rudder_analytics.default_client is None
    assert rudder_analytics.flush()
    client = rudder_analytics.default_client
    assert client is not None and client.write_key == WRITE_KEY


def test_unknown_settings_are_refused_and_modules_still_import() -> None:
    """A typo'd setting raises ConfigurationError naming the right one; module machinery
    (submodule imports, private names) still works; dir() lists only the public API."""
    with pytest.raises(ConfigurationError, match="upload_interval"):
        rudder_analytics.upload_intervall = 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="upload_size"):
        rudder_analytics.flush_at = 20  # type: ignore[attr-defined]
    import importlib

    original = sys.modules.pop("rudder_analytics.pytest_plugin", None)
    try:
        fresh = importlib.import_module("rudder_analytics.pytest_plugin")  # sets the attribute
        assert rudder_analytics.pytest_plugin is fresh
    finally:
        if original is not None:
            sys.modules["rudder_analytics.pytest_plugin"] = original
            rudder_analytics.pytest_plugin = original
    names = dir(rudder_analytics)
    assert {"track", "Client", "default_client", "upload_interval", "handle_sigterm"} <= set(
        names)
    assert not {"Any", "sys", "logging", "threading", "Optional"} & set(names)


def test_module_functions_have_the_clients_signatures() -> None:
    """track() and friends take the same parameters, in the same order, as Client's."""
    import inspect

    for name in ("track", "identify", "page", "screen", "group", "alias"):
        ours = list(inspect.signature(getattr(rudder_analytics, name)).parameters)
        clients = list(inspect.signature(getattr(rudder_analytics.Client, name)).parameters)
        assert ours == clients[1:], name
        assert getattr(rudder_analytics, name).__doc__
