"""Django middleware that tracks every request as an ``API Request`` event.

Add it to ``settings.MIDDLEWARE`` (after the authentication middleware, so that
``request.user`` is set)::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "examples.django_middleware.RudderAnalyticsMiddleware",
    ]
    RUDDER_WRITE_KEY = "..."          # or the RUDDER_WRITE_KEY environment variable
    RUDDER_DATA_PLANE_URL = "https://your-data-plane"  # or RUDDER_DATA_PLANE_URL

The client is built once per process, when Django builds the middleware chain.
``track`` only validates and enqueues, so the request never waits for the network.
Under gunicorn or uwsgi see the README ("Web servers").
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Optional

from django.conf import settings

from rudder_analytics import Client

ANONYMOUS_COOKIE = "ajs_anonymous_id"
"""The cookie RudderStack's JavaScript SDK keeps the anonymous id in."""


class RudderAnalyticsMiddleware:
    """Tracks each request (path, method, status) for the signed-in or anonymous user."""

    def __init__(self, get_response: Callable[[Any], Any],
                 client: Optional[Client] = None) -> None:
        self.get_response = get_response
        self.client = client if client is not None else Client(
            getattr(settings, "RUDDER_WRITE_KEY", None),
            getattr(settings, "RUDDER_DATA_PLANE_URL", None),
        )

    def __call__(self, request: Any) -> Any:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        user_id = str(user.pk) if user is not None and user.is_authenticated else None
        anonymous_id = None
        if user_id is None:
            anonymous_id = request.COOKIES.get(ANONYMOUS_COOKIE) or str(uuid.uuid4())
        self.client.track(
            user_id=user_id,
            anonymous_id=anonymous_id,
            event="API Request",
            properties={
                "path": request.path,
                "method": request.method,
                "status": response.status_code,
            },
            context={
                "ip": request.META.get("REMOTE_ADDR"),
                "userAgent": request.META.get("HTTP_USER_AGENT", ""),
            },
        )
        return response
