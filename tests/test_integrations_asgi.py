"""The ASGI integration under a real uvicorn: events still queued when SIGTERM stops the
server are delivered by the application's shutdown (lifespan helper or middleware)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from rudder_analytics.devserver import DevServer

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

WRITE_KEY = "test-write-key"

APPS = {
    "lifespan": """
        app = FastAPI(lifespan=lifespan(client))
    """,
    "wrapped": """
        @contextlib.asynccontextmanager
        async def own(app):
            yield {"started": True}
            client.track(user_id="u", event="Stopping")  # tracked in the app's own shutdown

        app = FastAPI(lifespan=lifespan(client, wrap=own))
    """,
    "middleware": """
        app = FastAPI()
        app.add_middleware(RudderMiddleware, client=client)
    """,
}

HEAD = """
import contextlib, os
from fastapi import FastAPI
from rudder_analytics import Client
from rudder_analytics.integrations.asgi import RudderMiddleware, lifespan

client = Client(os.environ["TEST_WRITE_KEY"], os.environ["TEST_DATA_PLANE_URL"],
                upload_interval=3600, upload_size=1000, atexit=False)
"""

ROUTE = """
@app.get("/hit/{n}")
def hit(n: int):
    client.track(user_id="u", event="Hit", properties={"n": n})
    return {"n": n}
"""


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM")
@pytest.mark.parametrize("style", sorted(APPS))
def test_uvicorn_shutdown_delivers_queued_events(tmp_path: Path, server: DevServer,
                                                 style: str) -> None:
    """Queued events (batching for an hour, no exit hook) are stored when uvicorn stops."""
    code = HEAD + textwrap.dedent(APPS[style]) + ROUTE
    (tmp_path / "asgiapp.py").write_text(code)
    port = _free_port()
    env = {**os.environ, "TEST_WRITE_KEY": WRITE_KEY, "TEST_DATA_PLANE_URL": server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
         "--app-dir", str(tmp_path), "--lifespan", "on", "asgiapp:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        session = requests.Session()
        for attempt in range(300):  # until uvicorn listens
            try:
                for n in range(5):
                    session.get(f"http://127.0.0.1:{port}/hit/{n}", timeout=5).raise_for_status()
                break
            except requests.ConnectionError:
                if proc.poll() is not None or attempt == 299:
                    raise
                time.sleep(0.05)
        session.close()
        assert server.count(event="Hit") == 0  # still queued in the app
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in output, output
    assert sorted(e["properties"]["n"] for e in server.events(event="Hit")) == [0, 1, 2, 3, 4]
    if style == "wrapped":
        assert server.count(event="Stopping") == 1
