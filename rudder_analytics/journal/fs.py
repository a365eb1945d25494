"""The file-system seam: every write, sync and read of the journal goes through here.

Tests replace it with one whose ``write`` raises ``ENOSPC`` or that forgets
unsynced writes (a power loss), to prove what the journal does then.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from typing import Any, Callable, Optional

__all__ = ["FileSystem"]

_KEEP_SIZE = 1
"""FALLOC_FL_KEEP_SIZE: reserve blocks past the end; the file's size does not change."""
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
_fallocate: Optional[Callable[..., int]] = None
_fallocate_state = "untried"  # "ready", or "off" where there is no fallocate(2)


def _load_fallocate() -> Optional[Callable[..., int]]:
    """Linux's fallocate(2) through libc, or None elsewhere.

    Not ``os.posix_fallocate``: glibc emulates it by writing to every block where the
    file system lacks fallocate (NFSv3, older ZFS), which is slower than reserving
    nothing; and it changes the file's size."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        function: Any = getattr(libc, "fallocate64", None) or libc.fallocate
    except (ImportError, OSError, AttributeError):  # no ctypes (some embedded builds)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


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

    def preallocate(self, fd: int, offset: int, length: int) -> bool:
        """Reserve disk blocks for ``length`` bytes from ``offset`` of an appended file,
        best effort (True if reserved): writes into reserved blocks cost the kernel less
        than growing the file block by block, and the file's size (what readers see) is
        unchanged. Where the file system cannot, nothing is reserved, and never tried
        again."""
        global _fallocate, _fallocate_state
        if _fallocate_state == "untried":
            _fallocate = _load_fallocate()
            _fallocate_state = "ready" if _fallocate is not None else "off"
        if _fallocate is None or _fallocate_state == "off":
            return False
        if _fallocate(fd, _KEEP_SIZE, offset, length) == 0:
            return True
        import ctypes

        if ctypes.get_errno() in _UNSUPPORTED:
            _fallocate_state = "off"
        return False  # ENOSPC and others: the write that follows reports what matters

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
