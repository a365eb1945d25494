"""Tracking from Celery tasks, with a flush when each worker process shuts down.

Celery's default pool forks worker processes. The SDK handles the fork: a child
starts with an empty queue and its own delivery thread (started on its first
event), so nothing is sent twice or lost to a dead thread. A pool process may
exit without running ``atexit`` hooks, so deliver what it still holds on
``worker_process_shutdown``.

Run a worker (with a real broker) as usual::

    RUDDER_WRITE_KEY=... RUDDER_DATA_PLANE_URL=... \\
        celery -A examples.celery_task worker --loglevel=info
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_shutdown

import rudder_analytics

app = Celery("examples", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))


@app.task
def send_welcome_email(user_id: str, email: str) -> bool:
    """Send the email (elided), then record that it was sent."""
    rudder_analytics.track(
        user_id=user_id,
        event="Welcome Email Sent",
        properties={"email_domain": email.rsplit("@", 1)[-1]},
    )
    return True


@worker_process_shutdown.connect
def deliver_analytics(**_: Any) -> None:
    """Deliver queued events before the pool process exits (bounded: 10 seconds)."""
    rudder_analytics.shutdown(timeout=10)
