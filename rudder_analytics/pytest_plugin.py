"""pytest fixtures for testing code that uses rudder_analytics (loaded automatically).

Installing the package registers this plugin through the ``pytest11`` entry point,
so the fixtures are available in any test suite without imports:

``rudder_events``
    Captures every message built during the test (module-level calls, any
    ``Client``, batches) and sends nothing; see :mod:`rudder_analytics.testing`.
    When the environment names no write key or data plane, stand-in values are set
    for the test, so ``Client()`` built from the environment works (and is captured)::

        def test_signup(rudder_events):
            signup("u1")
            rudder_events.assert_tracked("Signed Up", user_id="u1")

``rudder_dataplane``
    A local data plane (:class:`~rudder_analytics.devserver.DevServer`) on a
    free loopback port for the test, with ``RUDDER_WRITE_KEY`` and
    ``RUDDER_DATA_PLANE_URL`` pointing at it while the test runs, for
    integration tests over real HTTP. The module's default client is reset before
    the test (so module-level calls go to this server) and, after it, shut down
    while the server still runs (so what the test tracked is delivered, and the
    next test starts fresh)::

        def test_delivery(rudder_dataplane):
            client = Client()  # configured from the environment
            client.track(user_id="u1", event="Signed Up")
            assert client.flush(timeout=10)
            assert rudder_dataplane.events(type="track", user_id="u1")

Do not use both in one test: while ``rudder_events`` captures, nothing is sent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from ._module import facade
from .config import ENV_DATA_PLANE_URL, ENV_WRITE_KEY
from .testing import STAND_IN_DATA_PLANE_URL, STAND_IN_WRITE_KEY, CapturedEvents, capture

if TYPE_CHECKING:
    from .devserver import DevServer

__all__ = ["rudder_dataplane", "rudder_events"]


@pytest.fixture
def rudder_events(monkeypatch: pytest.MonkeyPatch) -> Iterator[CapturedEvents]:
    """Messages built during this test; nothing is queued or sent."""
    if not os.environ.get(ENV_WRITE_KEY):
        monkeypatch.setenv(ENV_WRITE_KEY, STAND_IN_WRITE_KEY)
    if not os.environ.get(ENV_DATA_PLANE_URL):
        monkeypatch.setenv(ENV_DATA_PLANE_URL, STAND_IN_DATA_PLANE_URL)
    with capture() as events:
        yield events


@pytest.fixture
def rudder_dataplane(monkeypatch: pytest.MonkeyPatch) -> Iterator[DevServer]:
    """A local data plane for this test; the SDK's environment variables point at it."""
    from .devserver import DEFAULT_WRITE_KEY, DevServer

    server = DevServer(write_keys=(DEFAULT_WRITE_KEY,))
    facade.set_default(None)  # module-level calls build a client for this server
    try:
        with server:
            monkeypatch.setenv(ENV_WRITE_KEY, DEFAULT_WRITE_KEY)
            monkeypatch.setenv(ENV_DATA_PLANE_URL, server.url)
            try:
                yield server
            finally:
                _close_default_client()
    finally:
        server.close()


def _close_default_client() -> None:
    """Deliver what the test's default client queued (server still up), then forget it."""
    client = facade.current_client()
    if client is not None:
        client.shutdown()
        facade.remove_default(client)
