"""Tokenize: validate a batch, encrypt each field under its subject's DEK, store, log, answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.crypto.index import blind_index
from vault.domain import WrappedKey
from vault.errors import InvalidInput, NotFound, PdvError, RequestIdReused
from vault.services.common import MAX_REQUEST_ID, Caller, Limits, access_row, require_batch, require_label
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyRing
from vault.storage.store import KeyRow, Store, Tx

SUBJECT_PREFIX = "sub_"


def new_subject_id() -> str:
    return SUBJECT_PREFIX + secrets.token_urlsafe(16)


def is_subject_id(text: str) -> bool:
    return len(text) == 26 and text.startswith(SUBJECT_PREFIX) and tk.is_opaque_token("pdv_" + text[4:])


@dataclass(frozen=True)
class RecordIn:
    """One person's fields as sent. Holds personal values: never log or repr it."""

    subject_id: str
    fields: dict[str, str] = dc_field(repr=False)


@dataclass(frozen=True)
class ItemProblem:
    index: int
    field: str
    error: PdvError


@dataclass(frozen=True)
class TokenizeOutcome:
    results: list[tuple[str, dict[str, str]]]  # per record: (subject id, field → token); ("", {}) if rejected
    errors: list[ItemProblem]

    def to_json(self) -> str:
        return json.dumps({"results": self.results, "errors": [[p.index, p.field, type(p.error).__name__, str(p.error)] for p in self.errors]})


@dataclass
class _Prepared:
    index: int
    subject_id: str  # "" for a new subject
    values: list[tuple[FieldSpec, str]] = dc_field(repr=False)  # (spec, normalized value)


