"""The start of the Django projects that the Django middleware tests run in subprocesses:
settings with the middleware after sessions and auth, then ``django.setup()``."""

from __future__ import annotations

import textwrap


def django_setup(database: str, track_requests: str) -> str:
    """Python source configuring Django; ``database`` and ``track_requests`` are source
    expressions (the SQLite name, ``RUDDER_TRACK_REQUESTS``)."""
    return textwrap.dedent(f'''
        import os
        import django
        from django.conf import settings

        settings.configure(
            DEBUG=False, SECRET_KEY="test", ALLOWED_HOSTS=["testserver"],
            ROOT_URLCONF=__name__,
            INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes",
                            "django.contrib.sessions"],
            DATABASES={{"default": {{"ENGINE": "django.db.backends.sqlite3",
                                    "NAME": {database}}}}},
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "rudder_analytics.integrations.django.RudderAnalyticsMiddleware",
            ],
            RUDDER_WRITE_KEY=os.environ["TEST_WRITE_KEY"],
            RUDDER_DATA_PLANE_URL=os.environ["TEST_DATA_PLANE_URL"],
            RUDDER_OPTIONS={{"upload_interval": 0.05, "atexit": False}},
            RUDDER_TRACK_REQUESTS={track_requests},
        )
        django.setup()
    ''')
