"""The module settings: one per :class:`~rudder_analytics.config.Config` field, plus the
URL aliases, derived from the dataclass; and the error for a name that is none of them."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from ..config import PEER_HINTS, Config
from ..exceptions import ConfigurationError

__all__ = ["PEER_HINTS", "SETTINGS", "SETTING_SET", "URL_ALIASES", "initial_value",
           "unknown_setting"]

URL_ALIASES = ("dataPlaneUrl", "host")
SETTINGS: tuple[str, ...] = (
    *(f.name for f in dataclasses.fields(Config)), *URL_ALIASES,
)
"""Every module setting: each :class:`Config` field, plus the URL aliases."""

SETTING_SET = frozenset(SETTINGS)
_INITIAL: dict[str, Any] = {"debug": False, "send": True, "sync_mode": False}
"""Settings whose module default is the peers' bool rather than None ("the default")."""



def initial_value(name: str) -> Any:
    """A setting's value before the user sets it."""
    return _INITIAL.get(name)


def unknown_setting(name: str) -> ConfigurationError:
    """The error for ``rudder_analytics.<name> = ...`` when ``name`` is no setting."""
    if name.startswith("oauth_"):
        return ConfigurationError(
            f"rudder_analytics has no setting {name!r}: OAuth is Segment-only; "
            f"RudderStack authenticates with the write key alone (drop this line)")
    hint = PEER_HINTS.get(name)
    if hint is None:
        close = difflib.get_close_matches(name, sorted(SETTING_SET), n=1)
        hint = close[0] if close else None
    suggestion = f"; use {hint} instead" if hint else ""
    return ConfigurationError(f"rudder_analytics has no setting {name!r}{suggestion}")
