"""JSON encoding of messages, request body assembly and gzip.

Each message is encoded to bytes exactly once, in the caller's thread, so that
an unsupported value fails at the call that passed it and the worker never
serializes anything again. The worker assembles request bodies by joining the
stored bytes and splicing the per-attempt ``sentAt`` into each message.

Fast path: ``orjson`` (a dependency on CPython, where it has wheels), else the
standard library's C encoder, made once at import. Both produce the same JSON
values; anything either one cannot take directly (NaN, integers beyond 2**53,
non-string keys, unknown types) goes through :func:`_sanitize`, a slower walk
that converts what can be converted and names the path of what cannot.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import gzip as _gzip
import importlib
import json
import json.encoder
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable, Optional, Sequence

from ..exceptions import InvalidTypeError, MessageTooLargeError, ValidationError

try:  # installed with the package on CPython; imported by name so typing works without it
    _orjson: Any = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = [
    "BACKEND",
    "GZIP_BACKEND",
    "MAX_DEPTH",
    "MAX_SAFE_INTEGER",
    "body_overhead",
    "build_body",
    "compress",
    "decode_message",
    "encode_message",
    "message_overhead",
]

MAX_SAFE_INTEGER = 2**53
"""Integers beyond this are sent as strings: the data plane re-encodes numbers as float64."""

MAX_DEPTH = 253
"""Dicts and lists nested deeper than this inside a message field are refused: orjson's own
bound (254 levels, counting the message itself), so that with orjson the fast path and the
sanitizing path agree. The standard library's encoder allows deeper nesting."""

BACKEND = "orjson" if _orjson is not None else "json"
"""The JSON encoder in use."""


def _default(value: Any) -> Any:
    """Convert the non-JSON types that the SDK supports; raise TypeError for the rest."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise TypeError("bytes that are not valid UTF-8") from None
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    raise TypeError(f"cannot encode a value of type {type(value).__name__}")


def _int_text(value: int, path: str) -> str:
    """``str(value)``, or ValidationError past Python's int-to-str digit limit (4300)."""
    try:
        return str(value)
    except ValueError:
        raise ValidationError(f"{path}: an integer too large to send") from None


def _key(key: Any, path: str) -> str:
    """Turn a mapping key into a JSON object key, as json.dumps does."""
    if isinstance(key, str):
        return key
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return _int_text(int(key), path)
    if isinstance(key, float):
        return json.dumps(key) if math.isfinite(key) else "null"
    if isinstance(key, enum.Enum):
        return _key(key.value, path)
    raise InvalidTypeError(f"{path}: keys must be strings, not {type(key).__name__}")


