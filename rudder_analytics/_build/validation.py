"""Pure checks on the arguments of public calls.

Each function returns the normalised value or raises
:class:`~rudder_analytics.exceptions.ValidationError` (or its ``TypeError``
facet, :class:`~rudder_analytics.exceptions.InvalidTypeError`). No I/O, no
logging: these run in the caller's thread on every call.
"""

from __future__ import annotations

import datetime as _dt
import re
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Optional

from ..exceptions import InvalidTypeError, ValidationError

_FRACTION = re.compile(r"(?<=:\d\d)\.(\d+)")
"""The fraction of seconds in an ISO-8601 time."""

__all__ = [
    "check_identity",
    "optional_id",
    "optional_mapping",
    "optional_name",
    "required_id",
    "required_name",
]


# rudder-go-kit sanitize.Unicode removes these (and every non-printable character) from
# userId and anonymousId before the data plane checks that one of them is non-empty.
_INVISIBLE = frozenset(
    "\u0000\u0009\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c"
    "\u200d\u200e\u200f\u202f\u205f\u2060\u2061\u2062\u2063\u2064\u206a\u206b\u206c"
    "\u206d\u206e\u206f\u3000\u2800\u3164\ufeff\uffa0"
)


def _blank(text: str) -> bool:
    """True if the data plane would see an empty id: nothing left once it drops invisible
    and non-printable characters and trims. Such an id makes it refuse the whole batch."""
    if text.isascii() and text.isprintable():
        return not text.strip()
    return not "".join(c for c in text if c.isprintable() and c not in _INVISIBLE).strip()


def optional_id(value: Any, field: str) -> Optional[str]:
    """Stringify an id exactly (``157963456373623802`` stays ``"157963456373623802"``).

    ``0`` is a valid id; ``None`` and blank strings (blank as the data plane sees them,
    e.g. only zero-width spaces) mean "absent".
    """
    if value is None:
        return None
    if type(value) is str:
        return None if _blank(value) else value
    if isinstance(value, bool):
        raise InvalidTypeError(f"{field} must be a string or a number, not bool")
    if isinstance(value, (str, int, uuid.UUID, Decimal)):
        try:
            text = str(value)
        except ValueError:  # an int past sys.get_int_max_str_digits() (4300 by default)
            raise ValidationError(f"{field} is a number too large to send") from None
        return None if _blank(text) else text
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValidationError(f"{field} must be a finite number")
        return repr(int(value)) if value.is_integer() else repr(value)
    raise InvalidTypeError(f"{field} must be a string or a number, not {type(value).__name__}")


def required_id(value: Any, field: str) -> str:
    """Like :func:`optional_id`, but the id must be present."""
    result = optional_id(value, field)
    if result is None:
        raise ValidationError(f"{field} is required")
    return result


def check_identity(user_id: Optional[str], anonymous_id: Optional[str]) -> None:
    """The data plane refuses a whole batch for one message without either id."""
    if user_id is None and anonymous_id is None:
        raise ValidationError("either user_id or anonymous_id is required")


def required_name(value: Any, field: str) -> str:
    """A non-blank string, such as a track call's ``event``."""
    if type(value) is str and value.strip():
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"{field} is required")
    raise InvalidTypeError(f"{field} must be a string, not {type(value).__name__}")


def optional_name(value: Any, field: str) -> Optional[str]:
    """A string or ``None``, such as a page call's ``name`` or ``category``."""
    if value is None or type(value) is str:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    raise InvalidTypeError(f"{field} must be a string, not {type(value).__name__}")


def optional_mapping(value: Any, field: str) -> Optional[Mapping[str, Any]]:
    """A dict-like field (``properties``, ``traits``, ``context``, ``integrations``) or ``None``."""
    if value is None or type(value) is dict or isinstance(value, Mapping):
        return value
    raise InvalidTypeError(f"{field} must be a mapping (dict), not {type(value).__name__}")


def timestamp(value: Any, field: str = "timestamp") -> Optional[_dt.datetime]:
    """A caller-supplied event time as an aware UTC datetime (naive is taken as UTC)."""
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=_dt.timezone.utc)
        try:
            return value.astimezone(_dt.timezone.utc)
        except (OverflowError, ValueError) as exc:  # year 1 at +05:00 is before year 1 UTC
            raise ValidationError(f"{field} is out of range in UTC: {exc}") from None
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=_dt.timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return _dt.datetime.fromtimestamp(value, _dt.timezone.utc)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValidationError(f"{field} is out of range: {exc}") from None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python < 3.11 takes only 3 or 6 fraction digits: pad or cut to 6 first.
        text = _FRACTION.sub(lambda m: "." + (m.group(1) + "00000")[:6], text, count=1)
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(f"{field} is not an ISO-8601 date-time: {value!r}") from None
        return timestamp(parsed, field)
    raise InvalidTypeError(
        f"{field} must be a datetime, an ISO-8601 string or epoch seconds, "
        f"not {type(value).__name__}"
    )
