"""A FastAPI (asyncio) app that tracks orders.

Event calls never touch the network: they validate, encode and enqueue in a few
microseconds, so calling them from ``async`` handlers does not block the event
loop. Only ``flush``/``shutdown`` wait for delivery; run them in a thread
(``asyncio.to_thread``) at shutdown, here in the lifespan handler.

Run it against the local data plane::

    rudder-analytics dev-server --port 8080 &
    export RUDDER_WRITE_KEY=test-write-key RUDDER_DATA_PLANE_URL=http://127.0.0.1:8080
    uvicorn --factory examples.fastapi_app:create_app
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Optional

from fastapi import FastAPI, Request

from rudder_analytics import Client


def create_app(analytics: Optional[Client] = None) -> FastAPI:
    """The app; ``analytics`` defaults to a Client configured from the environment."""
    client = analytics if analytics is not None else Client()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # Deliver what is queued without blocking the loop (bounded by the timeout).
        await asyncio.to_thread(client.shutdown, 10.0)

    app = FastAPI(lifespan=lifespan)

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
