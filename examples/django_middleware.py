"""Django with ``rudder_analytics.integrations.django``: the middleware and a view.

In a project, add the middleware after the authentication middleware (so that
``request.user`` is set) and track from views with ``track(request, ...)``::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "rudder_analytics.integrations.django.RudderAnalyticsMiddleware",
    ]
    RUDDER_WRITE_KEY = "..."          # or the RUDDER_WRITE_KEY environment variable
    RUDDER_DATA_PLANE_URL = "https://your-data-plane"  # or RUDDER_DATA_PLANE_URL
    RUDDER_TRACK_REQUESTS = "API Request"  # optional: one event per request

Each event then carries the visitor's anonymous id (the JavaScript SDK's
``rl_anonymous_id`` cookie, or a new id the middleware sets in that cookie), the
signed-in user's id, and the request's context (ip, user agent, page). ``track`` only
validates and enqueues, so a request never waits for the network.

This file is also a one-file project (no database) to try it::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    python examples/django_middleware.py runserver 8000
    curl -c jar -b jar localhost:8000/pricing     # twice: the same anonymous id
"""

from __future__ import annotations

import sys

from django.http import HttpRequest, JsonResponse
from django.urls import path

from rudder_analytics.integrations.django import track

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "rudder_analytics.integrations.django.RudderAnalyticsMiddleware",
]


def pricing(request: HttpRequest) -> JsonResponse:
    """A page view the app tracks itself, with a property of its own."""
    plan = request.GET.get("plan", "pro")
    track(request, "Pricing Viewed", {"plan": plan})
    return JsonResponse({"anonymous_id": request.rudder_anonymous_id})  # type: ignore[attr-defined]


urlpatterns = [path("pricing", pricing)]


def main(argv: list[str]) -> None:
    """Run this file as a Django project (``runserver``, ``check``, ...)."""
    from django.conf import settings
    from django.core.management import execute_from_command_line

    settings.configure(
        DEBUG=True, SECRET_KEY="example-only", ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE[2:],  # no sessions, no auth: no DB
        RUDDER_TRACK_REQUESTS="API Request",
    )
    execute_from_command_line(argv)


if __name__ == "__main__":
    main(sys.argv)
