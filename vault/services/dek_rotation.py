"""DEK rotation on demand: re-encrypt one subject's values under a fresh data key.

Tokenize already starts a new DEK version when a key is worn (for new values only); this
moves every existing value too, then deletes the old wrapped keys, so nothing stays sealed
under them. Tokens, blind indexes and expiries do not change: only key_version and the
ciphertext (whose associated data names the key version) do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.crypto.aead import DataKey, row_aad
from vault.errors import Conflict, NotFound
from vault.services.common import Caller, access_row
from vault.services.keyring import KeyRing
from vault.services.tokenize_model import require_subject_id
from vault.storage import disposal as db
from vault.storage.store import Store

log = logging.getLogger("pdv.dek_rotation")

ATTEMPTS = 3


@dataclass(frozen=True)
class DekRotation:
    subject_id: str
    old_versions: tuple[int, ...]
    new_version: int
    values: int


class DekRotationService:
    def __init__(self, store: Store, keyring: KeyRing, clock: Callable[[], datetime]) -> None:
        self.store, self.keyring, self.clock = store, keyring, clock

    def rotate_subject(self, caller: Caller, subject_id: str) -> DekRotation:
        """Re-encrypt every value of the subject under a new DEK version; delete the old DEK rows.

        Raises:
            InvalidInput: malformed subject id.
            NotFound: no such subject (never stored, or shredded).
            Conflict: the subject kept changing (concurrent tokenize or shred); retry.
            KeyUnavailable, StoreUnavailable: a dependency is down; nothing changed.
        """
        require_subject_id(subject_id)
        for _ in range(ATTEMPTS):
            try:
                return self._attempt(caller, subject_id)
            except _Changed:
                continue
        raise Conflict("the subject kept changing during the DEK rotation; retry it")

    def _attempt(self, caller: Caller, subject_id: str) -> DekRotation:
        with self.store.snapshot() as tx:
            wrapped = db.wrapped_keys(tx, [subject_id])
            values = db.subject_values(tx, subject_id)
        if not wrapped:
            raise NotFound("unknown subject_id")
        old = self.keyring.data_keys(wrapped)
        new_version = max(v for _, v in wrapped) + 1
        ((secret, new_wrapped),) = self.keyring.new_keys(1)
        new_key = DataKey(secret, new_version)
        resealed = []
        for row_id, field, token, version, ciphertext in values:
            plain = old[(subject_id, version)].open(ciphertext, row_aad(subject_id, field, token, version))
            resealed.append((row_id, version, new_version,
                             new_key.seal(plain, row_aad(subject_id, field, token, new_version))))
        now = self.clock()
        with self.store.transaction() as tx:
            if db.wrapped_keys(tx, [subject_id]) != wrapped:
                raise _Changed()  # a worn-key rotation, rewrap or shred got in between
            # A concurrent writer making the same version fails here (primary key): Conflict.
            tx.add_keys([(subject_id, new_version, new_wrapped.ciphertext, new_wrapped.kek_version, len(values), now)])
            if db.reseal_values(tx, subject_id, resealed) != len(resealed):
                raise _Changed()
            if len(db.subject_values(tx, subject_id)) != len(resealed):
                raise _Changed()  # a value was added under an old key: deleting it would cascade
            db.delete_keys_below(tx, subject_id, new_version)
            tx.log_access([access_row(now, caller, "rotate_dek", "key_management", "ok", subject_id)])
        self.keyring.evict(wrapped)
        self.keyring.remember((subject_id, new_version), secret)
        log.info("DEK rotated: %d value(s) re-encrypted under v%d", len(resealed), new_version)
        return DekRotation(subject_id, tuple(sorted(v for _, v in wrapped)), new_version, len(resealed))


class _Changed(Exception):
    pass
