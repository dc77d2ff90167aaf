"""The tombstone ledger: signed shred receipts appended to a file outside the database.

A database restored from a copy taken before a shred has lost that shred's tombstone;
the ledger has not, and is re-applied at start so the restored copy never serves
shredded data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from vault.services.sink import append_durably

log = logging.getLogger("pdv.ledger")


class TombstoneLedger:
    """Append-only JSON lines of (subject_id, receipt, signature) for whole-subject shreds."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def append(self, signed: list[tuple[str, str]]) -> bool:
        """Append (receipt, signature) pairs durably; True if they are in the file now."""
        if self.path is None or not signed:
            return False
        lines = "".join(json.dumps({"receipt": r, "signature": s}) + "\n" for r, s in signed)
        try:
            append_durably(self.path, lines)
        except OSError as exc:
            # The shred itself is committed; an operator must know the ledger is behind (the
            # next start appends what is missing).
            log.error("could not append %d receipt(s) to the tombstone ledger (%s)", len(signed), exc.strerror)
            return False
        return True

    def entries(self) -> list[tuple[str, str, str]]:
        """(subject_id, receipt, signature) of every whole-subject shred in the ledger."""
        if self.path is None or not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
                receipt = json.loads(entry["receipt"])
                if receipt.get("fields") is None:
                    out.append((receipt["subject_id"], entry["receipt"], entry["signature"]))
            except (ValueError, KeyError, TypeError):
                log.warning("skipping a malformed tombstone ledger line")
        return out
