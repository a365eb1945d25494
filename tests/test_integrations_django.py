"""The Django middleware, in a real Django project driven by Django's test client.

Django's settings are global to a process (and other tests configure them), so the
project runs in a subprocess: real ``django.contrib.auth`` with an in-memory database,
real sessions, the middleware from settings, and a client delivering to the test's
DevServer. The subprocess prints what the browser saw; the DevServer holds what was sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rudder_analytics.devserver import DevServer
from rudder_analytics.integrations.web import decode_anonymous_id, encode_anonymous_id
from tests.apps.django_project import django_setup

pytest.importorskip("django")

WRITE_KEY = "test-write-key"

SETUP = django_setup('":memory:"', 'os.environ.get("TEST_TRACK_REQUESTS") or None')
PROJECT = SETUP + textwrap.dedent('''
    import json, os, sys

    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.http import HttpResponse
    from django.test import Client
    from django.urls import path

    from rudder_analytics.integrations import django as rudder_django

    def checkout(request):
        rudder_django.track(request, "Checkout Started", {"cart": 3})
        return HttpResponse(request.rudder_anonymous_id)

    def boom(request):
        return HttpResponse("teapot", status=418)

    urlpatterns = [path("checkout", checkout), path("boom", boom)]

    call_command("migrate", verbosity=0, run_syncdb=True)
    user = User.objects.create_user("ada", password="x")
    seen = []

    def visit(http, url="/checkout", **extra):
        response = http.get(url, HTTP_USER_AGENT="pytest-agent",
                            HTTP_REFERER="https://ref.example/", **extra)
        cookie = response.cookies.get("rl_anonymous_id")
        seen.append({"status": response.status_code, "body": response.content.decode(),
                     "set_cookie": cookie.value if cookie is not None else None})

    fresh = Client()
    visit(fresh)                           # 0: no cookie: an id is minted and set
    visit(fresh)                           # 1: the cookie comes back: the same id
    js = Client()
    js.cookies["rl_anonymous_id"] = os.environ["TEST_JS_COOKIE"]
    visit(js)                              # 2: the browser SDK's cookie is read
    bad = Client()
    bad.cookies["rl_anonymous_id"] = "RS_ENC_v3_%%%not-base64"
    visit(bad)                             # 3: malformed: ignored, a new id minted
    signed_in = Client()
    signed_in.force_login(user)
    visit(signed_in, "/checkout?step=2")   # 4: the signed-in user's id
    visit(fresh, "/boom")                  # 5: another status
    rudder_django.get_client().shutdown(timeout=10)
    print(json.dumps({"seen": seen, "user_id": str(user.pk)}))
''')


def _run_project(tmp_path: Path, server: DevServer, **env: str) -> dict[str, Any]:
    script = tmp_path / "project.py"
    script.write_text(PROJECT)
    environ = {**os.environ, "TEST_WRITE_KEY": WRITE_KEY, "TEST_DATA_PLANE_URL": server.url,
               "TEST_JS_COOKIE": encode_anonymous_id("js-sdk-visitor"), **env}
    run = subprocess.run([sys.executable, str(script)], env=environ, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def server() -> Any:
    """A local data plane for the project's client."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


def test_anonymous_id_per_visitor_and_signed_in_user(tmp_path: Path, server: DevServer
                                                     ) -> None:
    """Ids: minted once and kept by the cookie, read from the JS SDK's cookie, the user's pk."""
    result = _run_project(tmp_path, server)
    seen, user_id = result["seen"], result["user_id"]
    assert [s["status"] for s in seen] == [200, 200, 200, 200, 200, 418]
    minted = seen[0]["body"]
    assert seen[0]["set_cookie"] == encode_anonymous_id(minted)  # the JS SDK's v3 form
    assert seen[1]["body"] == minted and seen[1]["set_cookie"] is None
    assert seen[2]["body"] == "js-sdk-visitor" and seen[2]["set_cookie"] is None
    replaced = seen[3]["body"]
    assert replaced not in (minted, "js-sdk-visitor") and seen[3]["set_cookie"]

    events = server.events(event="Checkout Started")
    assert [e["anonymousId"] for e in events] == [
        minted, minted, "js-sdk-visitor", replaced, seen[4]["body"]]
    assert [e.get("userId") for e in events] == [None, None, None, None, user_id]
    first, signed_in = events[0], events[4]
    assert first["properties"] == {"cart": 3}
    assert first["context"]["userAgent"] == "pytest-agent"
    assert first["context"]["ip"] == "127.0.0.1"
    assert first["context"]["page"] == {"url": "http://testserver/checkout",
                                        "path": "/checkout",
                                        "referrer": "https://ref.example/"}
    assert signed_in["context"]["page"]["search"] == "?step=2"
    assert server.count(event="API Request") == 0  # not asked for


