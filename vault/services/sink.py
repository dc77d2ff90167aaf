"""Durable appends to the files that live outside the database (tombstone ledger, checkpoints)."""

from __future__ import annotations

import errno
import os
from pathlib import Path


def append_durably(path: Path, text: str) -> None:
    """Append `text` to `path` (created 0600) and fsync before returning.

    If an earlier append was cut short (a full disk, a crash mid-write), the file does not
    end with a newline: `text` then starts on a line of its own, so one torn line never
    swallows the next record.

    Raises:
        OSError: the file cannot be written, or only part of `text` was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = text.encode()
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, "short write")
        os.fsync(fd)
    finally:
        os.close(fd)
