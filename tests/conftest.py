"""Shared fixtures: a local data plane per test and clients tuned for quick tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer

WRITE_KEY = "test-write-key"

FAST = {
    "upload_interval": 0.05,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "timeout": 2.0,
    "shutdown_timeout": 5.0,
    "atexit": False,
}
"""Client options that keep tests quick: short waits, short backoff."""


@pytest.fixture
def dataplane() -> Iterator[DevServer]:
    """A local data plane on a free loopback port, for one test."""
    with DevServer(write_keys=(WRITE_KEY,), disabled_write_keys=("disabled-key",)) as server:
        yield server


@pytest.fixture
def make_client(dataplane: DevServer) -> Iterator[Callable[..., Client]]:
    """Build clients against the test's data plane; all are shut down afterwards."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        merged = {**FAST, **options}
        write_key = merged.pop("write_key", WRITE_KEY)
        url = merged.pop("data_plane_url", dataplane.url)
        client = Client(write_key, url, **merged)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.shutdown(timeout=2.0)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A URL whose port accepts TCP connections (kernel backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
