"""The journal's on-disk format (version 1): pure functions, no I/O.

A journal is a directory ``j-<pid>-<id>/`` under ``persist_dir`` holding:

* ``meta.json``: ``{"format": 1, "pid", "created", "key_sha256", "url"}``;
* ``lock``: held with ``flock`` by the owning process for its whole life;
* ``seg-<n>.log``: a segment, an 8-byte header (``b"RSJ"``, version byte, 4 zero
  bytes) then records. A record is a 17-byte header ``<IIQB`` (payload length,
  CRC-32 of seq+flags+payload, sequence number, flags) and the payload: the
  encoded message as the client queues it (JSON without its first ``{``);
* ``seg-<n>.ack``: acknowledgements, 20-byte entries ``<QQI`` (first seq, last seq,
  CRC-32 of the two): records already delivered or dropped.

Nothing read from disk is ever evaluated or unpickled: payloads are bytes that
are sent as they are, metadata is JSON.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import NamedTuple

__all__ = [
    "ACK", "FORMAT_VERSION", "HEADER", "RECORD", "Record", "ScanResult", "checksum",
    "decode_acks", "encode_ack", "encode_record", "scan",
]

FORMAT_VERSION = 1
MAGIC = b"RSJ"
HEADER = MAGIC + bytes([FORMAT_VERSION]) + b"\0\0\0\0"
"""The first 8 bytes of every segment file."""
RECORD = struct.Struct("<IIQB")
ACK = struct.Struct("<QQI")
MAX_PAYLOAD = 16 * 1024 * 1024
"""A length above this is damage, not a record."""
FLAG_SPILLED = 1


class Record(NamedTuple):
    """One record read back: where it starts, its sequence number and payload."""

    offset: int
    end: int
    seq: int
    payload: bytes


class ScanResult(NamedTuple):
    """What :func:`scan` found in a run of bytes."""

    records: list[Record]
    corrupt: int
    """Records (or damaged stretches) skipped because their checksum failed."""
    good_end: int
    """Offset just after the last whole record: anything after it is a torn tail."""


def checksum(seq: int, payload: bytes) -> int:
    """A record's CRC-32: of the payload, started from the low 32 bits of ``seq``."""
    return zlib.crc32(payload, seq & 0xFFFFFFFF)


def encode_record(seq: int, payload: bytes, flags: int = 0) -> bytes:
    """Header plus payload for one record."""
    return RECORD.pack(len(payload), checksum(seq, payload), seq, flags) + payload


def encode_ack(first: int, last: int) -> bytes:
    """One acknowledgement entry covering sequence numbers ``first..last``."""
    pair = struct.pack("<QQ", first, last)
    return pair + struct.pack("<I", zlib.crc32(pair))


def decode_acks(data: bytes) -> Iterator[tuple[int, int]]:
    """The valid ``(first, last)`` ranges in an ack file; damaged entries are skipped."""
    for start in range(0, len(data) - ACK.size + 1, ACK.size):
        first, last, crc = ACK.unpack_from(data, start)
        if zlib.crc32(data[start:start + 16]) == crc and first <= last:
            yield first, last


def version_of(header: bytes) -> int:
    """The format version in a segment header; -1 if it is not one of ours."""
    if len(header) < len(HEADER) or header[:3] != MAGIC:
        return -1
    return header[3]


def _record_at(data: bytes, offset: int) -> tuple[int, Record | None]:
    """(status, record): status 0 ok, 1 torn (incomplete), 2 damaged."""
    if offset + RECORD.size > len(data):
        return 1, None
    length, crc, seq, _flags = RECORD.unpack_from(data, offset)
    if length > MAX_PAYLOAD:
        return 2, None
    end = offset + RECORD.size + length
    if end > len(data):
        return 1, None
    payload = data[offset + RECORD.size:end]
    if checksum(seq, payload) != crc:
        return 2, None
    return 0, Record(offset, end, seq, payload)


def scan(data: bytes, start: int = 0) -> ScanResult:
    """Every valid record in ``data`` from ``start``; damage is skipped, never raised.

    A record whose checksum fails is counted once, then the scan resynchronises
    on the next offset where a whole valid record begins. An incomplete record at
    the end is a torn tail: ``good_end`` stops before it.
    """
    records: list[Record] = []
    corrupt = 0
    offset = start
    good_end = start
    damaged = False
    while offset < len(data):
        status, record = _record_at(data, offset)
        if status == 0 and record is not None:
            records.append(record)
            offset = good_end = record.end
            damaged = False
            continue
        if status == 1 and not damaged:
            break  # torn tail
        if not damaged:
            corrupt += 1
            damaged = True
        offset += 1
    return ScanResult(records, corrupt, good_end)
