"""What the web integrations share: the visitor's anonymous id and per-request calls.

No framework is imported here. The anonymous id is read from the cookie that
RudderStack's JavaScript SDK keeps (``rl_anonymous_id``), so the events a server sends
for a visitor carry the same anonymous id as the ones their browser sends.

The v3 JavaScript SDK writes that cookie as ``encodeURIComponent("RS_ENC_v3_" +
base64(JSON.stringify(id)))``; :func:`decode_anonymous_id` undoes exactly that and
:func:`encode_anonymous_id` writes the same form, so a browser SDK loaded later adopts
an id the server minted. The older (v1.1) form ``RudderEncrypt:<AES>`` needs a
cryptography library and is not read: such a visitor gets a new id. Anything malformed
is ignored, never raised: a bad cookie must not break a request.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any, Callable, Optional, Union
from urllib.parse import quote, unquote

from .._build.validation import optional_id
from ..client import Client, Result
from ..exceptions import ValidationError

__all__ = [
    "ANONYMOUS_ID_COOKIE",
    "COOKIE_MAX_AGE",
    "V3_PREFIX",
    "RequestAnalytics",
    "decode_anonymous_id",
    "encode_anonymous_id",
    "new_anonymous_id",
    "request_context",
]

ANONYMOUS_ID_COOKIE = "rl_anonymous_id"
"""The cookie RudderStack's JavaScript SDK keeps the anonymous id in."""
V3_PREFIX = "RS_ENC_v3_"
"""Prefix of a value written by the v3 JavaScript SDK (base64 of its JSON)."""
COOKIE_MAX_AGE = 365 * 24 * 3600
"""Seconds a minted anonymous-id cookie lives (a year, as the JavaScript SDK's)."""
MAX_ID_LENGTH = 256
"""Longer decoded ids are ignored (a real one is a 36-character UUID)."""
_MAX_COOKIE_LENGTH = 4096

ClientSource = Union[Client, Callable[[], Client]]
"""A client, or a function that returns one (e.g. ``rudder_analytics.default_client``)."""


