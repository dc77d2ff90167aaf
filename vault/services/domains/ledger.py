"""The token issuance ledger, read: who holds tokens of a subject (for the access report and
for events to holders). Tokenize, Lookup and Translate write it in their own transactions."""

from __future__ import annotations

from vault.storage import holders as db
from vault.storage.holders import Holder
from vault.storage.store import Store


class TokenLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def holders(self, subject_id: str) -> list[Holder]:
        """Every (principal, domain) handed tokens of `subject_id` (a tokenize answer, a lookup
        match or a translation), with the first and last time, oldest first; [] for a subject
        never answered with, or shredded. Reads only: the caller decides who may ask."""
        with self.store.snapshot() as tx:
            return db.holders_of(tx, subject_id)
