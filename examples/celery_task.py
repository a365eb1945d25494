"""Tracking from Celery tasks, delivered before each pool process exits.

Celery's default pool forks worker processes, and a pool process ends with
``os._exit()``, which skips the SDK's exit hook. ``rudder_celery.install()`` (one line,
next to the app) delivers what a pool process still holds when it shuts down, on a
warm shutdown and whenever ``--max-tasks-per-child`` recycles it. The fork itself is
handled by the SDK: each pool process starts with an empty queue, so nothing is sent
twice.

Without ``CELERY_BROKER_URL`` it uses kombu's filesystem broker (a folder under the
temporary directory), so it runs with no broker server. Against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    celery -A examples.celery_task worker --loglevel=info &
    python -c "from examples.celery_task import send_welcome_email as t; t.delay('u1', 'a@b.c')"
    kill %2     # a warm shutdown: the pool processes deliver before they exit
"""

from __future__ import annotations

import os
import tempfile

from celery import Celery

import rudder_analytics
from rudder_analytics.integrations import celery as rudder_celery

app = Celery("examples", broker=os.environ.get("CELERY_BROKER_URL", "filesystem://"))
if app.conf.broker_url == "filesystem://":
    folder = os.path.join(tempfile.gettempdir(), "rudder-celery-example")
    os.makedirs(folder, exist_ok=True)
    app.conf.broker_transport_options = {"data_folder_in": folder, "data_folder_out": folder,
                                         "control_folder": os.path.join(folder, "control")}
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
