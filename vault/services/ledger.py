"""The tombstone ledger: signed shred receipts appended to a file outside the database.

A database restored from a copy taken before a shred has lost that shred's tombstone;
the ledger has not, and is re-applied (vault.services.lifecycle.replay) so the restored
copy never serves shredded data: whole-subject shreds, field shreds and retention
disposal (whose receipts carry `expired_by`, the disposal's "now") alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from vault.services.sink import append_durably

log = logging.getLogger("pdv.ledger")


@dataclass(frozen=True)
class LedgerEntry:
    """One signed receipt of the ledger, with what replaying it needs read out of the receipt."""

    subject_id: str
    fields: tuple[str, ...] | None  # None: the whole subject
    shredded_at: datetime  # aware, UTC
    expired_by: datetime | None  # a retention disposal: only values expired by then went
    receipt: str
    signature: str
    actor: str = ""

    @property
    def key(self) -> tuple[str, str | None, datetime]:
        """As the tombstones table keys it: (subject, fields joined by commas, time)."""
        return self.subject_id, ",".join(self.fields) if self.fields is not None else None, self.shredded_at


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


class TombstoneLedger:
    """Append-only JSON lines of (receipt, signature), one per shredded subject and shred."""

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

    def entries(self) -> list[LedgerEntry]:
        """Every receipt in the ledger, whole-subject and field shreds and disposals, in file order.
        Signatures are not checked here (replay checks those it acts on)."""
        if self.path is None or not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                entry = json.loads(line)
                receipt = json.loads(entry["receipt"])
                fields = receipt.get("fields")
                out.append(LedgerEntry(
                    str(receipt["subject_id"]), tuple(str(f) for f in fields) if fields is not None else None,
                    _instant(receipt["shredded_at"]), _instant(receipt.get("expired_by")),  # type: ignore[arg-type]
                    str(entry["receipt"]), str(entry["signature"]), str(receipt.get("actor", "")),
                ))
            except (ValueError, KeyError, TypeError):
                log.warning("skipping a malformed tombstone ledger line")
        return out
