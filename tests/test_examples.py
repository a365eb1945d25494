"""Every example in examples/ runs against a local data plane and delivers its events.

Scripts run as subprocesses; the web and task examples are imported and called
(each skipped when its framework is not installed: CI stays light).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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
    """The Flask example tracks through the extension: user id, anonymous id, context."""
    pytest.importorskip("flask")
    app = _load("flask_app").create_app(client)
    http = app.test_client()
    signup = http.post("/signup", json={"user_id": "u1", "email": "a@b.c", "plan": "pro"})
    assert signup.status_code == 201
    order = http.post("/orders", json={"user_id": "u1", "order_id": "o1", "revenue": 9.95})
    assert order.status_code == 201
    assert client.flush(timeout=10)
    [identified] = rudder_dataplane.events(type="identify")
    assert identified["traits"] == {"email": "a@b.c"} and identified["userId"] == "u1"
    [signed_up] = rudder_dataplane.events(event="Signed Up")
    assert signed_up["properties"] == {"plan": "pro"} and signed_up["context"]["ip"]
    assert signed_up["anonymousId"] == identified["anonymousId"]  # one visitor, one id
    [completed] = rudder_dataplane.events(event="Order Completed")
    assert completed["properties"]["revenue"] == 9.95 and completed["userId"] == "u1"
    assert completed["anonymousId"] == identified["anonymousId"]  # kept by the cookie
    assert completed["context"]["page"]["path"] == "/orders"


def test_django_middleware(client: Client, rudder_dataplane: DevServer) -> None:
    """The Django example's view tracks through the integration's middleware."""
    pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["*"],
                           DEFAULT_CHARSET="utf-8")
    from django.test import RequestFactory

    from rudder_analytics.integrations.django import RudderAnalyticsMiddleware
    from rudder_analytics.integrations.web import encode_anonymous_id

    module = _load("django_middleware")
    middleware = RudderAnalyticsMiddleware(module.pricing, client=client)
    factory = RequestFactory()
    request = factory.get("/pricing", {"plan": "team"}, HTTP_USER_AGENT="pytest")
    request.COOKIES["rl_anonymous_id"] = encode_anonymous_id("anon-cookie")
    response = middleware(request)
    assert response.status_code == 200 and "rl_anonymous_id" not in response.cookies
    fresh = middleware(factory.get("/pricing"))
    assert "rl_anonymous_id" in fresh.cookies  # a new visitor gets an id, kept in the cookie
    assert client.flush(timeout=10)
    first, second = rudder_dataplane.events(event="Pricing Viewed")
    assert first["anonymousId"] == "anon-cookie"
    assert first["properties"] == {"plan": "team"}
    assert first["context"]["userAgent"] == "pytest"
    assert first["context"]["page"]["path"] == "/pricing"
    assert second["anonymousId"] == json.loads(fresh.content)["anonymous_id"]


def test_celery_task(module_client: None, rudder_dataplane: DevServer) -> None:
    """The Celery task tracks through the module API; install()'s shutdown handler delivers."""
    pytest.importorskip("celery")
    from celery.signals import worker_process_shutdown

    from rudder_analytics.integrations import celery as rudder_celery

    module = _load("celery_task")
    module.app.conf.task_always_eager = True
    try:
        assert module.send_welcome_email.delay("u1", "ada@example.com").get(timeout=10) is True
        assert rudder_dataplane.count(event="Welcome Email Sent") == 0  # still queued
        # what a prefork pool process sends just before it exits
        worker_process_shutdown.send(sender="example", pid=0, exitcode=0)
    finally:
        rudder_celery.uninstall()
    [event] = rudder_dataplane.events(event="Welcome Email Sent")
    assert event["userId"] == "u1" and event["properties"] == {"email_domain": "example.com"}


def test_metrics_exporter(rudder_dataplane: DevServer) -> None:
    """metrics_exporter.py prints the Prometheus scrape and the OpenTelemetry reading."""
    pytest.importorskip("prometheus_client")
    pytest.importorskip("opentelemetry.sdk")
    run = _run("metrics_exporter", rudder_dataplane.url)
    assert run.returncode == 0, run.stderr
    assert "rudder_analytics_events_delivered_total 5.0" in run.stdout
    assert "otel rudder_analytics.events.delivered = 5" in run.stdout
    assert rudder_dataplane.count(event="Report Generated") == 5


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
