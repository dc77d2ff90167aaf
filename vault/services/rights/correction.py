"""Correcting a value: a resident's right to have what is held about them put right.

`correct_value` replaces every value a subject holds of one field (a value collected under
several purposes is held once per purpose: "correct my email" means all of them) with the
catalog-normalized new value, sealed under the subject's current DEK with a fresh nonce and
the row's own associated data. Random and format-preserving tokens stay, so systems holding
them need do nothing. A deterministic token is a function of the value, so it follows it:
the old token stops reaching this subject's value (it then answers like any unknown token,
unless other subjects still share it), since a token of the wrong value left pointing at the
person would keep linking them to it. Two values of a deterministic field that correct to
the same value share one token, and a subject holds a deterministic value once (as tokenize
keeps it): the oldest row is kept and the others are merged into it.

Each corrected value gets a history row: when, who, why, the case and request ids, and the
HMAC of the old value under a key of its own (IndexKeys.correction_key), never the value.
History rows cascade from their value, so a shred or disposal destroys them with it.

Who may correct is decided before any read (vault/services/subject_access.py); legal holds
do not block a correction (a hold stops destruction, and a correction destroys nothing the
case needs that a fingerprint would not show). An unknown or shredded subject, or a field
the subject does not hold, are one and the same NOT_FOUND. Work is split as tokenize's: the
Vault calls and encryption happen between a snapshot read and a short write transaction,
which re-reads the rows (locked on PostgreSQL) and starts again if anything moved.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.crypto.index import blind_index
from vault.errors import Conflict, InvalidInput, NotFound, RequestIdReused
from vault.services.common import MAX_REASON, MAX_REQUEST_ID, Caller, Limits, access_row, require_label
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyRing
from vault.services.rights.links import link, require_open_case
from vault.services.tokenize_model import is_subject_id, require_subject_id
from vault.storage import corrections as db
from vault.storage import events
from vault.storage.event_kinds import CORRECTED
from vault.storage.rows import KeyRow
from vault.storage.store import Store, Tx

ATTEMPTS = 3
ACTION = "correct"
LOG_PURPOSE = "correction"  # what a refused or failed correction is logged under: it names no value's purpose


@dataclass(frozen=True, slots=True)
class CorrectedValue:
    """One stored value after a correction: its collection purpose and token."""

    purpose: str
    token: str
    token_changed: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the write transaction stores, prepared outside it."""

    seen: list[tuple[int, int, bytes]]  # (value id, key version, ciphertext) as read
    key_version: int
    new_key: tuple | None  # a fresh DEK row (KEY_COLUMNS) when the current one is worn
    rewrites: list[tuple[int, str, int, bytes, bytes | None]]
    merged: dict[int, int]  # merged value id -> the id of the value it merges into (the oldest of its domain)
    history: list[db.CorrectionRow]
    # For the events to holders: (subject, domain, field, token, previous token or "") per value.
    tokens: list[tuple[str, str, str, str, str]]


