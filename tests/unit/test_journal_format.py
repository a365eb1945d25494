"""The journal's frame format: round trips, torn tails, checksums, resync, ack ranges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rudder_analytics.journal.format import (
    HEADER,
    decode_acks,
    encode_ack,
    payloads,
    scan,
    version_of,
)
from rudder_analytics.journal.format import encode_frame as encode_parts
from rudder_analytics.journal.segments import ack_ranges

EVENTS = [b'"n":%d}' % i for i in range(5)]


def encode_frame(first: int, events: list[bytes]) -> bytes:
    """A frame's parts as the bytes the journal writes."""
    return b"".join(encode_parts(first, events))


def test_frames_round_trip() -> None:
    """What encode_frame writes, scan reads back, frame by frame, events in order."""
    data = encode_frame(1, EVENTS[:3]) + encode_frame(4, EVENTS[3:])
    result = scan(data)
    assert [(f.first, f.events) for f in result.frames] == [(1, 3), (4, 2)]
    assert [p for f in result.frames for p in payloads(f)] == EVENTS
    assert result.corrupt == 0 and result.good_end == len(data)


def test_payload_bytes_are_opaque() -> None:
    """Payloads may hold any byte, newlines and frame magic included."""
    odd = [b"RF\n\0\xff}", b"", b"RSJ\x02" * 100]
    assert payloads(scan(encode_frame(7, odd)).frames[0]) == odd


def test_torn_tail_stops_before_it() -> None:
    """An incomplete last frame is not returned and not counted as corrupt."""
    whole = encode_frame(1, EVENTS[:2])
    result = scan(whole + encode_frame(3, EVENTS[2:])[:-2])
    assert [f.first for f in result.frames] == [1]
    assert result.corrupt == 0 and result.good_end == len(whole)


def test_flipped_byte_is_skipped_and_counted() -> None:
    """A frame failing its checksum is counted by the events it claims, once; the
    scan finds the next good frame after it."""
    frames = [encode_frame(1, EVENTS[:2]), encode_frame(3, EVENTS[2:4]),
              encode_frame(5, EVENTS[4:])]
    damaged = bytearray(b"".join(frames))
    damaged[len(frames[0]) + 25] ^= 0xFF  # inside the second frame's body
    result = scan(bytes(damaged))
    assert [f.first for f in result.frames] == [1, 5]
    assert result.corrupt == 2


def test_damaged_length_is_not_a_torn_tail() -> None:
    """A length field damaged to point past the end is damage when a valid frame
    follows: the frames after it are kept, not truncated away."""
    frames = [encode_frame(1, EVENTS[:2]), encode_frame(3, EVENTS[2:])]
    damaged = bytearray(b"".join(frames))
    damaged[2:6] = (10_000).to_bytes(4, "little")
    result = scan(bytes(damaged))
    assert [f.first for f in result.frames] == [3]
    assert result.corrupt == 2 and result.good_end == len(damaged)


def test_garbage_is_no_frame() -> None:
    """Random bytes, even with the frame magic in them, yield nothing and never raise."""
    result = scan(b"RF" + b"\x00" * 30 + b"RFRF" + bytes(range(256)))
    assert result.frames == [] and result.corrupt >= 1


def test_acks_and_ranges() -> None:
    """Sequence numbers fold into runs; damaged ack entries are ignored."""
    assert ack_ranges([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 5), (7, 8)]
    blob = encode_ack(1, 3) + b"\0" * 20 + encode_ack(7, 8)
    assert list(decode_acks(blob)) == [(1, 3), (7, 8)]


def test_version_of_header() -> None:
    """Our header says version 2; anything else is not ours."""
    assert version_of(HEADER) == 2
    assert version_of(b"garbage!") == -1


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1,
                    max_size=6),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=3),
    cut=st.floats(0, 1),
)
def test_damage_never_raises_and_never_invents(chunks: list[list[bytes]],
                                               flips: list[tuple[float, int]],
                                               cut: float) -> None:
    """Whatever bytes are flipped or cut, scan returns only frames that were written,
    whole, with their own events; an undamaged prefix is returned in full."""
    frames, first = [], 1
    for chunk in chunks:
        frames.append(encode_frame(first, chunk))
        first += len(chunk)
    data = bytearray(b"".join(frames))
    for where, mask in flips:
        data[int(where * (len(data) - 1))] ^= mask
    data = data[:max(1, int(cut * len(data)))] if cut < 1 else data
    result = scan(bytes(data))
    written = {(f.first, tuple(payloads(f))) for f in scan(b"".join(frames)).frames}
    for frame in result.frames:
        assert (frame.first, tuple(payloads(frame))) in written
    if not flips and cut >= 1:
        assert len(result.frames) == len(chunks) and result.corrupt == 0
