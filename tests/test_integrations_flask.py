"""The Flask extension: Flask's test client for requests, a real gunicorn for process exit."""

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
from typing import Any

import pytest
import requests

from rudder_analytics import Client
from rudder_analytics.devserver import DevServer
from rudder_analytics.integrations.web import encode_anonymous_id

flask = pytest.importorskip("flask")

from rudder_analytics.integrations.flask import (  # noqa: E402
    RudderAnalytics,
    current,
    identify,
    track,
)

WRITE_KEY = "test-write-key"
FAST = {"upload_interval": 0.05, "atexit": False, "retry_base_delay": 0.01}


@pytest.fixture
def server() -> Iterator[DevServer]:
    """A local data plane."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


@pytest.fixture
def client(server: DevServer) -> Iterator[Client]:
    """A client delivering to the data plane."""
    built = Client(WRITE_KEY, server.url, **FAST)
    yield built
    built.shutdown(timeout=5)


def _app(**config: Any) -> Any:
    app = flask.Flask("test_app")
    app.config.update(config)

    @app.post("/signup")
    def signup() -> Any:
        flask.g.rudder_user_id = flask.request.get_json()["user_id"]
        identify({"plan": "pro"})
        track("Signed Up", {"plan": "pro"}, context={"page": {"title": "Sign up"}})
        return {"anonymous_id": current().anonymous_id}, 201

    @app.get("/page")
    def page() -> Any:
        track("Viewed")
        return {"anonymous_id": flask.g.rudder.anonymous_id}

    return app


def test_anonymous_id_user_id_and_context(client: Client, server: DevServer) -> None:
    """Per request: an id minted once and kept by the cookie, the user id, the context."""
    app = _app()
    RudderAnalytics(app, client=client)
    http = app.test_client()
    first = http.get("/page?ref=ad", headers={"User-Agent": "pytest-agent",
                                              "Referer": "https://ref.example/"})
    minted = first.get_json()["anonymous_id"]
    cookie = http.get_cookie("rl_anonymous_id")
    assert cookie is not None and cookie.value == encode_anonymous_id(minted)
    second = http.post("/signup", json={"user_id": 42})
    assert second.status_code == 201 and second.get_json()["anonymous_id"] == minted
    assert "Set-Cookie" not in second.headers  # the visitor already has it
    assert client.flush(timeout=10)

    viewed, = server.events(event="Viewed")
    assert viewed["anonymousId"] == minted and viewed.get("userId") is None, viewed
    assert viewed["context"]["userAgent"] == "pytest-agent"
    assert viewed["context"]["page"] == {"url": "http://localhost/page?ref=ad",
                                         "path": "/page", "search": "?ref=ad",
                                         "referrer": "https://ref.example/"}
    signed_up, = server.events(event="Signed Up")
    assert signed_up["userId"] == "42" and signed_up["anonymousId"] == minted
    assert signed_up["context"]["page"]["title"] == "Sign up"  # merged with the request's
    assert signed_up["context"]["page"]["path"] == "/signup"
    identified, = server.events(type="identify")
    assert identified["userId"] == "42" and identified["anonymousId"] == minted


def test_js_sdk_cookie_and_malformed_cookie(client: Client, server: DevServer) -> None:
    """The browser SDK's cookie is read as is; a malformed one is replaced, not an error."""
    app = _app()
    RudderAnalytics(app, client=client)
    http = app.test_client()
    http.set_cookie("rl_anonymous_id", encode_anonymous_id("browser-id"))
    assert http.get("/page").get_json()["anonymous_id"] == "browser-id"
    http.set_cookie("rl_anonymous_id", "RS_ENC_v3_bm90IGpzb24=")  # base64 of "not json"
    response = http.get("/page")
    assert response.status_code == 200
    replaced = response.get_json()["anonymous_id"]
    assert replaced != "browser-id"
    assert http.get_cookie("rl_anonymous_id").value == encode_anonymous_id(replaced)


def test_init_app_builds_client_from_config_and_tracks_requests(server: DevServer) -> None:
    """init_app builds the app's client from app.config; RUDDER_TRACK_REQUESTS tracks all."""
    app = _app(RUDDER_WRITE_KEY=WRITE_KEY, RUDDER_DATA_PLANE_URL=server.url,
               RUDDER_OPTIONS=FAST, RUDDER_TRACK_REQUESTS="API Request",
               RUDDER_SET_COOKIE=False)
    rudder = RudderAnalytics()
    rudder.init_app(app)
    http = app.test_client()
    assert http.get("/missing").status_code == 404
    assert http.get_cookie("rl_anonymous_id") is None  # RUDDER_SET_COOKIE=False
    with app.app_context():
        built = rudder.client
    assert built.shutdown(timeout=10)
    request_event, = server.events(event="API Request")
    assert request_event["properties"] == {"path": "/missing", "method": "GET", "status": 404}


def test_outside_a_request_is_a_clear_error(client: Client) -> None:
    """track() outside a request says what is missing instead of failing obscurely."""
    RudderAnalytics(_app(), client=client)
    with pytest.raises(RuntimeError, match="while handling a request"):
        track("Nowhere")


# --- a real process: events still queued at exit are delivered -------------------------

APP = textwrap.dedent('''
    import os
    from flask import Flask
    from rudder_analytics.integrations.flask import RudderAnalytics, track

    app = Flask(__name__)
    app.config.update(
        RUDDER_WRITE_KEY=os.environ["TEST_WRITE_KEY"],
        RUDDER_DATA_PLANE_URL=os.environ["TEST_DATA_PLANE_URL"],
        # nothing is sent before exit: only the shutdown at exit can deliver
        RUDDER_OPTIONS={"upload_interval": 3600, "upload_size": 1000},
    )
    RudderAnalytics(app)

    @app.get("/hit/<int:n>")
    def hit(n):
        track("Hit", {"n": n, "pid": os.getpid()})
        return str(os.getpid())
''')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn")
def test_gunicorn_worker_delivers_at_exit(tmp_path: Path, server: DevServer) -> None:
    """Under a real gunicorn, events still queued when SIGTERM stops it are delivered."""
    pytest.importorskip("gunicorn")
    (tmp_path / "flaskapp.py").write_text(APP)
    port = _free_port()
    env = {**os.environ, "TEST_WRITE_KEY": WRITE_KEY, "TEST_DATA_PLANE_URL": server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--chdir", str(tmp_path), "--graceful-timeout", "20", "flaskapp:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        session = requests.Session()
        for attempt in range(200):  # until gunicorn listens
            try:
                pids = {session.get(f"http://127.0.0.1:{port}/hit/{n}", timeout=5).text
                        for n in range(5)}
                break
            except requests.ConnectionError:
                if proc.poll() is not None or attempt == 199:
                    raise
                time.sleep(0.05)
        session.close()
        assert server.count(event="Hit") == 0  # still queued in the worker
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    events = server.events(event="Hit")
    assert sorted(e["properties"]["n"] for e in events) == [0, 1, 2, 3, 4]
    assert {str(e["properties"]["pid"]) for e in events} == pids
    assert str(proc.pid) not in pids  # sent by the worker, not the master
