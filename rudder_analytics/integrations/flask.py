"""Flask extension: a client per app, per-request ids and context, shutdown at exit.

::

    from flask import Flask
    from rudder_analytics.integrations.flask import RudderAnalytics, track

    rudder = RudderAnalytics()

    def create_app():
        app = Flask(__name__)
        rudder.init_app(app)
        return app

    @app.post("/checkout")
    def checkout():
        track("Checkout Started", {"cart_size": 3})   # or rudder.track(...), g.rudder.track(...)

For each request the extension puts a
:class:`~rudder_analytics.integrations.web.RequestAnalytics` in ``g.rudder``: the
visitor's anonymous id, from the JavaScript SDK's ``rl_anonymous_id`` cookie or minted
(and then set on the response), the user id from ``user_id`` (a function called when an
event is sent; by default ``g.rudder_user_id``, else Flask-Login's ``current_user``),
and ``context`` (ip, userAgent, page url, path, referrer).

``app.config`` (all optional): ``RUDDER_WRITE_KEY``, ``RUDDER_DATA_PLANE_URL`` and
``RUDDER_OPTIONS`` (a dict of Client options) build the app's client; without them the
``RUDDER_*`` environment variables do. ``RUDDER_COOKIE_NAME``, ``RUDDER_COOKIE_DOMAIN``,
``RUDDER_SET_COOKIE`` (True) and ``RUDDER_TRACK_REQUESTS`` (an event name) work as in
the Django middleware.

At interpreter exit the extension shuts its client down (delivering what is queued,
within ``shutdown_timeout``); under gunicorn that is each worker's exit.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from typing import Any, Callable, Optional

from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_app_context,
    has_request_context,
    request,
)

from ..client import Client, Result
from .web import (
    ANONYMOUS_ID_COOKIE,
    COOKIE_MAX_AGE,
    RequestAnalytics,
    decode_anonymous_id,
    encode_anonymous_id,
    new_anonymous_id,
    request_context,
)

__all__ = ["RudderAnalytics", "current", "identify", "page", "track"]

logger: logging.Logger = logging.getLogger("rudder_analytics")

EXTENSION_KEY = "rudder_analytics"
"""Where ``init_app`` puts its state: ``app.extensions["rudder_analytics"]``."""

UserIdGetter = Callable[[], Optional[str]]


_flask_login: Optional[Any] = None
_flask_login_checked = False


def _flask_login_user() -> Any:
    """Flask-Login's ``current_user`` if Flask-Login is installed (looked up once)."""
    global _flask_login, _flask_login_checked
    if not _flask_login_checked:
        try:
            import flask_login  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            flask_login = None
        _flask_login, _flask_login_checked = flask_login, True
    return None if _flask_login is None else _flask_login.current_user


def default_user_id() -> Optional[str]:
    """``g.rudder_user_id`` if the app set it, else Flask-Login's user, else None."""
    explicit = g.get("rudder_user_id")
    if explicit is not None:
        return str(explicit)
    current_user = _flask_login_user()
    if current_user is not None and getattr(current_user, "is_authenticated", False):
        user_id = current_user.get_id()
        return None if user_id is None else str(user_id)
    return None


def _shutdown_at_exit(ref: weakref.ReferenceType[Client]) -> None:
    client = ref()
    if client is not None and not client.closed:
        client.shutdown()


class _AppState:
    """One app's client and settings."""

    def __init__(self, app: Flask, client: Client, user_id: UserIdGetter) -> None:
        config = app.config
        self.client = client
        self.user_id = user_id
        self.cookie_name: str = config.get("RUDDER_COOKIE_NAME", ANONYMOUS_ID_COOKIE)
        self.cookie_domain: Optional[str] = config.get("RUDDER_COOKIE_DOMAIN")
        self.set_cookie: bool = config.get("RUDDER_SET_COOKIE", True)
        self.track_requests: Optional[str] = config.get("RUDDER_TRACK_REQUESTS")


