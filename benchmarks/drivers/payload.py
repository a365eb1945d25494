"""The one payload every SDK sends: a track call with ~10 properties of mixed types."""

from __future__ import annotations

import datetime
import json
from typing import Any

EVENT = "Order Completed"
"""The event name; the sink counts events by its JSON-quoted form, so no property uses it."""

CREATED_AT = datetime.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
USER_IDS = tuple(f"user-{i:05d}" for i in range(1024))


def user_id(i: int) -> str:
    """The user id of call ``i`` (1,024 distinct users)."""
    return USER_IDS[i & 1023]


def make_properties(i: int) -> dict[str, Any]:
    """A fresh properties dict for call ``i``: str, float, int, bool, None, datetime, list,
    a nested dict two levels deep. Fresh per call, as an application would build it, so an
    SDK that keeps a reference pays for it in the memory figures like one that copies."""
    return {
        "order_id": f"ord-{i}",
        "revenue": 49.99 + (i % 100),
        "quantity": 3,
        "currency": "USD",
        "coupon": None,
        "is_gift": False,
        "discount": 0.15,
        "created_at": CREATED_AT,
        "tags": ["summer", "sale"],
        "shipping": {
            "method": "express",
            "cost": 5.5,
            "address": {"city": "Berlin", "zip": "10115"},
        },
    }


def backfill_line(i: int) -> str:
    """Line ``i`` of a backfill file: a JSON record of ~600 bytes holding a user id and the
    properties of :func:`make_properties` (the datetime as its ISO string) plus a note."""
    props = make_properties(i)
    props["created_at"] = CREATED_AT.isoformat()
    record = {"user_id": user_id(i), "properties": props, "source": "backfill",
              "note": "x" * 230}
    return json.dumps(record)