def test_track_requests_setting(tmp_path: Path, server: DevServer) -> None:
    """RUDDER_TRACK_REQUESTS tracks every request with its path, method and status."""
    result = _run_project(tmp_path, server, TEST_TRACK_REQUESTS="API Request")
    requests = server.events(event="API Request")
    assert len(requests) == len(result["seen"]) == 6
    assert requests[-1]["properties"] == {"path": "/boom", "method": "GET", "status": 418}
    assert requests[-1]["anonymousId"] == result["seen"][0]["body"]
    assert requests[4]["userId"] == result["user_id"]


# --- the cookie itself (shared by every web integration) -------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    # as a v3 JavaScript SDK writes it (URI-encoded), and not encoded
    ("RS_ENC_v3_IjBkZDViZjAzLWI5ZGQtNDQyZC1iYWI5LTNmNGY1OWEwMjE3MyI%3D",
     "0dd5bf03-b9dd-442d-bab9-3f4f59a02173"),
    ("RS_ENC_v3_InRlc3QtZGF0YSI=", "test-data"),
    ("RS_ENC_v3_InRlc3QtZGF0YSI", "test-data"),  # padding dropped by a proxy
    ('"plain-json"', "plain-json"),
    ("6f1c2a4e-0000-4000-8000-000000000000", "6f1c2a4e-0000-4000-8000-000000000000"),
    ("0123", "0123"),  # a bare numeric id keeps its digits
    # ignored: the legacy AES form, not JSON, not a string, blank, bad base64, too long
    ("RudderEncrypt%3AU2FsdGVkX1%2B8Du%2BN6F2Wmb80K1xXtkKg7J3QR0yErqY%3D", None),
    ("RS_ENC_v3_dGVzdC1kYXRh", None),
    ("RS_ENC_v3_eyJpZCI6MX0=", None),
    ('"\u200b"', None),
    ("RS_ENC_v3_!!!", None),
    ("%ff%fe", None),
    ("has space", None),
    ("", None),
    (None, None),
    ('"' + "x" * 300 + '"', None),
])
def test_decode_anonymous_id(raw: Any, expected: Any) -> None:
    """The JS SDK's v3 cookie decodes to its id; anything malformed is None."""
    assert decode_anonymous_id(raw) == expected


@given(st.text(max_size=200))
def test_decode_never_raises(raw: str) -> None:
    """Any cookie value decodes to None or a printable, non-blank id: never an exception."""
    decoded = decode_anonymous_id(raw)
    assert decoded is None or (decoded.strip() and decoded.isprintable())


@given(st.text(min_size=1, max_size=100).filter(lambda s: s.isprintable() and s.strip()))
def test_encode_round_trips(anonymous_id: str) -> None:
    """What the middleware sets is read back as the same id."""
    assert decode_anonymous_id(encode_anonymous_id(anonymous_id)) == anonymous_id


def test_importing_the_sdk_imports_no_framework() -> None:
    """``import rudder_analytics`` (and the shared web module) imports no framework."""
    code = ("import sys, rudder_analytics, rudder_analytics.integrations, "
            "rudder_analytics.integrations.web\n"
            "heavy = ('django', 'flask', 'celery', 'starlette', 'fastapi', "
            "'prometheus_client', 'opentelemetry')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.strip() == "[]"