class RudderAnalytics:
    """The extension: ``RudderAnalytics(app)`` or ``RudderAnalytics()`` + ``init_app(app)``.

    ``client``: use this client instead of building one from ``app.config``.
    ``user_id``: a function returning the signed-in user's id (or None), called in the
    request when the first event is sent.
    """

    def __init__(self, app: Optional[Flask] = None, *, client: Optional[Client] = None,
                 user_id: Optional[UserIdGetter] = None) -> None:
        self._client = client
        self._user_id = user_id or default_user_id
        self._last_client: Optional[Client] = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``: build its client, hook its requests, shut down at exit."""
        client = self._client
        if client is None:
            config = app.config
            client = Client(config.get("RUDDER_WRITE_KEY"), config.get("RUDDER_DATA_PLANE_URL"),
                            **(config.get("RUDDER_OPTIONS") or {}))
        app.extensions[EXTENSION_KEY] = _AppState(app, client, self._user_id)
        self._last_client = client
        app.before_request(_before_request)
        app.after_request(_after_request)
        atexit.register(_shutdown_at_exit, weakref.ref(client))

    @property
    def client(self) -> Client:
        """The current app's client; outside an app context, that of the last ``init_app``."""
        if has_app_context():
            return _state().client
        if self._last_client is None:
            raise RuntimeError("RudderAnalytics.init_app(app) has not been called")
        return self._last_client

    def track(self, event: str, properties: Optional[dict[str, Any]] = None,
              **options: Any) -> Result:
        """Track ``event`` for the current request's visitor."""
        return current().track(event, properties, **options)

    def identify(self, traits: Optional[dict[str, Any]] = None, **options: Any) -> Result:
        """Tie the current visitor's anonymous id to the user."""
        return current().identify(traits, **options)

    def page(self, name: Optional[str] = None, properties: Optional[dict[str, Any]] = None,
             **options: Any) -> Result:
        """Record a page view of the current request."""
        return current().page(name, properties, **options)


def _state() -> _AppState:
    state: Optional[_AppState] = current_app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise RuntimeError("RudderAnalytics.init_app(app) was not called for this app")
    return state


def _before_request() -> None:
    try:
        state = _state()
        anonymous_id = decode_anonymous_id(request.cookies.get(state.cookie_name))
        context = request_context(
            ip=request.remote_addr, user_agent=request.headers.get("User-Agent"),
            url=request.url, path=request.path,
            search=("?" + request.query_string.decode("latin-1")) if request.query_string
            else None, referrer=request.referrer,
        )
        g.rudder = RequestAnalytics(state.client, anonymous_id or new_anonymous_id(),
                                    user_id=state.user_id, context=context,
                                    minted=anonymous_id is None)
    except Exception:  # never fail the request for analytics
        logger.exception("rudder_analytics Flask extension: could not prepare the request")


def _after_request(response: Response) -> Response:
    analytics: Optional[RequestAnalytics] = g.get("rudder")
    if analytics is None:
        return response
    try:
        state = _state()
        if analytics.minted and state.set_cookie:
            response.set_cookie(
                state.cookie_name, encode_anonymous_id(analytics.anonymous_id),
                max_age=COOKIE_MAX_AGE, domain=state.cookie_domain, path="/",
                secure=request.is_secure, httponly=False, samesite="Lax",
            )
        if state.track_requests:
            analytics.track(state.track_requests, {
                "path": request.path, "method": request.method,
                "status": response.status_code,
            })
    except Exception:
        logger.exception("rudder_analytics Flask extension: could not finish the request")
    return response


def current() -> RequestAnalytics:
    """This request's :class:`RequestAnalytics` (``g.rudder``)."""
    analytics: Optional[RequestAnalytics] = g.get("rudder") if has_request_context() else None
    if analytics is None:
        raise RuntimeError("no request analytics: call this while handling a request of an "
                           "app set up with RudderAnalytics.init_app(app)")
    return analytics


def track(event: str, properties: Optional[dict[str, Any]] = None, **options: Any) -> Result:
    """Track ``event`` for the current request's visitor (``g.rudder.track``)."""
    return current().track(event, properties, **options)


def identify(traits: Optional[dict[str, Any]] = None, **options: Any) -> Result:
    """Tie the current visitor's anonymous id to the user (``g.rudder.identify``)."""
    return current().identify(traits, **options)


def page(name: Optional[str] = None, properties: Optional[dict[str, Any]] = None,
         **options: Any) -> Result:
    """Record a page view of the current request (``g.rudder.page``)."""
    return current().page(name, properties, **options)
