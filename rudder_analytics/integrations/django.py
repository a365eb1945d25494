"""Django middleware: one anonymous id per visitor, the signed-in user, ``request.rudder``.

Add it after the authentication middleware (so ``request.user`` is set)::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "rudder_analytics.integrations.django.RudderAnalyticsMiddleware",
    ]

Then, in a view::

    from rudder_analytics.integrations.django import track

    def checkout(request):
        track(request, "Checkout Started", {"cart_size": 3})

For each request the middleware reads the visitor's anonymous id from the JavaScript
SDK's ``rl_anonymous_id`` cookie (see :mod:`rudder_analytics.integrations.web`), or
mints one and sets that cookie on the response, so the visitor keeps one id across
requests and shares it with the browser SDK. ``request.rudder`` is a
:class:`~rudder_analytics.integrations.web.RequestAnalytics`: its calls carry the
anonymous id, the user id (``str(request.user.pk)`` for a signed-in user, looked up
only when an event is sent) and ``context`` (ip, userAgent, page url, path, referrer).

Settings (all optional):

``RUDDER_WRITE_KEY``, ``RUDDER_DATA_PLANE_URL``, ``RUDDER_OPTIONS``
    When any is set, a client is built from them (``RUDDER_OPTIONS`` is a dict of
    :class:`~rudder_analytics.Client` options) once per process. Otherwise the
    module-level default client (``rudder_analytics.track``) is used, configured from
    ``rudder_analytics.write_key`` or the ``RUDDER_*`` environment variables.
``RUDDER_COOKIE_NAME`` (``"rl_anonymous_id"``), ``RUDDER_COOKIE_DOMAIN`` (None)
    The cookie read and set. Give the domain the browser SDK uses (its
    ``setCookieDomain`` option, by default the top-level domain) so both see one cookie.
``RUDDER_SET_COOKIE`` (True)
    Set the cookie when an id was minted. False: the id lives for one request only.
``RUDDER_TRACK_REQUESTS`` (None)
    An event name, e.g. ``"API Request"``: track each request (path, method, status).

The middleware is sync and async capable: under ASGI with async views it runs on the
event loop, without a thread hop. Django resolves ``request.user`` synchronously, which
an async view cannot do: there, use :func:`atrack` (and :func:`apage`,
:func:`aidentify`), which look the user up with ``await request.auser()`` first; the
sync helpers then send the event without the user id rather than fail.

Nothing here waits for the network; an error in the middleware's own work is logged,
never raised into the request.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import SynchronousOnlyOperation

import rudder_analytics

from ..client import Client, Result
from .web import (
    ANONYMOUS_ID_COOKIE,
    COOKIE_MAX_AGE,
    ClientSource,
    RequestAnalytics,
    decode_anonymous_id,
    encode_anonymous_id,
    new_anonymous_id,
    request_context,
)

__all__ = [
    "RudderAnalyticsMiddleware", "aidentify", "apage", "atrack", "get_client", "identify",
    "page", "track",
]

logger: logging.Logger = logging.getLogger("rudder_analytics")

_client: Optional[Client] = None
_client_lock = threading.Lock()


def get_client() -> Client:
    """The client for this process: built from the ``RUDDER_*`` settings, or the default.

    Raises :class:`~rudder_analytics.ConfigurationError` if nothing configures one.
    """
    global _client
    client = _client
    if client is not None and not client.closed:
        return client
    write_key = getattr(settings, "RUDDER_WRITE_KEY", None)
    url = getattr(settings, "RUDDER_DATA_PLANE_URL", None)
    options = getattr(settings, "RUDDER_OPTIONS", None)
    if write_key is None and url is None and options is None:
        return rudder_analytics.get_default_client()
    with _client_lock:
        if _client is None or _client.closed:
            _client = Client(write_key, url, **(options or {}))
        return _client


def _user_id(request: Any) -> Optional[str]:
    """``str(request.user.pk)`` for a signed-in user, else None."""
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    pk = getattr(user, "pk", None)
    return None if pk is None else str(pk)


def _context(request: Any) -> dict[str, Any]:
    meta = request.META
    try:
        url: Optional[str] = request.build_absolute_uri()
    except Exception:  # DisallowedHost: ALLOWED_HOSTS refuses the Host header
        url = None
    return request_context(
        ip=meta.get("REMOTE_ADDR"), user_agent=meta.get("HTTP_USER_AGENT"), url=url,
        path=request.path, search=("?" + meta["QUERY_STRING"]) if meta.get("QUERY_STRING")
        else None, referrer=meta.get("HTTP_REFERER"),
        locale=getattr(request, "LANGUAGE_CODE", None),
    )


class RudderAnalyticsMiddleware:
    """Gives each request ``request.rudder`` and keeps the visitor's anonymous-id cookie.

    ``client`` (for tests, or several data planes) overrides :func:`get_client`.
    Override :meth:`get_user_id` to take the user id from somewhere else.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any],
                 client: Optional[Client] = None) -> None:
        self.get_response = get_response
        if client is None:
            get_client()  # a configuration error shows at startup, not on the first event
        self.client: ClientSource = client if client is not None else get_client
        self.cookie_name: str = getattr(settings, "RUDDER_COOKIE_NAME", ANONYMOUS_ID_COOKIE)
        self.cookie_domain: Optional[str] = getattr(settings, "RUDDER_COOKIE_DOMAIN", None)
        self.set_cookie: bool = getattr(settings, "RUDDER_SET_COOKIE", True)
        self.track_requests: Optional[str] = getattr(settings, "RUDDER_TRACK_REQUESTS", None)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def get_user_id(self, request: Any) -> Optional[str]:
        """The signed-in user's id: ``str(request.user.pk)``, or None."""
        return _user_id(request)

    async def aget_user_id(self, request: Any) -> Optional[str]:
        """The signed-in user's id from async code: ``await request.auser()``, or
        :meth:`get_user_id` in a thread when that is overridden."""
        if (type(self).get_user_id is RudderAnalyticsMiddleware.get_user_id
                and hasattr(request, "auser")):
            user = await request.auser()
            pk = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
            return None if pk is None else str(pk)
        return await sync_to_async(self.get_user_id)(request)

    def __call__(self, request: Any) -> Any:
        if self._async:
            return self.__acall__(request)
        analytics = self._start(request)
        response = self.get_response(request)
        if analytics is not None:
            self._finish(request, response, analytics)
        return response

    async def __acall__(self, request: Any) -> Any:
        """The same on the event loop; the user is looked up with ``await``."""
        analytics = self._start(request)
        response = await self.get_response(request)
        if analytics is not None:
            if self.track_requests:
                await _resolve_user(request, analytics)
            self._finish(request, response, analytics)
        return response

    def _user_id_getter(self, request: Any) -> Callable[[], Optional[str]]:
        if not self._async:
            return lambda: self.get_user_id(request)

        def from_async_code() -> Optional[str]:  # request.user may need the database
            try:
                return self.get_user_id(request)
            except SynchronousOnlyOperation:
                logger.debug("rudder_analytics: no user id (use atrack() in async views)")
                return None
        return from_async_code

    def _start(self, request: Any) -> Optional[RequestAnalytics]:
        try:
            anonymous_id = decode_anonymous_id(request.COOKIES.get(self.cookie_name))
            minted = anonymous_id is None
            analytics = RequestAnalytics(
                self.client, anonymous_id or new_anonymous_id(),
                user_id=self._user_id_getter(request), context=_context(request),
                minted=minted,
            )
        except Exception:
            logger.exception("rudder_analytics middleware: could not prepare the request")
            return None
        request.rudder = analytics
        request.rudder_anonymous_id = analytics.anonymous_id
        request.rudder_middleware = self
        return analytics

    def _finish(self, request: Any, response: Any, analytics: RequestAnalytics) -> None:
        try:
            if analytics.minted and self.set_cookie and self.cookie_name not in response.cookies:
                response.set_cookie(
                    self.cookie_name, encode_anonymous_id(analytics.anonymous_id),
                    max_age=COOKIE_MAX_AGE, domain=self.cookie_domain, path="/",
                    secure=request.is_secure(), httponly=False, samesite="Lax",
                )
            if self.track_requests:
                analytics.track(self.track_requests, {
                    "path": request.path, "method": request.method,
                    "status": response.status_code,
                })
        except Exception:
            logger.exception("rudder_analytics middleware: could not finish the request")