def _json_id(text: str) -> Optional[str]:
    """The id in a JSON text: a string or an integer; anything else is None."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _bare_token(text: str) -> bool:
    """A plain id some other code may have stored (``uuid4()``): letters, digits, ``-_.:``."""
    return bool(text) and all(c.isascii() and (c.isalnum() or c in "-_.:") for c in text)


def decode_anonymous_id(raw: Optional[str]) -> Optional[str]:
    """The anonymous id in a ``rl_anonymous_id`` cookie value, or None if there is none.

    Accepts the v3 JavaScript SDK's ``RS_ENC_v3_`` form (URI-encoded or not), a JSON
    string, or a bare token such as a UUID. Returns None (never raises) for anything
    else: the legacy ``RudderEncrypt:`` form, bad base64 or JSON, a non-string value,
    an id the data plane would see as blank, or one longer than :data:`MAX_ID_LENGTH`.
    """
    if not raw or len(raw) > _MAX_COOKIE_LENGTH:
        return None
    try:
        text = unquote(raw, errors="strict") if "%" in raw else raw
    except ValueError:  # bad UTF-8 after percent-decoding
        return None
    if text.startswith(V3_PREFIX):
        payload = text[len(V3_PREFIX):]
        try:
            decoded = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
            candidate = _json_id(decoded.decode("utf-8"))
        except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
            return None
    elif text.startswith(("{", "[", '"')):
        candidate = _json_id(text)
    else:  # a bare id (digits included: "0123" stays "0123")
        candidate = text if _bare_token(text) else None
    if candidate is None or len(candidate) > MAX_ID_LENGTH or not candidate.isprintable():
        return None
    try:
        return optional_id(candidate, "anonymous_id")
    except ValidationError:  # pragma: no cover - a str is never refused, only blank
        return None


def encode_anonymous_id(anonymous_id: str) -> str:
    """The cookie value the v3 JavaScript SDK would write for ``anonymous_id``.

    ``RS_ENC_v3_`` + base64 of the JSON string, URI-encoded as ``encodeURIComponent``
    does, so both this module and the browser SDK read it back.
    """
    payload = base64.b64encode(json.dumps(anonymous_id).encode("utf-8")).decode("ascii")
    return quote(V3_PREFIX + payload, safe="-_.!~*'()")


def new_anonymous_id() -> str:
    """A new anonymous id: a random UUID, as the JavaScript SDK mints."""
    return str(uuid.uuid4())


def request_context(
    *,
    ip: Optional[str] = None,
    user_agent: Optional[str] = None,
    url: Optional[str] = None,
    path: Optional[str] = None,
    search: Optional[str] = None,
    referrer: Optional[str] = None,
    locale: Optional[str] = None,
) -> dict[str, Any]:
    """The ``context`` of an event sent while handling a request (empty fields omitted).

    ``ip`` and ``userAgent`` at the top, as the data plane reads them; the page's
    ``url``, ``path``, ``search`` and ``referrer`` under ``page``, as the browser SDK
    sends them.
    """
    context: dict[str, Any] = {}
    if ip:
        context["ip"] = ip
    if user_agent:
        context["userAgent"] = user_agent
    if locale:
        context["locale"] = locale
    page = {k: v for k, v in (("url", url), ("path", path), ("search", search),
                              ("referrer", referrer)) if v}
    if page:
        context["page"] = page
    return context


def _merge(base: dict[str, Any], extra: Optional[dict[str, Any]]) -> dict[str, Any]:
    """``extra`` over ``base``, one level deep for ``page`` (both left unchanged)."""
    if not extra:
        return dict(base)
    merged = {**base, **extra}
    if isinstance(base.get("page"), dict) and isinstance(extra.get("page"), dict):
        merged["page"] = {**base["page"], **extra["page"]}
    return merged


class RequestAnalytics:
    """The SDK's calls for one request, with its ids and context filled in.

    Every call sends the visitor's ``anonymous_id`` and, when the request has a signed-in
    user, their ``user_id`` (both as RudderStack recommends, so the two are stitched).
    ``context`` (ip, user agent, page) is merged under the caller's own. The calls only
    validate and enqueue: they never wait for the network.
    """

    def __init__(
        self,
        client: ClientSource,
        anonymous_id: str,
        *,
        user_id: Union[str, Callable[[], Optional[str]], None] = None,
        context: Optional[dict[str, Any]] = None,
        minted: bool = False,
    ) -> None:
        self._client = client
        self.anonymous_id = anonymous_id
        """The visitor's anonymous id (from their cookie, or minted for this request)."""
        self.minted = minted
        """True if the id was minted here: the response should set the cookie."""
        self.context: dict[str, Any] = context if context is not None else {}
        """What every call adds to its ``context`` (ip, userAgent, page)."""
        self._user_id = user_id
        self._user_id_resolved = not callable(user_id)

    @property
    def client(self) -> Client:
        """The client the calls go to."""
        return self._client if isinstance(self._client, Client) else self._client()

    @property
    def user_id(self) -> Optional[str]:
        """The signed-in user's id, or None; looked up on first use (it may hit a database)."""
        if not self._user_id_resolved:
            getter = self._user_id
            assert callable(getter)
            self._user_id = getter()
            self._user_id_resolved = True
        value = self._user_id
        return value if isinstance(value, str) or value is None else str(value)

    @user_id.setter
    def user_id(self, value: Optional[str]) -> None:
        self._user_id = value
        self._user_id_resolved = True

    def _ids(self, user_id: Any) -> dict[str, Any]:
        return {"user_id": self.user_id if user_id is None else user_id,
                "anonymous_id": self.anonymous_id}

    def track(self, event: str, properties: Optional[dict[str, Any]] = None, *,
              user_id: Any = None, context: Optional[dict[str, Any]] = None,
              **options: Any) -> Result:
        """:meth:`Client.track` for this request's visitor."""
        return self.client.track(event=event, properties=properties,
                                 context=_merge(self.context, context),
                                 **self._ids(user_id), **options)

    def page(self, name: Optional[str] = None, properties: Optional[dict[str, Any]] = None,
             *, category: Optional[str] = None, user_id: Any = None,
             context: Optional[dict[str, Any]] = None, **options: Any) -> Result:
        """:meth:`Client.page` for this request's visitor (the page is this request's)."""
        return self.client.page(name=name, category=category, properties=properties,
                                context=_merge(self.context, context),
                                **self._ids(user_id), **options)

    def identify(self, traits: Optional[dict[str, Any]] = None, *, user_id: Any = None,
                 context: Optional[dict[str, Any]] = None, **options: Any) -> Result:
        """:meth:`Client.identify`: ties the visitor's anonymous id to ``user_id``."""
        return self.client.identify(traits=traits, context=_merge(self.context, context),
                                    **self._ids(user_id), **options)

    def group(self, group_id: Any, traits: Optional[dict[str, Any]] = None, *,
              user_id: Any = None, context: Optional[dict[str, Any]] = None,
              **options: Any) -> Result:
        """:meth:`Client.group` for this request's visitor."""
        return self.client.group(group_id=group_id, traits=traits,
                                 context=_merge(self.context, context),
                                 **self._ids(user_id), **options)
