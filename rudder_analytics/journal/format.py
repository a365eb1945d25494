"""The journal's on-disk format (version 2): pure functions, no I/O.

A journal is a directory ``j-<pid>-<id>/`` under ``persist_dir`` holding:

* ``meta.json``: ``{"format": 2, "pid", "created", "key_sha256", "url"}``;
* ``lock``: held with ``flock`` by the owning process for its whole life;
* ``seg-<n>.log``: a segment, an 8-byte header (``b"RSJ"``, version byte, 4 zero
  bytes) then frames, one per group commit. A frame is a 22-byte header
  ``<2sIIQI`` (``b"RF"``, body length, CRC-32, first sequence number, event count)
  and a body: ``count`` little-endian u32 payload lengths, then the payloads back
  to back. The CRC covers the first sequence number, the count and the body, so a
  frame is checked once, not event by event (the journal thread's cost per event
  is a share of one checksum, not a checksum of its own). A payload is the encoded
  message as the client queues it (JSON without its first ``{``); the events of a
  frame have the sequence numbers ``first .. first + count - 1``;
* ``seg-<n>.ack``: acknowledgements, 20-byte entries ``<QQI`` (first seq, last seq,
  CRC-32 of the two): events already delivered or dropped.

Nothing read from disk is ever evaluated or unpickled: payloads are bytes that
are sent as they are, metadata is JSON.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Callable, NamedTuple, Optional

try:  # ISA-L's CRC-32: the same checksum, ~9x faster, and it keeps the GIL
    from isal.isal_zlib import crc32 as _crc32_impl

    _STEP = 1 << 62
except ImportError:  # pragma: no cover - depends on the environment (see setup.cfg)
    from zlib import crc32 as _crc32_impl

    _STEP = 4096

crc32: Callable[..., int] = _crc32_impl
"""CRC-32 as zlib computes it (``crc32(data, start)``)."""

__all__ = [
    "ACK", "FORMAT_VERSION", "FRAME", "FRAME_BYTES", "FRAME_EVENTS", "HEADER", "Frame",
    "ScanResult", "decode_acks", "encode_ack", "encode_frame", "frame_slices", "payloads",
    "scan", "version_of",
]

FORMAT_VERSION = 2
MAGIC = b"RSJ"
HEADER = MAGIC + bytes([FORMAT_VERSION]) + b"\0\0\0\0"
"""The first 8 bytes of every segment file."""
FRAME_MAGIC = b"RF"
FRAME = struct.Struct("<2sIIQI")
_SEQ_COUNT = struct.Struct("<QI")
ACK = struct.Struct("<QQI")
MAX_BODY = 256 * 1024 * 1024
"""A body length above this is damage, not a frame."""
_BIG_ENDIAN = sys.byteorder == "big"
_U32 = "I" if array("I").itemsize == 4 else "L"


class Frame(NamedTuple):
    """One frame read back: where it is in the data, its events' sequence numbers."""

    offset: int
    end: int
    first: int
    events: int
    body: bytes


class ScanResult(NamedTuple):
    """What :func:`scan` found in a run of bytes."""

    frames: list[Frame]
    corrupt: int
    """Events lost in frames that failed their checksum (a guess from their header,
    at least one per damaged stretch)."""
    good_end: int
    """Offset just after the last whole frame: anything after it is a torn tail."""


CRC_STEP = _STEP
"""zlib.crc32 gives up the GIL for more than 5 KiB, and getting it back from a caller
looping flat out takes a switch interval: with zlib the journal thread checksums in
4 KiB steps (ISA-L's crc32 keeps the GIL and takes the whole frame at once)."""


def _crc_of(data: bytes, crc: int) -> int:
    if len(data) <= CRC_STEP:
        return crc32(data, crc)
    view = memoryview(data)
    for start in range(0, len(data), CRC_STEP):
        crc = crc32(view[start:start + CRC_STEP], crc)
    return crc


def _crc(first: int, count: int, body: bytes) -> int:
    return _crc_of(body, crc32(_SEQ_COUNT.pack(first, count)))


def _lengths(sizes: array[int]) -> bytes:
    if _BIG_ENDIAN:
        sizes = array(_U32, sizes)
        sizes.byteswap()
    return sizes.tobytes()


def sizes_of(events: Sequence[bytes]) -> array[int]:
    """The events' lengths as a frame stores them (one C pass)."""
    return array(_U32, map(len, events))


FRAME_EVENTS = 16384
FRAME_BYTES = 4 * 1024 * 1024
"""A group commit is written as frames of at most this many events and bytes (one
event larger than that gets a frame of its own)."""