class CorrectionService:
    def __init__(
        self, store: Store, keyring: KeyRing, index_keys: IndexKeys, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.keyring, self.index_keys = store, keyring, index_keys
        self.catalog, self.limits, self.clock = catalog, limits, clock

    def correct_value(
        self, caller: Caller, subject_id: str, field: str, new_value: str, reason: str, case_id: str | None = None,
    ) -> list[CorrectedValue]:
        """Replace every value `subject_id` holds of `field` with `new_value` (idempotent by request id).
        With `case_id` (an open privacy request's), the correction is linked to the request in
        its own transaction, as shreds and consent changes are (links.py).

        The caller must already have been allowed by SubjectAccess.correct.

        Returns:
            One CorrectedValue per value corrected, oldest first.
        Raises:
            InvalidInput: malformed subject id, request id, reason or case id, or a value the
                field's rules refuse (named by field, never echoed).
            NotFound: the subject holds no value of the field (unknown, shredded, or never
                collected), or `case_id` names no open privacy request; nothing was changed.
            RequestIdReused: the request id names a different earlier request of this caller.
            KeyUnavailable, StoreUnavailable: a dependency is down; nothing was written.
        """
        require_label("request_id", caller.request_id, MAX_REQUEST_ID)
        spec = self.catalog.field(field)
        try:
            require_subject_id(subject_id)
            require_label("reason", reason, MAX_REASON)
            normalized = self._normalize(spec, new_value)
            if case_id:
                with self.store.snapshot() as tx:
                    require_open_case(tx, case_id)
        except InvalidInput:
            self._log_failure(caller, subject_id if is_subject_id(subject_id) else None, field, "invalid")
            raise
        except NotFound:
            self._log_failure(caller, subject_id, field, "no_open_case")
            raise
        fingerprint = self._request_fingerprint(subject_id, field, normalized, reason, case_id)
        for attempt in range(ATTEMPTS):
            try:
                return self._attempt(caller, subject_id, spec, normalized, reason, case_id, fingerprint)
            except Conflict:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def corrections(self, caller: Caller, subject_id: str, fields: list[str]) -> list[db.CorrectionRow]:
        """The subject's correction history of `fields` (those SubjectAccess lets the caller see), oldest first.

        Raises:
            InvalidInput: malformed subject id.
        """
        require_subject_id(subject_id)
        now = self.clock()
        with self.store.transaction() as tx:
            rows = db.history_of_subject(tx, subject_id, fields)
            tx.log_access([access_row(now, caller, ACTION, "correction_report", "ok", subject_id)])
        return rows

    # --- steps ---------------------------------------------------------------------
    def _normalize(self, spec: FieldSpec, value: str) -> str:
        if not value:
            raise InvalidInput("new_value is empty")
        if len(value.encode()) > self.limits.max_value_bytes:
            raise InvalidInput(f"new_value is larger than {self.limits.max_value_bytes} bytes")
        return spec.normalize(value)

    def _attempt(
        self, caller: Caller, subject_id: str, spec: FieldSpec, normalized: str, reason: str, case_id: str | None,
        fingerprint: bytes,
    ) -> list[CorrectedValue]:
        with self.store.snapshot() as tx:
            earlier = db.history_of_request(tx, caller.principal, caller.request_id)
            if earlier:
                return _replay(earlier, fingerprint)
            stored = db.values_of(tx, subject_id, spec.name)
            key = tx.current_keys([subject_id]).get(subject_id)
        if not stored or key is None:
            self._log_failure(caller, subject_id, spec.name, "not_found")
            raise NotFound(f"no value of field {spec.name!r} is held for this subject "
                           "(unknown or shredded subject, or a field it does not hold)")
        plan = self._plan(caller, subject_id, spec, normalized, reason, case_id, fingerprint, stored, key)
        with self.store.transaction() as tx:
            return self._write(tx, caller, subject_id, spec.name, case_id, fingerprint, plan)

    def _write(
        self, tx: Tx, caller: Caller, subject_id: str, field: str, case_id: str | None, fingerprint: bytes, plan: _Plan,
    ) -> list[CorrectedValue]:
        again = db.history_of_request(tx, caller.principal, caller.request_id)
        if again:
            return _replay(again, fingerprint)
        if case_id:
            require_open_case(tx, case_id)  # again: it may have closed since
        now_rows = db.values_of(tx, subject_id, field, lock=True)
        current = tx.current_keys([subject_id]).get(subject_id)
        if [(v.id, v.key_version, v.ciphertext) for v in now_rows] != plan.seen or current is None \
                or current.version != plan.key_version:
            raise Conflict("the subject's values changed during the correction; retry it")
        if plan.new_key is not None:
            tx.add_keys([plan.new_key])
        else:
            tx.count_encryptions([(subject_id, plan.key_version, len(plan.rewrites))])
        # Merged rows go first, their history moved to the row they merge into: the survivor
        # may take the token one of them holds (the unique token index), and deleting a value
        # deletes its history.
        for into in sorted(set(plan.merged.values())):
            db.move_history(tx, [m for m, i in plan.merged.items() if i == into], into)
        db.drop_values(tx, list(plan.merged))
        db.rewrite_values(tx, plan.rewrites)
        db.add_history(tx, plan.history)
        events.record(tx, events.Change(CORRECTED, plan.history[0].corrected_at, {subject_id: caller.request_id},
                                        [field], tokens=plan.tokens))
        tx.log_access([
            access_row(h.corrected_at, caller, ACTION, h.purpose, "merged" if value_id in plan.merged else "ok",
                       subject_id, field, h.token)
            for h, (value_id, _, _) in zip(plan.history, plan.seen)
        ])
        if case_id:
            link(tx, case_id, plan.history[0].corrected_at, caller, "correction", [(subject_id, "corrected")], field)
        return _answer(plan.history)

    def _plan(
        self, caller: Caller, subject_id: str, spec: FieldSpec, normalized: str, reason: str, case_id: str | None,
        fingerprint: bytes, stored: list[db.StoredValue], key: KeyRow,
    ) -> _Plan:
        wanted = {(subject_id, v.key_version): v.wrapped for v in stored}
        wanted[(subject_id, key.version)] = key.wrapped
        keys = self.keyring.data_keys(wanted)  # at most one batched Vault call
        now = self.clock()
        deterministic = spec.token_kind is TokenKind.DETERMINISTIC
        # Tokens and blind indexes are keyed per token domain: each row keeps its own domain's.
        domains = {v.domain for v in stored}
        new_tokens = {d: tk.deterministic_token(self.index_keys.token_key(spec.name, d), normalized) for d in domains} \
            if deterministic else {}
        indexes = {d: blind_index(self.index_keys.index_key(spec.name, d), normalized) for d in domains} \
            if spec.searchable else {}
        # A deterministic value is held once per subject and domain: rows that now share a token merge into
        # the oldest of their domain.
        survivor: dict[str, int] = {}
        for v in stored:
            survivor.setdefault(v.domain, v.id)
        rewritten = [v for v in stored if survivor[v.domain] == v.id] if deterministic else stored
        sealer, version, new_key = keys[(subject_id, key.version)], key.version, None
        if key.encryptions + len(rewritten) > self.limits.dek_max_encryptions:
            ((secret, wrapped),) = self.keyring.new_keys(1)
            version = key.version + 1
            sealer = self.keyring.remember((subject_id, version), secret)
            new_key = (subject_id, version, wrapped.ciphertext, wrapped.kek_version, len(rewritten), now)  # KEY_COLUMNS
        rewrites = []
        for v in rewritten:
            token = new_tokens.get(v.domain) or v.token
            sealed = sealer.seal(normalized.encode(), row_aad(subject_id, spec.name, token, version))
            rewrites.append((v.id, token, version, sealed, indexes.get(v.domain)))
        fingerprint_key = self.index_keys.correction_key(spec.name)
        history = []
        for v in stored:
            old = _open(keys[(subject_id, v.key_version)], subject_id, spec.name, v)
            new_token = new_tokens.get(v.domain)
            history.append(db.CorrectionRow(
                survivor[v.domain] if deterministic else v.id, subject_id, spec.name, v.purpose, new_token or v.token,
                bool(new_token) and new_token != v.token, hmac.digest(fingerprint_key, old, hashlib.sha256),
                now, caller.principal, reason, case_id, caller.request_id, fingerprint,
            ))
        merged = {v.id: survivor[v.domain] for v in stored if survivor[v.domain] != v.id} if deterministic else {}
        tokens = [(subject_id, v.domain, spec.name, new_tokens.get(v.domain) or v.token,
                   v.token if new_tokens.get(v.domain, v.token) != v.token else "") for v in stored]
        return _Plan([(v.id, v.key_version, v.ciphertext) for v in stored], key.version, new_key, rewrites, merged, history,
                     tokens)

    def _request_fingerprint(self, subject_id: str, field: str, normalized: str, reason: str, case_id: str | None) -> bytes:
        # Keyed, so the stored fingerprint cannot be used to confirm a guessed value.
        body = json.dumps(["correct", subject_id, field, normalized, reason, case_id or ""])
        return hmac.digest(self.index_keys.fingerprint_key, body.encode(), hashlib.sha256)

    def _log_failure(self, caller: Caller, subject_id: str | None, field: str, outcome: str) -> None:
        now = self.clock()
        with self.store.transaction() as tx:
            tx.log_access([access_row(now, caller, ACTION, LOG_PURPOSE, outcome, subject_id, field)])


def _open(data_key: DataKey, subject_id: str, field: str, value: db.StoredValue) -> bytes:
    return data_key.open(value.ciphertext, row_aad(subject_id, field, value.token, value.key_version))


def _answer(history: list[db.CorrectionRow]) -> list[CorrectedValue]:
    return [CorrectedValue(h.purpose, h.token, h.token_changed) for h in history]


def _replay(earlier: list[db.CorrectionRow], fingerprint: bytes) -> list[CorrectedValue]:
    if not all(hmac.compare_digest(h.request_fingerprint, fingerprint) for h in earlier):
        raise RequestIdReused()
    return _answer(earlier)

