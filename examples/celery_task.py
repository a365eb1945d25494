"""Tracking from Celery tasks, delivered before each pool process exits.

Celery's default pool forks worker processes, and a pool process ends with
``os._exit()``, which skips the SDK's exit hook. ``rudder_celery.install()`` (one line,
next to the app) delivers what a pool process still holds when it shuts down, on a
warm shutdown and whenever ``--max-tasks-per-child`` recycles it. The fork itself is
handled by the SDK: each pool process starts with an empty queue, so nothing is sent
twice.

Run a worker (with a real broker; ``CELERY_BROKER_URL``, e.g. ``redis://localhost``)::

    RUDDER_WRITE_KEY=... RUDDER_DATA_PLANE_URL=... \\
        celery -A examples.celery_task worker --loglevel=info
"""

from __future__ import annotations

import os

from celery import Celery

import rudder_analytics
from rudder_analytics.integrations import celery as rudder_celery

app = Celery("examples", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))
rudder_celery.install()  # the module-level client delivers before each process exits


@app.task
def send_welcome_email(user_id: str, email: str) -> bool:
    """Send the email (elided), then record that it was sent."""
    rudder_analytics.track(
        user_id=user_id,
        event="Welcome Email Sent",
        properties={"email_domain": email.rsplit("@", 1)[-1]},
    )
    return True
