"""Reading journals from outside, without changing them (``rudder-analytics journal``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Optional

from .format import HEADER, decode_acks, payloads, scan, version_of
from .segments import segment_index
from .store import journal_dirs, owner_alive, read_meta

__all__ = ["JournalInfo", "inspect_dir"]


@dataclass
class JournalInfo:
    """What one journal directory holds."""

    path: str
    owner_alive: bool
    pid: Optional[int] = None
    url: Optional[str] = None
    key_sha256: Optional[str] = None
    events: int = 0
    """Events not yet acknowledged (what would be sent)."""
    size_bytes: int = 0
    oldest: Optional[str] = None
    """The oldest pending event's ``originalTimestamp`` (or ``timestamp``)."""
    damaged: int = 0
    """Events in frames that fail their checksum, plus segments not of our format."""
    payloads: list[bytes] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "payloads"}


def _event_time(payload: bytes) -> Optional[str]:
    try:
        message = json.loads(b"{" + payload)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    value = message.get("originalTimestamp") or message.get("timestamp")
    return value if isinstance(value, str) else None


def inspect_journal(path: str, keep_payloads: bool = False) -> JournalInfo:
    """Count what ``path`` (one journal directory) holds; read only."""
    meta = read_meta(path) or {}
    info = JournalInfo(path, owner_alive(path), meta.get("pid"), meta.get("url"),
                       meta.get("key_sha256"))
    for name in sorted(os.listdir(path)):
        if segment_index(name) is None:
            continue
        full = os.path.join(path, name)
        try:
            with open(full, "rb") as file:
                data = file.read()
            acks_path = full[:-4] + ".ack"
            acks = b""
            if os.path.exists(acks_path):
                with open(acks_path, "rb") as file:
                    acks = file.read()
        except OSError:
            info.damaged += 1
            continue
        info.size_bytes += len(data)
        if version_of(data[:len(HEADER)]) != HEADER[3]:
            info.damaged += 1
            continue
        acked: set[int] = set()
        for first, last in decode_acks(acks):
            acked.update(range(first, min(last, first + 10_000_000) + 1))
        result = scan(data, len(HEADER))
        info.damaged += result.corrupt
        for frame in result.frames:
            events = payloads(frame)
            for seq, payload in enumerate(events, frame.first):
                if seq in acked:
                    continue
                info.events += 1
                if info.oldest is None:
                    info.oldest = _event_time(payload)
                if keep_payloads:
                    info.payloads.append(payload)
    return info


def inspect_dir(root: str, keep_payloads: bool = False) -> list[JournalInfo]:
    """Every journal under ``root`` (a ``persist_dir``), or ``root`` itself if it is one."""
    if read_meta(root) is not None:
        return [inspect_journal(root, keep_payloads)]
    return [inspect_journal(path, keep_payloads) for path in journal_dirs(root)]
