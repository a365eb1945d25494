"""Optional integrations with web frameworks, task queues and metrics systems.

Each is a submodule that imports its framework itself, so ``import rudder_analytics``
never imports Django, Flask, Celery, Starlette, prometheus_client or OpenTelemetry:

- :mod:`rudder_analytics.integrations.django`: middleware (anonymous id per visitor,
  user id from the authenticated user, ``request.rudder``).
- :mod:`rudder_analytics.integrations.flask`: the ``RudderAnalytics`` extension.
- :mod:`rudder_analytics.integrations.asgi`: ASGI middleware (FastAPI, Starlette).
- :mod:`rudder_analytics.integrations.celery`: ``install()`` makes prefork pool
  processes deliver before they exit.
- :mod:`rudder_analytics.integrations.prometheus`: a collector for ``client.stats()``.
- :mod:`rudder_analytics.integrations.otel`: OpenTelemetry observable instruments.

:mod:`rudder_analytics.integrations.web` holds what the web integrations share
(the JavaScript SDK's anonymous-id cookie, per-request context); it needs no framework.
"""
