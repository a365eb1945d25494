"""The file-system seam: every write, sync and read of the journal goes through here.

Tests replace it with one whose ``write`` raises ``ENOSPC`` or that forgets
unsynced writes (a power loss), to prove what the journal does then.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["FileSystem"]


class FileSystem:
    """Thin wrappers over :mod:`os` calls on file descriptors."""

    def open_append(self, path: str) -> int:
        """Open (create) ``path`` for appending; returns a descriptor."""
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, fd: int, *parts: bytes) -> None:
        """Write all of ``parts``, one after the other (one system call as a rule)."""
        written = os.writev(fd, parts)
        total = sum(map(len, parts))
        if written < total:  # short write (rare): the rest, from where it stopped
            view = memoryview(b"".join(parts))[written:]
            while view:
                view = view[os.write(fd, view):]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def read(self, path: str, start: int = 0, size: int = -1) -> bytes:
        """Bytes of ``path`` from ``start`` (all of the rest when ``size`` < 0)."""
        with open(path, "rb") as file:
            file.seek(start)
            return file.read(size)

    def truncate(self, path: str, size: int) -> None:
        os.truncate(path, size)

    def remove(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
