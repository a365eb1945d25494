"""Every example in examples/ runs against a local data plane and delivers its events.

Scripts run as subprocesses; the web and task examples are imported and called
(each skipped when its framework is not installed: CI stays light).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import rudder_analytics
from rudder_analytics import Client
from rudder_analytics.devserver import DevServer

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WRITE_KEY = "test-write-key"  # what the rudder_dataplane fixture accepts
FAST = {"upload_interval": 0.05, "atexit": False, "retry_base_delay": 0.01}


def _load(name: str) -> ModuleType:
    """Import examples/<name>.py by path (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"rudder_example_{name}",
                                                  EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name: str, url: str, write_key: str = WRITE_KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUDDER_WRITE_KEY": write_key, "RUDDER_DATA_PLANE_URL": url}
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def client(rudder_dataplane: DevServer) -> Iterator[Client]:
    """A background client pointed at the test's data plane."""
    built = Client(WRITE_KEY, rudder_dataplane.url, **FAST)
    yield built
    built.shutdown(timeout=5)


@pytest.fixture
def module_client(rudder_dataplane: DevServer, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[None]:
    """The module-level default client, fresh, configured from the environment."""
    rudder_analytics.shutdown()
    for name in ("write_key", "data_plane_url", "dataPlaneUrl", "host"):
        monkeypatch.setattr(rudder_analytics, name, None)
    monkeypatch.setattr(rudder_analytics, "upload_interval", 0.05)
    yield
    rudder_analytics.shutdown()


# --- scripts (no framework needed) -----------------------------------------------------


def test_flush_script(rudder_dataplane: DevServer) -> None:
    """flush_script.py delivers its events before exiting and exits 0."""
    run = _run("flush_script", rudder_dataplane.url)
    assert run.returncode == 0, run.stderr
    assert "delivered 4 events, dropped 0" in run.stdout
    assert rudder_dataplane.count(type="track", event="Report Generated") == 3
    assert rudder_dataplane.count(type="identify", user_id="u-1001") == 1


def test_flush_script_exit_status_reports_loss(rudder_dataplane: DevServer) -> None:
    """With a write key the data plane refuses, the script's flush fails and it exits 1."""
    run = _run("flush_script", rudder_dataplane.url, write_key="not-a-source")
    assert run.returncode == 1, run.stdout + run.stderr
    assert rudder_dataplane.count() == 0


def test_typed_usage(rudder_dataplane: DevServer) -> None:
    """typed_usage.py runs: the captured check sends nothing, the rest is delivered."""
    run = _run("typed_usage", rudder_dataplane.url)
    assert run.returncode == 0, run.stderr
    assert "track Signed Up" in run.stdout and "dropped=0" in run.stdout
    assert rudder_dataplane.count(user_id="u-test") == 0
    assert rudder_dataplane.count(user_id="u-42", type="identify") == 1
    events = {e["event"] for e in rudder_dataplane.events(type="track", user_id="u-42")}
    assert events == {"Signed Up", "Order Completed", "Order Shipped"}
    shipped = rudder_dataplane.events(event="Order Shipped")[0]
    assert shipped["context"]["ip"] == "10.0.0.1"


# --- web and task frameworks (skipped when not installed) ------------------------------


def test_flask_app(client: Client, rudder_dataplane: DevServer) -> None:
    """The Flask example tracks a sign-up and an order from its request handlers."""
    pytest.importorskip("flask")
    app = _load("flask_app").create_app(client)
    http = app.test_client()
    signup = http.post("/signup", json={"user_id": "u1", "email": "a@b.c", "plan": "pro"})
    assert signup.status_code == 201
    order = http.post("/orders", json={"user_id": "u1", "order_id": "o1", "revenue": 9.95})
    assert order.status_code == 201
    assert client.flush(timeout=10)
    assert rudder_dataplane.events(type="identify")[0]["traits"] == {"email": "a@b.c"}
    [signed_up] = rudder_dataplane.events(event="Signed Up")
    assert signed_up["properties"] == {"plan": "pro"} and signed_up["context"]["ip"]
    assert rudder_dataplane.events(event="Order Completed")[0]["properties"]["revenue"] == 9.95


def test_django_middleware(client: Client, rudder_dataplane: DevServer) -> None:
    """The Django middleware tracks each request with its path, method and status."""
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"],
                           DEFAULT_CHARSET="utf-8")
    from django.http import HttpResponse
    from django.test import RequestFactory

    module = _load("django_middleware")

    def view(request: Any) -> HttpResponse:
        return HttpResponse("ok", status=200 if request.path != "/missing" else 404)

    middleware = module.RudderAnalyticsMiddleware(view, client=client)
    factory = RequestFactory()
    request = factory.get("/pricing", HTTP_USER_AGENT="pytest")
    request.COOKIES[module.ANONYMOUS_COOKIE] = "anon-cookie"
    assert middleware(request).status_code == 200
    assert middleware(factory.post("/missing")).status_code == 404
    assert client.flush(timeout=10)
    first, second = rudder_dataplane.events(event="API Request")
    assert first["anonymousId"] == "anon-cookie"
    assert first["properties"] == {"path": "/pricing", "method": "GET", "status": 200}
    assert first["context"]["userAgent"] == "pytest"
    assert second["properties"] == {"path": "/missing", "method": "POST", "status": 404}


def test_celery_task(module_client: None, rudder_dataplane: DevServer) -> None:
    """The Celery task tracks through the module API; the shutdown signal delivers it."""
    pytest.importorskip("celery")
    module = _load("celery_task")
    module.app.conf.task_always_eager = True
    assert module.send_welcome_email.delay("u1", "ada@example.com").get(timeout=10) is True
    module.deliver_analytics()  # what worker_process_shutdown runs
    [event] = rudder_dataplane.events(event="Welcome Email Sent")
    assert event["userId"] == "u1" and event["properties"] == {"email_domain": "example.com"}


def test_fastapi_app(client: Client, rudder_dataplane: DevServer) -> None:
    """The FastAPI example tracks from an async handler and delivers at lifespan shutdown."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    app = _load("fastapi_app").create_app(client)
    with TestClient(app) as http:
        response = http.post("/orders", json={"user_id": 7, "order_id": "o9", "revenue": 5})
        assert response.status_code == 201 and response.json() == {"order_id": "o9"}
    assert client.closed  # the lifespan handler shut it down, delivering on the way
    [event] = rudder_dataplane.events(event="Order Completed")
    assert event["userId"] == "7" and event["properties"] == {"order_id": "o9", "revenue": 5}
