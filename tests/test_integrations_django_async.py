"""The Django middleware in async mode: a real Django project, async views, driven by
Django's AsyncClient through the ASGI handler (so the middleware chain is async).

As in test_integrations_django.py, the project runs in a subprocess (Django's settings
are global to a process); it prints what it saw, the DevServer holds what was sent.
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

from rudder_analytics.devserver import DevServer
from tests.apps.django_project import django_setup

pytest.importorskip("django")

WRITE_KEY = "test-write-key"

PROJECT = django_setup('os.environ["TEST_DB"]', '"API Request"') + textwrap.dedent('''
    import asyncio, json, os, threading

    from asgiref.sync import sync_to_async
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.http import HttpResponse
    from django.test import AsyncClient
    from django.urls import path

    from rudder_analytics.integrations import django as rudder_django

    calls = []
    original = rudder_django.RudderAnalyticsMiddleware.__acall__

    async def spy(self, request):
        calls.append(threading.current_thread() is threading.main_thread())
        return await original(self, request)

    rudder_django.RudderAnalyticsMiddleware.__acall__ = spy

    async def checkout(request):
        rudder_django.track(request, "Sync Helper")  # before any await: no user id, no error
        await rudder_django.atrack(request, "Checkout Started", {"cart": 3})
        return HttpResponse(request.rudder_anonymous_id)

    urlpatterns = [path("checkout", checkout)]

    call_command("migrate", verbosity=0, run_syncdb=True)
    user = User.objects.create_user("ada", password="x")

    async def main():
        seen = []
        anonymous = AsyncClient()
        response = await anonymous.get("/checkout")
        seen.append({"body": response.content.decode(),
                     "cookie": response.cookies["rl_anonymous_id"].value})
        signed_in = AsyncClient()
        await signed_in.aforce_login(user)
        response = await signed_in.get("/checkout")
        seen.append({"body": response.content.decode()})
        return seen

    seen = asyncio.run(main())
    rudder_django.get_client().shutdown(timeout=10)
    print(json.dumps({"seen": seen, "user_id": str(user.pk), "calls": calls}))
''')


@pytest.fixture
def server() -> Any:
    """A local data plane for the project's client."""
    with DevServer(write_keys=(WRITE_KEY,)) as dev:
        yield dev


def test_async_views_get_the_user_and_the_cookie(tmp_path: Path, server: DevServer) -> None:
    """Under ASGI the middleware runs as a coroutine on the event loop's thread; atrack()
    sends the signed-in user's id, the sync helper before it sends without (no error), the
    cookie is set, and RUDDER_TRACK_REQUESTS carries the user id too."""
    script = tmp_path / "project.py"
    script.write_text(PROJECT)
    environ = {**os.environ, "TEST_WRITE_KEY": WRITE_KEY, "TEST_DATA_PLANE_URL": server.url,
               "TEST_DB": str(tmp_path / "db.sqlite3")}
    run = subprocess.run([sys.executable, str(script)], env=environ, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["calls"] == [True, True]  # the coroutine ran, on the loop's thread
    seen, user_id = result["seen"], result["user_id"]
    tracked = server.events(event="Checkout Started")
    assert [e["anonymousId"] for e in tracked] == [seen[0]["body"], seen[1]["body"]]
    assert [e.get("userId") for e in tracked] == [None, user_id]
    assert seen[0]["cookie"]  # minted and set
    assert [e.get("userId") for e in server.events(event="Sync Helper")] == [None, None]
    requests = server.events(event="API Request")
    assert [e.get("userId") for e in requests] == [None, user_id]
    assert requests[1]["properties"] == {"path": "/checkout", "method": "GET", "status": 200}
