"""What the test programs share: a client whose events stay queued until shutdown.

With one large batch and a long upload interval, nothing is sent before the client
shuts down, so an event is delivered only if the process's end delivers it.
"""

from __future__ import annotations

import os

from rudder_analytics import Client

HELD = {"upload_size": 10_000, "upload_bytes": 3_000_000, "upload_interval": 60.0}


def held_client(**options: object) -> Client:
    """A client for the test's data plane; ``RUDDER_TEST_HANDLE_SIGTERM=1`` turns the option on."""
    handle = os.environ.get("RUDDER_TEST_HANDLE_SIGTERM") == "1"
    return Client(os.environ["RUDDER_WRITE_KEY"], os.environ["RUDDER_DATA_PLANE_URL"],
                  handle_sigterm=handle, shutdown_timeout=8.0, **{**HELD, **options})