def _sanitize(value: Any, path: str, depth: int = 0) -> Any:
    """Return a JSON-native copy of ``value``, or raise naming the offending path.

    ``depth`` counts the containers around ``value`` within its message field.
    """
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        if type(value) is not str:
            value = str.__str__(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: replace, as a browser would
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        value = int(value)
        return _int_text(value, path) if abs(value) > MAX_SAFE_INTEGER else value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (Mapping, list, tuple)) and depth >= MAX_DEPTH:
        raise ValidationError(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        return {
            _key(k, path): _sanitize(v, f"{path}.{k}", depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_sanitize(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    try:
        converted = _default(value)
    except TypeError as exc:
        raise InvalidTypeError(f"{path}: {exc}") from None
    except (ValueError, ArithmeticError) as exc:
        raise ValidationError(f"{path}: {exc}") from None
    return _sanitize(converted, path, depth + 1)


def _sanitize_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """Sanitize each top-level field, so that error paths read ``properties.items[2]``."""
    return {key: _sanitize(value, key) for key, value in message.items()}


def _cached_c_encoder() -> Optional[Callable[[Any], str]]:
    """The standard library's C encoder, made once.

    ``JSONEncoder.encode`` builds a new C encoder on every call (and checks for
    cycles with a dict of ids); made once and without that check it is ~1 µs
    cheaper per message. A cycle still ends in RecursionError, which sends the
    message down the sanitizing path (refused past :data:`MAX_DEPTH`).
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    basestring = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or basestring is None:  # pragma: no cover - a Python without _json
        return None
    encoder = make(None, _default, basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(encoder(value, 0))

    return encode


_stdlib_encoder = _cached_c_encoder() or json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
).encode
_plain_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# A digit run of 16 or more in the output may be an integer beyond 2**53 (which has
# 16 digits). translate() maps digits to "0" and all else to " ", so one substring
# test finds such runs in C; false alarms (long digit strings) only cost a sanitize.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"0" * 16


def _encode_stdlib(message: Mapping[str, Any]) -> bytes:
    try:
        data = _stdlib_encoder(message).encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError):
        return _plain_encoder(_sanitize_message(message)).encode("utf-8")
    if _LONG_RUN in data.translate(_DIGIT_RUNS):
        return _plain_encoder(_sanitize_message(message)).encode("utf-8")
    return data


if _orjson is not None:
    _dumps = _orjson.dumps
    _OPTIONS = _orjson.OPT_STRICT_INTEGER
    _OrjsonError: type[Exception] = _orjson.JSONEncodeError
else:  # pragma: no cover - depends on the environment
    _dumps = None
    _OPTIONS = 0
    _OrjsonError = TypeError


def encode_message(message: Mapping[str, Any], max_size: int) -> bytes:
    """Encode ``message`` to compact UTF-8 JSON, minus its opening brace.

    The stored form drops the leading ``{`` so that :func:`build_body` can put
    ``{"sentAt":"...",`` in its place by joining, and so that the result is a
    fresh, exact-size bytes object: orjson returns bytes with a 4 KiB buffer
    behind them, which would cost ~4 KiB per queued event if kept as is.
    ``len()`` of the result is the encoded size less one.

    Raises :class:`~rudder_analytics.exceptions.InvalidTypeError` naming the
    path of a value that cannot be encoded, and
    :class:`~rudder_analytics.exceptions.MessageTooLargeError` (without the
    message's contents) when the result is too large.
    """
    if _dumps is None:  # pragma: no cover - depends on the environment
        data = _encode_stdlib(message)
    else:  # orjson, called here: one Python frame less per call
        try:
            data = _dumps(message, default=_default, option=_OPTIONS)
        except (_OrjsonError, TypeError, ValueError, RecursionError):
            data = _dumps(_sanitize_message(message))
    if len(data) > max_size:
        raise MessageTooLargeError(len(data), max_size)
    return data[1:]


def decode_message(data: bytes) -> dict[str, Any]:
    """Decode one stored message (from :func:`encode_message`) back to a dict."""
    result: dict[str, Any] = json.loads(b"{" + data)
    return result


# --- request bodies -------------------------------------------------------------------

_BODY_START = b'{"batch":['
_BODY_END = b"]}"
_SENT_AT_SAMPLE = "2026-01-01T00:00:00.000+00:00"


def _sent_at_prefix(sent_at: str) -> bytes:
    return b'{"sentAt":"' + sent_at.encode("ascii") + b'",'


def message_overhead() -> int:
    """Bytes a stored message adds to a body beyond its own length: the sentAt prefix, a comma."""
    return len(_sent_at_prefix(_SENT_AT_SAMPLE)) + 1


def body_overhead() -> int:
    """Bytes of the envelope around the messages of a body."""
    return len(_BODY_START) + len(_BODY_END)


def build_body(messages: Sequence[bytes], sent_at: str) -> bytes:
    """Join encoded messages into a ``/v1/batch`` body, with ``sentAt`` on each message.

    Stored messages lack their opening brace; each is preceded by
    ``{"sentAt":"...",`` so that the per-attempt timestamp costs one join in C,
    not a re-encode. The length is exactly ``body_overhead()`` plus, per
    message, ``len(message) + message_overhead()``, less one comma.
    """
    prefix = _sent_at_prefix(sent_at)
    if not messages:
        return _BODY_START + prefix + _BODY_END
    # One join, so one body-sized allocation: joining the messages and then wrapping
    # them made two, and freeing the first (~500 KB) let malloc trim the heap, so the
    # next batch page-faulted its memory back in: ~350 µs per 500 KB body, 0.45 µs
    # per event, against ~12 µs for this.
    parts = list(messages)
    parts[0] = _BODY_START + prefix + parts[0]
    parts[-1] += _BODY_END
    return (b"," + prefix).join(parts)


try:  # a dependency where it has wheels (CPython 3.11+, x86-64 and ARM64)
    _isal_zlib: Any = importlib.import_module("isal.isal_zlib")
except ImportError:  # pragma: no cover - depends on the environment
    _isal_zlib = None

ISAL_MAX_LEVEL = 3
"""ISA-L's deflate has levels 0-3; ``gzip_level`` 1-3 use it when it is installed (level
1 compresses as small as zlib's level 1, ~8x faster: 0.08 instead of 0.61 µs of the
worker's CPU per event, see benchmarks/README.md); 4-9 always use zlib."""

GZIP_BACKEND = "isal" if _isal_zlib is not None else "zlib"
"""Which deflate compresses the request bodies at ``gzip_level`` 1-3."""


def compress(body: bytes, level: int) -> bytes:
    """Gzip ``body`` (mtime 0, so equal bodies compress to equal bytes)."""
    if _isal_zlib is not None and level <= ISAL_MAX_LEVEL:
        data: bytes = _isal_zlib.compress(body, level, 31)  # 31: a gzip header and trailer
        return data
    return _gzip.compress(body, compresslevel=level, mtime=0)