def frame_slices(sizes: array[int]) -> list[tuple[int, int]]:
    """``(start, end)`` slices of events of ``sizes``, each within FRAME_EVENTS and
    FRAME_BYTES."""
    if len(sizes) <= FRAME_EVENTS and sum(sizes) <= FRAME_BYTES:
        return [(0, len(sizes))]  # the usual commit: one frame
    ends = list(accumulate(sizes))
    slices: list[tuple[int, int]] = []
    start = 0
    while start < len(sizes):
        base = ends[start - 1] if start else 0
        end = min(bisect_right(ends, base + FRAME_BYTES, start), start + FRAME_EVENTS)
        end = max(end, start + 1)
        slices.append((start, end))
        start = end
    return slices


def encode_frame(first: int, events: Sequence[bytes],
                 sizes: Optional[array[int]] = None) -> tuple[bytes, bytes, bytes]:
    """One frame holding ``events`` (sequence numbers from ``first``; ``sizes`` their
    :func:`sizes_of`, if known), as three parts to write one after the other (one copy
    of the events, not three): a few C calls, no Python step per event."""
    count = len(events)
    lengths = _lengths(sizes if sizes is not None else sizes_of(events))
    joined = b"".join(events)
    crc = _crc_of(joined, _crc_of(lengths, crc32(_SEQ_COUNT.pack(first, count))))
    header = FRAME.pack(FRAME_MAGIC, len(lengths) + len(joined), crc, first, count)
    return header, lengths, joined


def _sizes(body: bytes, count: int) -> array[int]:
    """The payload lengths a frame's body declares."""
    sizes = array(_U32)
    sizes.frombytes(body[:4 * count])
    if _BIG_ENDIAN:
        sizes.byteswap()
    return sizes


def payloads(frame: Frame) -> list[bytes]:
    """The events of a (checked) frame, in sequence order."""
    starts = list(accumulate(_sizes(frame.body, frame.events), initial=4 * frame.events))
    body = frame.body
    return [body[a:b] for a, b in zip(starts, starts[1:])]


def encode_ack(first: int, last: int) -> bytes:
    """One acknowledgement entry covering sequence numbers ``first..last``."""
    pair = struct.pack("<QQ", first, last)
    return pair + struct.pack("<I", crc32(pair))


def decode_acks(data: bytes) -> Iterator[tuple[int, int]]:
    """The valid ``(first, last)`` ranges in an ack file; damaged entries are skipped."""
    for start in range(0, len(data) - ACK.size + 1, ACK.size):
        first, last, crc = ACK.unpack_from(data, start)
        if crc32(data[start:start + 16]) == crc and first <= last:
            yield first, last


def version_of(header: bytes) -> int:
    """The format version in a segment header; -1 if it is not one of ours."""
    if len(header) < len(HEADER) or header[:3] != MAGIC:
        return -1
    return header[3]


def _frame_at(data: bytes, offset: int) -> tuple[int, int, Optional[Frame]]:
    """(status, events claimed, frame): status 0 ok, 1 torn (incomplete), 2 damaged."""
    if offset + FRAME.size > len(data):
        return 1, 1, None
    magic, length, crc, first, count = FRAME.unpack_from(data, offset)
    plausible = magic == FRAME_MAGIC and 0 < 4 * count <= length <= MAX_BODY
    if not plausible:
        return 2, 1, None
    end = offset + FRAME.size + length
    if end > len(data):
        return 1, count, None
    body = data[offset + FRAME.size:end]
    if _crc(first, count, body) != crc:
        return 2, count, None
    if sum(_sizes(body, count)) != length - 4 * count:
        return 2, count, None
    return 0, count, Frame(offset, end, first, count, body)


def _next_candidate(data: bytes, offset: int) -> int:
    found = data.find(FRAME_MAGIC, offset)
    return len(data) if found < 0 else found


def scan(data: bytes, start: int = 0) -> ScanResult:
    """Every valid frame in ``data`` from ``start``; damage is skipped, never raised.

    A damaged stretch (a frame whose checksum fails, bytes that are no frame) is
    counted once, by the events its first header claims, and the scan
    resynchronises on the next valid frame. An incomplete frame with no valid
    frame after it is a torn tail: ``good_end`` stops before it.
    """
    frames: list[Frame] = []
    corrupt = 0
    offset = good_end = start
    damaged = False
    while offset < len(data):
        status, claimed, frame = _frame_at(data, offset)
        if status == 0 and frame is not None:
            frames.append(frame)
            offset = good_end = frame.end
            damaged = False
            continue
        if status == 1 and not damaged and not _valid_after(data, offset + 1):
            break  # torn tail: the last write stopped short
        if not damaged:
            corrupt += claimed
            damaged = True
        offset = _next_candidate(data, offset + 1)
    return ScanResult(frames, corrupt, good_end)


def _valid_after(data: bytes, offset: int) -> bool:
    """Whether a whole valid frame starts somewhere at or after ``offset``."""
    offset = _next_candidate(data, offset)
    while offset < len(data):
        if _frame_at(data, offset)[0] == 0:
            return True
        offset = _next_candidate(data, offset + 1)
    return False
