"""The hot-path shortcuts give the same results as the plain forms they replace:
one-join bodies, the ISA-L/zlib gzip choice, and the common-call track builder."""

from __future__ import annotations

import datetime as _dt
import gzip
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_analytics._build import messages as m
from rudder_analytics._build.encoding import build_body, compress
from rudder_analytics.exceptions import ValidationError

SENT_AT = "2026-01-01T00:00:00.000+00:00"


def _two_joins(messages: list[bytes], sent_at: str) -> bytes:
    prefix = b'{"sentAt":"' + sent_at.encode("ascii") + b'",'
    return b"".join((b'{"batch":[', prefix, (b"," + prefix).join(messages), b"]}"))


@given(st.lists(st.binary(max_size=40), max_size=30))
def test_build_body_matches_the_two_join_form(messages: list[bytes]) -> None:
    """The one-join body is byte for byte what joining and then wrapping made, 0..n messages."""
    assert build_body(messages, SENT_AT) == _two_joins(messages, SENT_AT)


@pytest.mark.parametrize("level", range(1, 10))
def test_compress_is_gzip_and_deterministic(level: int) -> None:
    """Every gzip_level gives a gzip stream that decompresses to the body, the same bytes
    for the same body (whichever deflate, ISA-L or zlib, the level uses)."""
    body = build_body([b'"type":"track","n":%d}' % i for i in range(500)], SENT_AT)
    data = compress(body, level)
    assert data[:2] == b"\x1f\x8b"
    assert gzip.decompress(data) == body
    assert compress(body, level) == data


def test_track_shortcut_matches_the_general_builder() -> None:
    """The common track call (plain user id, nothing optional) has the keys, order and
    values that the general path (_common) gives it."""
    props = {"a": 1}
    fast = m.build_track("user-1", "Signed Up", props)
    general = m.build_track("user-1", "Signed Up", props, {})  # a context: general path
    general["context"] = {"library": m.LIBRARY}
    assert list(fast) == list(general)
    for key in fast:
        if key not in ("messageId", "originalTimestamp"):
            assert fast[key] == general[key], key
    assert fast["properties"] is props
    assert json.loads(json.dumps(m.build_track("u", "E")))["properties"] == {}


@pytest.mark.parametrize("user_id", ["", " ", "\u200b", "\t"])
def test_track_shortcut_still_refuses_blank_ids(user_id: str) -> None:
    """A user id the data plane would see as empty is refused on the shortcut too."""
    with pytest.raises(ValidationError):
        m.build_track(user_id, "E")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 4_102_444_799_999), min_size=1, max_size=5))
def test_timestamp_cache_per_second_formats_every_millisecond(values: list[int]) -> None:
    """The per-second cache of now_iso's formatting gives, for any sequence of epoch
    milliseconds (same second, next second, far apart), what format_timestamp gives."""
    for ms in values + [v + 1 for v in values] + [v + 1000 for v in values]:
        moment = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(
            milliseconds=ms)
        assert m._format_ms(ms) == m.format_timestamp(moment)
