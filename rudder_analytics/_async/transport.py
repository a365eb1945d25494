"""The asyncio transport: one ``httpx.AsyncClient`` per delivery, one POST per attempt.

It sends the same bytes and headers as the ``requests`` transport, never follows
redirects (a POST turned into a GET would "succeed" and store nothing), reads at
most ``max_response_bytes`` of an answer, and bounds each request as a whole:
``httpx``'s timeouts bound each read, so a server trickling bytes is cut by an
``asyncio`` timeout too. It never raises for network trouble: it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from types import TracebackType
from typing import Any, Optional

from .._core.delivery import Answer
from .._core.policy import Failure, failure_of, retry_after_seconds
from .._core.wire import CappedBody, compress, request_headers
from ..config import Config

__all__ = ["AsyncTransport", "httpx_available"]


def _load_httpx() -> Any:
    try:
        return importlib.import_module("httpx")
    except ImportError:
        return None


def httpx_available() -> bool:
    """True if the ``async`` extra (httpx) can be imported."""
    return _load_httpx() is not None


def _timeouts(config: Config) -> tuple[float, float]:
    """(connect, read) seconds from ``Config.timeout``."""
    timeout = config.timeout
    if isinstance(timeout, tuple):
        return float(timeout[0]), float(timeout[-1])
    return float(timeout), float(timeout)


class AsyncTransport:
    """Posts request bodies to ``{data_plane_url}/v1/batch`` from an event loop."""

    def __init__(self, config: Config) -> None:
        httpx = _load_httpx()
        if httpx is None:
            raise RuntimeError("the asyncio transport needs httpx: pip install "
                               "'rudder-analytics[async]'")
        self._httpx = httpx
        self._config = config
        self._url = config.batch_url
        self._headers = request_headers(config.write_key, config.gzip)
        connect, read = _timeouts(config)
        timeout = config.timeout
        self.attempt_timeout: float = float(sum(timeout)) if isinstance(timeout, tuple) else float(
            timeout)
        """Seconds one attempt may take in all (as the blocking transport bounds it)."""
        mounts = None
        if config.proxies:
            mounts = {f"{scheme}://": httpx.AsyncHTTPTransport(proxy=url)
                      for scheme, url in config.proxies.items()}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read, connect=connect), follow_redirects=False,
            verify=config.verify, mounts=mounts, trust_env=not config.proxies,
            limits=httpx.Limits(max_connections=1),
        )

    async def __aenter__(self) -> AsyncTransport:
        return self

    async def __aexit__(self, exc_type: Optional[type[BaseException]],
                        exc: Optional[BaseException],
                        traceback: Optional[TracebackType]) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; never raises."""
        with contextlib.suppress(Exception):  # closing must never raise into a shutdown
            await self._client.aclose()

    async def post(self, body: bytes, timeout: Optional[float] = None) -> Answer:
        """POST one body within ``timeout`` seconds (default: connect + read timeout)."""
        config = self._config
        data = compress(body, config.gzip_level) if config.gzip else body
        whole = self.attempt_timeout
        budget = whole if timeout is None else max(0.0, min(timeout, whole))
        try:
            return await asyncio.wait_for(self._exchange(data), budget)
        except asyncio.TimeoutError:
            error = TimeoutError(f"no complete answer within {budget:.1f} s")
            return Answer(None, "", error=error, wire_bytes=len(data), failure=Failure.TIMEOUT)
        except Exception as exc:  # httpx errors: connect, read, protocol
            return Answer(None, "", error=exc, wire_bytes=len(data), failure=self._failure(exc))

    async def _exchange(self, data: bytes) -> Answer:
        request = self._client.build_request("POST", self._url, content=data,
                                             headers=self._headers)
        response = await self._client.send(request, stream=True)
        try:
            capped = CappedBody(self._config.max_response_bytes)
            async for chunk in response.aiter_bytes():
                capped.feed(chunk)
                if capped.full:
                    break
        finally:
            await response.aclose()
        headers = response.headers
        retry_after = retry_after_seconds(headers.get("Retry-After"), headers.get("Date"),
                                          time.time())
        return Answer(response.status_code, capped.text(), retry_after, None,
                      headers.get("Location"), response, len(data))

    def _failure(self, exc: BaseException) -> str:
        """The :class:`Failure` kind, mapping httpx's own types before the stdlib's."""
        httpx = self._httpx
        if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
            return Failure.TIMEOUT
        if isinstance(exc, httpx.ProxyError):
            return Failure.PROXY
        return failure_of(exc)
