"""ASGI (FastAPI, Starlette): deliver what is queued when the application shuts down.

Two ways, pick one::

    from fastapi import FastAPI
    from rudder_analytics import Client
    from rudder_analytics.integrations.asgi import lifespan, RudderMiddleware

    client = Client("WRITE_KEY", "https://your-data-plane")

    app = FastAPI(lifespan=lifespan(client))           # a lifespan of its own
    # or, keeping a lifespan you already have:
    app = FastAPI(lifespan=lifespan(client, wrap=my_lifespan))
    # or as middleware (any ASGI app that speaks the lifespan protocol):
    app.add_middleware(RudderMiddleware, client=client)

At shutdown ``await client.ashutdown(timeout)`` runs on the server's loop: the
loop stays free while the worker threads deliver, and it returns within about
``timeout`` seconds (``None``: the client's ``shutdown_timeout``) even when the
data plane hangs. Event calls in handlers stay as they are: ``client.track(...)``
is synchronous and never awaits the network. With no ``client`` given, the
module-level default client is shut down (if one was built).

This module imports no framework: the lifespan helper is a plain
``contextlib.asynccontextmanager`` and the middleware is raw ASGI.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, MutableMapping
from typing import Any, Callable, Optional

from ..client import Client

__all__ = ["RudderMiddleware", "lifespan"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Lifespan = Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]


async def _shutdown(client: Optional[Client], timeout: Optional[float]) -> bool:
    if client is not None:
        return await client.ashutdown(timeout)
    import rudder_analytics

    return await rudder_analytics.ashutdown(timeout)


def lifespan(
    client: Optional[Client] = None,
    *,
    timeout: Optional[float] = None,
    wrap: Optional[Lifespan] = None,
) -> Lifespan:
    """A ``lifespan=`` for FastAPI/Starlette that shuts ``client`` down at the end.

    ``wrap`` is an application lifespan to run inside it (its state is passed on);
    the client is shut down after it has finished, so events tracked in its own
    shutdown code are delivered too.
    """

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        try:
            if wrap is None:
                yield None
            else:
                async with wrap(app) as state:
                    yield state
        finally:
            await _shutdown(client, timeout)

    return run


class RudderMiddleware:
    """Raw ASGI middleware: on ``lifespan.shutdown``, shut ``client`` down before the server
    is told that shutdown is complete. Requests pass through untouched."""

    def __init__(self, app: ASGIApp, client: Optional[Client] = None,
                 timeout: Optional[float] = None) -> None:
        self.app = app
        self.client = client
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_after_delivery(message: Message) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await _shutdown(self.client, self.timeout)
            await send(message)

        await self.app(scope, receive, send_after_delivery)
