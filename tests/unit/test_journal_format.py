"""The journal's record format: round trips, torn tails, checksums, ack ranges."""

from __future__ import annotations

from rudder_analytics.journal.format import (
    HEADER,
    decode_acks,
    encode_ack,
    encode_record,
    scan,
    version_of,
)
from rudder_analytics.journal.segments import ack_ranges


def test_records_round_trip() -> None:
    """What encode_record writes, scan reads back in order."""
    data = b"".join(encode_record(i, b'"n":%d}' % i) for i in range(1, 6))
    result = scan(data)
    assert [r.seq for r in result.records] == [1, 2, 3, 4, 5]
    assert result.records[2].payload == b'"n":3}'
    assert result.corrupt == 0 and result.good_end == len(data)


def test_torn_tail_stops_before_it() -> None:
    """An incomplete last record is not returned and not counted as corrupt."""
    data = encode_record(1, b"a}") + encode_record(2, b"bbbb}")[:-2]
    result = scan(data)
    assert [r.seq for r in result.records] == [1]
    assert result.corrupt == 0 and result.good_end == len(encode_record(1, b"a}"))


def test_flipped_byte_is_skipped_and_counted() -> None:
    """A record failing its checksum is counted once; the next good one is found."""
    records = [encode_record(i, b"x" * 20 + b"}") for i in range(1, 4)]
    damaged = bytearray(b"".join(records))
    damaged[len(records[0]) + 20] ^= 0xFF
    result = scan(bytes(damaged))
    assert [r.seq for r in result.records] == [1, 3]
    assert result.corrupt == 1


def test_acks_and_ranges() -> None:
    """Sequence numbers fold into runs; damaged ack entries are ignored."""
    assert ack_ranges([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    blob = encode_ack(1, 3) + b"\0" * 20 + encode_ack(7, 8)
    assert list(decode_acks(blob)) == [(1, 3), (7, 8)]


def test_version_of_header() -> None:
    """Our header says version 1; anything else is not ours."""
    assert version_of(HEADER) == 1
    assert version_of(b"garbage!") == -1
