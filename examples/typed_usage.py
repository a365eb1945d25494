"""Typical use of the SDK, fully typed: this file passes ``mypy --strict`` (CI checks it).

It runs against whatever RUDDER_WRITE_KEY and RUDDER_DATA_PLANE_URL point at::

    rudder-analytics dev-server --port 8080 &
    RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080 \\
        python examples/typed_usage.py
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional, cast

from rudder_analytics import Client, DeliveryError, StatsSnapshot
from rudder_analytics.testing import CapturedEvents, capture
from rudder_analytics.types import IdentifyMessage, Message, TrackMessage

logger = logging.getLogger("myapp.analytics")


def on_error(error: DeliveryError, batch: list[dict[str, Any]]) -> None:
    """Called once per batch that could not be delivered (after its retries)."""
    logger.error("analytics batch of %d not delivered (status %s): %s",
                 len(batch), error.status_code, error)


def on_drop(reason: str, messages: list[dict[str, Any]]) -> None:
    """Called for every dropped event, whatever the reason (queue full, rejected, ...)."""
    logger.warning("dropped %d analytics event(s): %s", len(messages), reason)


def make_client(write_key: Optional[str] = None, data_plane_url: Optional[str] = None) -> Client:
    """A client configured from arguments or, when they are None, the environment."""
    return Client(write_key, data_plane_url, on_error=on_error, on_drop=on_drop,
                  upload_interval=0.2, shutdown_timeout=10.0)


def record_signup(client: Client, user_id: str, email: str, plan: str) -> TrackMessage:
    """Identify the user and track the sign-up; returns the typed track message."""
    ok, message = client.identify(user_id=user_id, traits={"email": email, "plan": plan})
    identify = cast(IdentifyMessage, message)
    assert identify["traits"]["email"] == email
    ok, message = client.track(user_id=user_id, event="Signed Up", properties={"plan": plan})
    if not ok:  # the queue was full or the client is shut down; counted in stats()
        logger.warning("sign-up event not queued")
    return cast(TrackMessage, message)


def describe(message: Message) -> str:
    """Narrowing the union on "type" gives each call type's fields."""
    if message["type"] == "track":
        return f"track {message['event']}"
    if message["type"] == "group":
        return f"group {message['groupId']}"
    if message["type"] == "alias":
        return f"alias {message['previousId']}"
    return message["type"]


def send_order_batch(client: Client, user_id: str) -> bool:
    """Several events delivered together, synchronously, with a shared context."""
    with client.batch() as batch:
        batch.context = {"ip": "10.0.0.1"}
        batch.track(user_id=user_id, event="Order Completed", properties={"revenue": 9.95})
        batch.track(user_id=user_id, event="Order Shipped", properties={"carrier": "ups"})
    return batch.result is not None and batch.result.ok


def check_signup_is_tracked(client: Client) -> CapturedEvents:
    """What a unit test does: capture instead of sending, then assert."""
    with capture() as events:
        record_signup(client, "u-test", "test@example.com", "free")
    events.assert_tracked("Signed Up", user_id="u-test", properties={"plan": "free"})
    return events


def main() -> int:
    """Send a sign-up and an order batch, flush, and report the client's stats."""
    with make_client() as client:  # leaving the block shuts down (and delivers)
        check_signup_is_tracked(client)
        track = record_signup(client, "u-42", "ada@example.com", "pro")
        print(describe(track))
        batch_ok = send_order_batch(client, "u-42")
        flushed = client.flush(timeout=30)
        stats: StatsSnapshot = client.stats()
    print(f"delivered={stats['delivered']} dropped={stats['dropped_total']}")
    return 0 if flushed and batch_ok and stats["dropped_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
