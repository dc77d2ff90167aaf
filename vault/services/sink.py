"""Durable appends to the files that live outside the database (tombstone ledger, checkpoints)."""

from __future__ import annotations

import os
from pathlib import Path


def append_durably(path: Path, text: str) -> None:
    """Append `text` to `path` (created 0600) and fsync before returning.

    Raises:
        OSError: the file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
