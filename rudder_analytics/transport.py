"""HTTP transport: one ``requests.Session`` per worker, one POST per attempt.

The transport sends a body and describes what came back; it never retries or
sleeps (that is :mod:`.retry` and :mod:`.delivery`). It answers with an
:class:`Attempt`: a status code with a capped body, or the exception that
stopped the request. Sessions are not shared between threads (requests #2766).
"""

from __future__ import annotations

import base64
import logging
import os
from typing import NamedTuple, Optional, Union

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from .config import Config
from .encoding import compress
from .retry import parse_retry_after
from .version import VERSION

__all__ = ["USER_AGENT", "Attempt", "Transport"]

logger = logging.getLogger("rudder_analytics")

USER_AGENT = f"rudder-analytics-python/{VERSION}"


class Attempt(NamedTuple):
    """What one POST produced."""

    status_code: Optional[int]
    """HTTP status, or None when no answer came (connect error, reset, timeout)."""
    body: str
    """Response body, decoded as UTF-8 and cut at ``max_response_bytes``."""
    retry_after: Optional[float]
    """Seconds from ``Retry-After``, if the server sent one."""
    exception: Optional[BaseException]
    """The transport-level exception, when there was no answer."""
    response: Optional[requests.Response]
    """The response object, for ``on_error`` callbacks that want headers."""
    wire_bytes: int
    """Bytes put on the wire for the body."""


class Transport:
    """Posts request bodies to ``{data_plane_url}/v1/batch``."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._url = config.batch_url
        credentials = base64.b64encode(f"{config.write_key}:".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
        }
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._timeout = config.timeout
        self._session = self._new_session()
        self._template = self._prepare_template()

    def _prepare_template(self) -> requests.PreparedRequest:
        """A request prepared once; each attempt copies it and sets the body.

        ``Session.request`` re-merges settings, cookies, hooks and the URL on every
        call: about a quarter of the worker's CPU per batch. The copy skips that.
        """
        request = requests.Request("POST", self._url, headers=self._headers, data=b"{}")
        return self._session.prepare_request(request)

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # requests re-reads proxy and CA-bundle environment variables on every request
        # when trust_env is on; resolve them once here instead (same result, less CPU).
        proxies: dict[str, str] = dict(self._config.proxies or {})
        if not proxies:
            proxies = get_environ_proxies(self._url)
        session.proxies = proxies
        verify: Union[bool, str] = self._config.verify
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
                "CURL_CA_BUNDLE") or True
        session.verify = verify
        session.trust_env = False
        return session

    def post(self, body: bytes) -> Attempt:
        """POST one body (compressed here if gzip is on); never raises for network trouble."""
        data = compress(body, self._config.gzip_level) if self._config.gzip else body
        prepared = self._template.copy()
        prepared.body = data
        prepared.headers["Content-Length"] = str(len(data))
        try:
            response = self._session.send(prepared, timeout=self._timeout, stream=True)
        except requests.RequestException as exc:
            _redact_credentials(exc)
            return Attempt(None, "", None, exc, None, len(data))
        except Exception as exc:  # urllib3 or socket errors that requests did not wrap
            return Attempt(None, "", None, exc, None, len(data))
        try:
            text = self._read_capped(response)
        except Exception as exc:  # the connection broke while reading the answer
            response.close()
            return Attempt(None, "", None, exc, None, len(data))
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return Attempt(response.status_code, text, retry_after, None, response, len(data))

    def _read_capped(self, response: requests.Response) -> str:
        """Read at most ``max_response_bytes``; a longer body closes the connection."""
        cap = self._config.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=8192):
            chunks.append(chunk)
            size += len(chunk)
            if size > cap:
                response.close()
                break
        return b"".join(chunks)[:cap].decode("utf-8", "replace")

    def close(self) -> None:
        """Close pooled connections."""
        try:
            self._session.close()
        except Exception:  # closing must never raise into shutdown
            logger.debug("error closing HTTP session", exc_info=True)

    def discard_after_fork(self) -> None:
        """In a forked child: forget the parent's sockets without closing them."""
        self._session = self._new_session()
        self._template = self._prepare_template()


def _redact_credentials(exc: requests.RequestException) -> None:
    """Replace the failed request that ``exc`` carries by a copy without the write key.

    requests attaches the PreparedRequest, Authorization header included, to its
    connection and timeout errors; ``on_error`` receives the exception.
    """
    request = getattr(exc, "request", None)
    if isinstance(request, requests.PreparedRequest) and "Authorization" in request.headers:
        redacted = request.copy()
        redacted.headers["Authorization"] = "<redacted>"
        exc.request = redacted