def _analytics(request: Any) -> RequestAnalytics:
    analytics: Optional[RequestAnalytics] = getattr(request, "rudder", None)
    if analytics is None:
        raise RuntimeError("request.rudder is not set: add "
                           "rudder_analytics.integrations.django.RudderAnalyticsMiddleware "
                           "to settings.MIDDLEWARE")
    return analytics


def track(request: Any, event: str, properties: Optional[dict[str, Any]] = None,
          **options: Any) -> Result:
    """Track ``event`` for the request's visitor (``request.rudder.track``)."""
    return _analytics(request).track(event, properties, **options)


def page(request: Any, name: Optional[str] = None,
         properties: Optional[dict[str, Any]] = None, **options: Any) -> Result:
    """Record a page view of this request (``request.rudder.page``)."""
    return _analytics(request).page(name, properties, **options)


def identify(request: Any, traits: Optional[dict[str, Any]] = None, **options: Any) -> Result:
    """Tie the visitor's anonymous id to the user (``request.rudder.identify``)."""
    return _analytics(request).identify(traits, **options)


async def _resolve_user(request: Any, analytics: RequestAnalytics) -> None:
    """Look the user up with ``await`` (once per request), for the calls that follow."""
    middleware = getattr(request, "rudder_middleware", None)
    if getattr(request, "rudder_user_resolved", False) or middleware is None:
        return
    try:
        analytics.user_id = await middleware.aget_user_id(request)
    except Exception:
        logger.exception("rudder_analytics middleware: could not look the user up")
    request.rudder_user_resolved = True


async def atrack(request: Any, event: str, properties: Optional[dict[str, Any]] = None,
                 **options: Any) -> Result:
    """:func:`track` from an async view: the user is looked up with ``await`` first."""
    analytics = _analytics(request)
    await _resolve_user(request, analytics)
    return analytics.track(event, properties, **options)


async def apage(request: Any, name: Optional[str] = None,
                properties: Optional[dict[str, Any]] = None, **options: Any) -> Result:
    """:func:`page` from an async view."""
    analytics = _analytics(request)
    await _resolve_user(request, analytics)
    return analytics.page(name, properties, **options)


async def aidentify(request: Any, traits: Optional[dict[str, Any]] = None,
                    **options: Any) -> Result:
    """:func:`identify` from an async view."""
    analytics = _analytics(request)
    await _resolve_user(request, analytics)
    return analytics.identify(traits, **options)