class TokenizeService:
    def __init__(
        self, store: Store, keyring: KeyRing, index_keys: IndexKeys, catalog: Catalog, limits: Limits,
        clock: Callable[[], datetime],
    ) -> None:
        self.store, self.keyring, self.index_keys = store, keyring, index_keys
        self.catalog, self.limits, self.clock = catalog, limits, clock

    def tokenize(
        self, caller: Caller, purpose: str, source: str, notice_id: str, records: list[RecordIn], atomic: bool = True
    ) -> TokenizeOutcome:
        """Store each record's fields encrypted and return one token per field.

        Raises:
            InvalidInput: a batch-level problem, or (atomic mode) any invalid record; names items only.
            RequestIdReused: the request id names a different earlier request.
            KeyUnavailable, StoreUnavailable: a dependency is down; nothing was written.
        """
        require_label("request_id", caller.request_id, MAX_REQUEST_ID)
        require_label("purpose", purpose)
        require_label("source", source)
        if notice_id:
            require_label("notice_id", notice_id)
        require_batch("records", len(records), self.limits)
        require_batch("fields in the batch", sum(len(r.fields) for r in records), self.limits)

        fingerprint = self._fingerprint(purpose, source, notice_id, atomic, records)
        with self.store.transaction() as tx:
            earlier = tx.get_request(caller.principal, caller.request_id)
        if earlier is not None:
            return self._replay(earlier, fingerprint)

        prepared, problems = self._validate(purpose, records)
        now = self.clock()
        if problems and atomic:
            self._log_rejected(caller, purpose, problems, now)
            raise InvalidInput(_summarize(problems))
        new_count = sum(1 for p in prepared if not p.subject_id)
        fresh_keys = self.keyring.new_keys(new_count)  # Vault, before the transaction opens

        with self.store.transaction() as tx:
            outcome = self._store(
                tx, caller, purpose, source, notice_id, prepared, problems, fresh_keys, now, atomic, len(records)
            )
            tx.log_access([access_row(now, caller, "tokenize", purpose, "invalid", field=p.field or None) for p in outcome.errors])
            tx.save_request(caller.principal, caller.request_id, fingerprint, outcome.to_json(), now)
        return outcome

    # --- steps -----------------------------------------------------------------------
    def _validate(self, purpose: str, records: list[RecordIn]) -> tuple[list[_Prepared], list[ItemProblem]]:
        prepared, problems = [], []
        for i, record in enumerate(records):
            try:
                prepared.append(_Prepared(i, self._check_subject(record.subject_id), self._normalize(purpose, record)))
            except _ItemError as err:
                problems.append(ItemProblem(i, err.field, err.error))
        return prepared, problems

    @staticmethod
    def _check_subject(subject_id: str) -> str:
        if subject_id and not is_subject_id(subject_id):
            raise _ItemError("", InvalidInput("malformed subject_id"))
        return subject_id

    def _normalize(self, purpose: str, record: RecordIn) -> list[tuple[FieldSpec, str]]:
        if not record.fields:
            raise _ItemError("", InvalidInput("record has no fields"))
        out = []
        for name, value in record.fields.items():
            try:
                spec = self.catalog.field(name)
                if purpose not in spec.purposes:
                    raise InvalidInput(f"field {name!r} may not be collected for purpose {purpose!r}")
                if not value:
                    raise InvalidInput("value is empty")
                if len(value.encode()) > self.limits.max_value_bytes:
                    raise InvalidInput(f"value is larger than {self.limits.max_value_bytes} bytes")
                out.append((spec, spec.normalize(value)))
            except PdvError as exc:
                raise _ItemError(name, exc) from None
        return out

    def _store(
        self, tx: Tx, caller: Caller, purpose: str, source: str, notice_id: str, prepared: list[_Prepared],
        problems: list[ItemProblem], fresh_keys: list, now: datetime, atomic: bool, record_count: int,
    ) -> TokenizeOutcome:
        keys = self._existing_keys(tx, prepared, problems, atomic, now)
        tokens = self._tokens(tx, prepared)
        # A deterministic value re-collected for an existing subject keeps its one row.
        known = tx.existing_values(
            [(tokens[(p.index, spec.name)], spec.name, p.subject_id)
             for p in prepared if p.subject_id for spec, _ in p.values if spec.token_kind is TokenKind.DETERMINISTIC]
        )
        fresh = iter(fresh_keys)
        subjects, key_rows, counts = [], [], []
        for p in prepared:
            if not p.subject_id:
                secret, wrapped = next(fresh)
                p.subject_id = new_subject_id()
                keys[p.subject_id] = self.keyring.remember((p.subject_id, 1), secret)
                subjects.append({"id": p.subject_id, "created_at": now, "created_by": caller.principal})
                key_rows.append(_key_row(p.subject_id, 1, wrapped.ciphertext, len(p.values), now))
            else:
                counts.append((p.subject_id, keys[p.subject_id].version, len(p.values)))
        value_rows, log_rows = [], []
        results: list[tuple[str, dict[str, str]]] = [("", {}) for _ in range(record_count)]
        for p in prepared:
            data_key = keys[p.subject_id]
            record_tokens = {}
            for spec, value in p.values:
                token = tokens[(p.index, spec.name)]
                record_tokens[spec.name] = token
                log_rows.append(access_row(now, caller, "tokenize", purpose, "ok", p.subject_id, spec.name, token))
                if (token, spec.name, p.subject_id) in known:
                    continue
                known.add((token, spec.name, p.subject_id))
                value_rows.append(self._value_row(data_key, p.subject_id, spec, token, value, purpose, source, notice_id, now))
            results[p.index] = (p.subject_id, record_tokens)
        tx.add_subjects(subjects)
        tx.add_keys(key_rows)
        tx.count_encryptions(counts)
        tx.add_values(value_rows)
        tx.log_access(log_rows)
        return TokenizeOutcome(results, sorted(problems, key=lambda p: p.index))

    def _existing_keys(
        self, tx: Tx, prepared: list[_Prepared], problems: list[ItemProblem], atomic: bool, now: datetime
    ) -> dict[str, DataKey]:
        given = {p.subject_id for p in prepared if p.subject_id}
        rows = tx.current_keys(sorted(given))
        unknown = [p for p in prepared if p.subject_id and p.subject_id not in rows]
        if unknown:
            if atomic:
                raise NotFound(_summarize([ItemProblem(p.index, "", NotFound("unknown subject_id")) for p in unknown]))
            for p in unknown:
                problems.append(ItemProblem(p.index, "", NotFound("unknown subject_id")))
                prepared.remove(p)
        needed: dict[str, int] = {}
        for p in prepared:
            if p.subject_id:
                needed[p.subject_id] = needed.get(p.subject_id, 0) + len(p.values)
        worn = [rows[s] for s, n in needed.items() if rows[s].encryptions + n > self.limits.dek_max_encryptions]
        keys = {k[0]: v for k, v in self.keyring.data_keys({(r.subject_id, r.version): r.wrapped for r in rows.values() if r not in worn}).items()}
        keys.update(self._rotate_worn(tx, worn, now))
        return keys

    def _rotate_worn(self, tx: Tx, worn: list[KeyRow], now: datetime) -> dict[str, DataKey]:
        """Give a subject whose DEK is near its encryption bound a fresh DEK version."""
        out = {}
        rows = []
        for row, (secret, wrapped) in zip(worn, self.keyring.new_keys(len(worn))):
            version = row.version + 1
            out[row.subject_id] = self.keyring.remember((row.subject_id, version), secret)
            rows.append(_key_row(row.subject_id, version, wrapped.ciphertext, 0, now))
        tx.add_keys(rows)
        return out

    def _tokens(self, tx: Tx, prepared: list[_Prepared]) -> dict[tuple[int, str], str]:
        out: dict[tuple[int, str], str] = {}
        shaped: dict[str, list[tuple[int, str]]] = {}
        for p in prepared:
            for spec, value in p.values:
                if spec.token_kind is TokenKind.DETERMINISTIC:
                    out[(p.index, spec.name)] = tk.deterministic_token(self.index_keys.token_key(spec.name), value)
                elif spec.token_kind is TokenKind.FORMAT_PRESERVING:
                    shaped.setdefault(spec.name, []).append((p.index, value))
                else:
                    out[(p.index, spec.name)] = tk.random_token()
        for name, items in shaped.items():
            out.update(self._shaped_tokens(tx, name, items))
        return out

    @staticmethod
    def _shaped_tokens(tx: Tx, name: str, items: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
        """Format-preserving tokens, unique within the field and never equal to their value."""
        out: dict[tuple[int, str], str] = {}
        pending = items
        for _ in range(64):
            if not pending:
                return out
            proposed = {i: tk.format_preserving_token(v) for i, v in pending}
            taken = tx.taken_tokens(name, list(proposed.values())) | {t for t in out.values()}
            retry = []
            for i, value in pending:
                token = proposed[i]
                if token in taken or token == value:
                    retry.append((i, value))
                else:
                    taken.add(token)
                    out[(i, name)] = token
            pending = retry
        raise InvalidInput(f"field {name!r}: no free format-preserving token; the token space is exhausted")

    def _value_row(
        self, data_key: DataKey, subject_id: str, spec: FieldSpec, token: str, value: str,
        purpose: str, source: str, notice_id: str, now: datetime,
    ) -> tuple:
        # VALUE_COLUMNS order.
        return (
            subject_id, spec.name, token, data_key.version,
            data_key.seal(value.encode(), row_aad(subject_id, spec.name, token, data_key.version)),
            blind_index(self.index_keys.index_key(spec.name), value) if spec.searchable else None,
            purpose, source, notice_id or None, now, now + spec.retention_for(purpose),
        )

    def _fingerprint(self, purpose: str, source: str, notice_id: str, atomic: bool, records: list[RecordIn]) -> bytes:
        # Keyed, so the stored fingerprint cannot be used to confirm a guessed value.
        body = json.dumps([purpose, source, notice_id, atomic, [[r.subject_id, sorted(r.fields.items())] for r in records]])
        return hmac.digest(self.index_keys.fingerprint_key, body.encode(), hashlib.sha256)

    @staticmethod
    def _replay(earlier: tuple[bytes, str], fingerprint: bytes) -> TokenizeOutcome:
        stored_fingerprint, response = earlier
        if not hmac.compare_digest(stored_fingerprint, fingerprint):
            raise RequestIdReused()
        body = json.loads(response)
        return TokenizeOutcome(
            [(s, dict(t)) for s, t in body["results"]],
            [ItemProblem(i, f, _ERRORS.get(kind, InvalidInput)(msg)) for i, f, kind, msg in body["errors"]],
        )

    def _log_rejected(self, caller: Caller, purpose: str, problems: list[ItemProblem], now: datetime) -> None:
        with self.store.transaction() as tx:
            tx.log_access([access_row(now, caller, "tokenize", purpose, "invalid", field=p.field or None) for p in problems])


class _ItemError(Exception):
    def __init__(self, field: str, error: PdvError) -> None:
        self.field, self.error = field, error


_ERRORS = {"InvalidInput": InvalidInput, "NotFound": NotFound, "UnknownField": InvalidInput, "InvalidValue": InvalidInput}


def _key_row(subject_id: str, version: int, wrapped: str, encryptions: int, now: datetime) -> dict:
    return {
        "subject_id": subject_id, "version": version, "wrapped": wrapped,
        "kek_version": WrappedKey(wrapped).kek_version, "encryptions": encryptions, "created_at": now,
    }


def _summarize(problems: list[ItemProblem], shown: int = 5) -> str:
    parts = [_describe(p) for p in problems[:shown]]
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(parts) + more


def _describe(p: ItemProblem) -> str:
    where = f"records[{p.index}]" + (f".fields[{p.field!r}]" if p.field else "")
    return f"{where}: {p.error}"
