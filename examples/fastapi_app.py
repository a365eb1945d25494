"""A FastAPI (asyncio) app that tracks orders.

Event calls never touch the network: they validate, encode and enqueue in a few
microseconds, so calling them from ``async`` handlers does not block the event
loop. Only ``flush``/``shutdown`` wait for delivery: the lifespan from
``rudder_analytics.integrations.asgi`` shuts the client down when the server stops,
without blocking the loop (``await client.ashutdown()``).

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    uvicorn --factory examples.fastapi_app:create_app
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import FastAPI, Request

from rudder_analytics import Client
from rudder_analytics.integrations.asgi import lifespan


def create_app(analytics: Optional[Client] = None) -> FastAPI:
    """The app; ``analytics`` defaults to a Client configured from the environment."""
    client = analytics if analytics is not None else Client()
    # At shutdown: deliver what is queued, within 10 seconds, without blocking the loop.
    app = FastAPI(lifespan=lifespan(client, timeout=10.0))

    @app.post("/orders", status_code=201)
    async def create_order(order: dict[str, Any], request: Request) -> dict[str, Any]:
        client.track(
            user_id=str(order["user_id"]),
            event="Order Completed",
            properties={"order_id": order["order_id"], "revenue": order["revenue"]},
            context={"ip": request.client.host if request.client else None},
        )
        return {"order_id": order["order_id"]}

    return app
