"""Tokenize: validate a batch, encrypt each field under its subject's DEK, store, log, answer.

The work is split so the write transaction stays short: validation, Vault calls,
token generation and encryption happen before it; the transaction only re-checks
what a concurrent writer could have changed and inserts.

Tokens are issued in the caller's token domain (vault/services/domains): deterministic
tokens and blind indexes under that domain's keys, and every value row records its domain.
The subjects answered go in the token issuance ledger in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import datetime

from vault.catalog import Catalog, FieldSpec, TokenKind
from vault.crypto import tokens as tk
from vault.crypto.aead import DataKey, row_aad
from vault.crypto.index import blind_index_bytes
from vault.domain import WrappedKey
from vault.errors import Conflict, InvalidInput, NotFound, PdvError, PermissionDenied, RequestIdReused, shown_field
from vault.policy import APPEND, TOKENIZE
from vault.services.access import DENIED, AccessControl
from vault.services.common import (
    MAX_PURPOSE, MAX_REQUEST_ID, Caller, Limits, access_row, refusals_logged, require_batch, require_label,
)
from vault.services.group_commit import GroupCommitter
from vault.services.index_keys import IndexKeys
from vault.services.keyring import KeyRing
from vault.services.locators import SequentialTokens
from vault.services.tokenize_model import (
    ItemProblem, Plan, Prepared, RecordIn, TokenizeOutcome, is_subject_id, new_subject_id, summarize,
)
from vault.storage.rows import SCRUBBED_FINGERPRINT, KeyRow
from vault.storage.store import Store, Tx

# A concurrent writer can take a format-preserving token or the request id between our
# read and our write; the loser starts again (and then sees the winner's result).
ATTEMPTS = 3
_RANDOM, _DETERMINISTIC = TokenKind.RANDOM, TokenKind.DETERMINISTIC


class TokenizeService:
    def __init__(
        self, store: Store, committer: GroupCommitter, keyring: KeyRing, index_keys: IndexKeys, catalog: Catalog,
        limits: Limits, clock: Callable[[], datetime], access: AccessControl, tokens: SequentialTokens,
    ) -> None:
        self.store, self.committer, self.keyring, self.index_keys = store, committer, keyring, index_keys
        self.tokens = tokens
        self.catalog, self.limits, self.clock, self.access = catalog, limits, clock, access

    def tokenize(
        self, caller: Caller, purpose: str, source: str, notice_id: str, records: list[RecordIn], atomic: bool = True,
        notice_given: bool | None = None,
    ) -> TokenizeOutcome:
        """Store each record's fields encrypted and return one token per field.

        `notice_given` says whether the person was told of the collection; None means
        "a notice was given exactly when `notice_id` names one". It is stored with each value.

        Raises:
            InvalidInput: a batch-level problem, or (atomic mode) any invalid record; names items only.
            PermissionDenied: (atomic mode) the policy does not grant `tokenize` on a field for the purpose.
            NotFound: (atomic mode) a record names an unknown subject.
            RequestIdReused: the request id names a different earlier request.
            KeyUnavailable, StoreUnavailable: a dependency is down; nothing was written.

        The request id is optional: without one nothing is kept for a retry (a retry makes
        new tokens), and the access log gets a generated id to tie the call's rows together.
        """
        now = self.clock()
        with refusals_logged(self.committer.run, now, caller, "tokenize", purpose):
            if caller.request_id:
                require_label("request_id", caller.request_id, MAX_REQUEST_ID)
            require_label("purpose", purpose, MAX_PURPOSE)
        remembered = bool(caller.request_id)
        if not remembered:
            caller = Caller(caller.principal, f"gen-{uuid.uuid4().hex}")
        self.access.require_purpose(self.committer, caller, "tokenize", purpose, now)
        with refusals_logged(self.committer.run, now, caller, "tokenize", purpose):
            require_label("source", source)
            if notice_id:
                require_label("notice_id", notice_id)
                if notice_given is False:
                    raise InvalidInput("notice_given is false but a notice_id names a notice", "notice_given")
            require_batch("records", len(records), self.limits)
            require_batch("fields in the batch", sum(len(r.fields) for r in records), self.limits)
        fingerprint = self._fingerprint(purpose, source, notice_id, atomic, records, notice_given)
        notice = (notice_id, bool(notice_id) if notice_given is None else notice_given)
        for attempt in range(ATTEMPTS):
            try:
                return self._attempt(caller, remembered, purpose, source, notice, records, atomic, fingerprint)
            except Conflict:
                if attempt == ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _attempt(
        self, caller: Caller, remembered: bool, purpose: str, source: str, notice: tuple[str, bool], records: list[RecordIn],
        atomic: bool, fingerprint: bytes,
    ) -> TokenizeOutcome:
        prepared, problems = self._validate(caller.principal, purpose, records)
        now = self.clock()
        domain = self.access.policy.domain_of(caller.principal)
        if problems and atomic:
            self._log_rejected(caller, purpose, problems, now)
            # Every bad item of every record is named; a refusal by the policy decides the status.
            if any(isinstance(p.error, PermissionDenied) for p in problems):
                raise PermissionDenied(summarize(problems))
            raise InvalidInput(summarize(problems))
        if any(p.subject_id or any(spec.token_kind is TokenKind.FORMAT_PRESERVING for spec, _ in p.values) for p in prepared):
            # Existing subjects' keys and taken format-preserving tokens are read first, on a
            # snapshot; the write re-checks what a concurrent writer could have changed.
            with self.store.snapshot() as tx:
                existing = self._existing_subjects(tx, prepared, problems, atomic)
                plan = self._plan(caller, purpose, source, notice, prepared, problems, existing, len(records), now, domain)
                self._choose_shaped_tokens(tx, plan)
        else:
            plan = self._plan(caller, purpose, source, notice, prepared, problems, {}, len(records), now, domain)

        def write(tx: Tx) -> TokenizeOutcome | tuple[bytes, str, list]:
            earlier = tx.get_request(caller.principal, caller.request_id) if remembered else None
            if earlier is not None:
                return earlier  # a retry: answer as the first time, write nothing
            tx.reserve_tokens(plan.reserved)
            known = tx.existing_values(plan.deterministic_keys)
            tx.count_encryptions(plan.counts)
            tx.log_access(plan.log)
            outcome = plan.outcome()
            answer, stored_records = outcome.to_stored()
            tx.queue_tokenized(
                plan.subjects, plan.keys,
                [row for row in plan.values if (row[2], row[1], row[0]) not in known] if known else plan.values,
                (caller.principal, caller.request_id, fingerprint, answer, now) if remembered else None, stored_records,
            )
            new = {row[0] for row in plan.subjects}
            tx.record_holders([(s, domain, caller.principal) for s, _ in outcome.results if s and s in new], now, True)
            tx.record_holders([(s, domain, caller.principal) for s, _ in outcome.results if s and s not in new], now)
            return outcome

        written = self.committer.run(write)
        return _replay(written, fingerprint, len(records)) if isinstance(written, tuple) else written

    # --- before the write transaction --------------------------------------------------
    def _validate(self, principal: str, purpose: str, records: list[RecordIn]) -> tuple[list[Prepared], list[ItemProblem]]:
        prepared, problems = [], []
        granted: dict[tuple[str, str], bool] = {}  # (action, field) -> allowed: asked once a batch
        for i, record in enumerate(records):
            # Every problem of the record is collected (its subject id and each of its fields),
            # so one answer names them all rather than the first of each record.
            found: list[ItemProblem] = []
            subject_id, values = "", []
            try:
                subject_id = self._check_subject(i, record.subject_id)
            except _ItemError as err:
                found += err.problems
            try:
                values = self._normalize(i, principal, purpose, record, granted)
            except _ItemError as err:
                found += err.problems
            if found:
                problems += sorted(found, key=lambda p: p.field)
            else:
                prepared.append(Prepared(i, subject_id, values))
        return prepared, problems

    @staticmethod
    def _check_subject(index: int, subject_id: str) -> str:
        if subject_id and not is_subject_id(subject_id):
            raise _ItemError([ItemProblem(index, "", InvalidInput("malformed subject id"))])
        return subject_id

    def _normalize(
        self, index: int, principal: str, purpose: str, record: RecordIn, granted: dict[tuple[str, str], bool]
    ) -> list[tuple[FieldSpec, str]]:
        if not record.fields:
            raise _ItemError([ItemProblem(index, "", InvalidInput("record has no fields"))])
        out, bad = [], []
        for name, value in record.fields.items():
            try:
                spec = self.catalog.field(name)
                if purpose not in spec.purposes:
                    raise InvalidInput(f"field {name!r} may not be collected for purpose {purpose!r}")
                # A record naming a subject adds to it: that takes `append`, asked before the
                # subject is looked up, so an unknown id and a forbidden one answer alike.
                action = APPEND if record.subject_id else TOKENIZE
                allowed = granted.get((action, name))
                if allowed is None:
                    allowed = granted[(action, name)] = self.access.allows(principal, action, name, purpose)
                if not allowed and action == APPEND:
                    raise PermissionDenied(f"not permitted to add field {name!r} to an existing subject (append) "
                                           f"for purpose {purpose!r}")
                if not allowed:
                    raise PermissionDenied(f"not permitted to tokenize field {name!r} for purpose {purpose!r}")
                if not value:
                    raise InvalidInput("value is empty")
                if len(value.encode()) > self.limits.max_value_bytes:
                    raise InvalidInput(f"value is larger than {self.limits.max_value_bytes} bytes")
                out.append((spec, spec.normalize(value)))
            except PdvError as exc:
                bad.append(ItemProblem(index, shown_field(name), exc))
        if bad:
            raise _ItemError(bad)
        return out

    def _existing_subjects(
        self, tx: Tx, prepared: list[Prepared], problems: list[ItemProblem], atomic: bool
    ) -> dict[str, KeyRow]:
        rows = tx.current_keys(sorted({p.subject_id for p in prepared if p.subject_id}))
        unknown = [p for p in prepared if p.subject_id and p.subject_id not in rows]
        if unknown and atomic:
            raise NotFound(summarize([ItemProblem(p.index, "", NotFound("unknown subject_id")) for p in unknown]))
        for p in unknown:
            problems.append(ItemProblem(p.index, "", NotFound("unknown subject_id")))
            prepared.remove(p)
        return rows

    def _plan(
        self, caller: Caller, purpose: str, source: str, notice: tuple[str, bool], prepared: list[Prepared],
        problems: list[ItemProblem], existing: dict[str, KeyRow], record_count: int, now: datetime, domain: str,
    ) -> Plan:
        plan = Plan(record_count, problems)
        new_ids = set()
        for p in prepared:
            if not p.subject_id:
                p.subject_id = new_subject_id()
                new_ids.add(p.subject_id)
                plan.subjects.append((p.subject_id, now, caller.principal))  # SUBJECT_COLUMNS
        keys = self._data_keys(plan, prepared, existing, new_ids, now)
        # Per field kind, what every field of the call shares: looked up once a call, not once a field.
        shared: dict[str, tuple] = {}
        head = (now, caller.request_id, caller.principal, "tokenize", purpose)  # ACCESS_COLUMNS order
        notice_id, notice_given = notice[0] or None, notice[1]
        values, log, deterministic_keys = plan.values, plan.log, plan.deterministic_keys
        # Random-kind tokens are sequential ones (vault/services/locators): issued for the call at once.
        issued = iter(self.tokens.issue(
            domain, sum(1 for p in prepared for spec, _ in p.values if spec.token_kind is _RANDOM)))
        for p in prepared:
            data_key, subject_id = keys[p.subject_id], p.subject_id
            version, seal = data_key.version, data_key.seal
            known_subject = subject_id not in new_ids
            record_tokens: dict[str, str] = {}
            for spec, value in p.values:
                name = spec.name
                kind = shared.get(name)
                if kind is None:
                    kind = shared[name] = self._field_constants(spec, purpose, now, domain)
                token_kind, token_key, index_key, expires = kind
                raw = value.encode()
                locator = check = None
                if token_kind is _RANDOM:
                    token, locator, check = next(issued)
                elif token_kind is _DETERMINISTIC:
                    token = tk.deterministic_token(token_key, value)
                    if known_subject:
                        deterministic_keys.append((token, name, subject_id))
                else:  # format-preserving: chosen by _choose_shaped_tokens, which checks uniqueness, then sealed
                    token = ""
                    plan.shaped.append((len(values), len(log), p.index, spec, value, data_key))
                record_tokens[name] = token
                # VALUE_COLUMNS order.
                values.append((
                    subject_id, name, token, version, seal(raw, row_aad(subject_id, name, token, version)) if token else b"",
                    blind_index_bytes(index_key, raw) if index_key is not None else None,
                    purpose, source, notice_id, now, expires, notice_given, domain, locator, check,
                ))
                log.append(head + (subject_id, name, token, "ok"))
            plan.results[p.index] = (subject_id, record_tokens)
        plan.log += [access_row(now, caller, "tokenize", purpose, _problem_outcome(q), field=q.field or None) for q in problems]
        return plan

    def _field_constants(self, spec: FieldSpec, purpose: str, now: datetime, domain: str) -> tuple:
        """(token kind, deterministic-token key, blind-index key or None, expiry) of a field's rows in
        one call, the keys those of the caller's token domain."""
        return (
            spec.token_kind,
            self.index_keys.token_key(spec.name, domain) if spec.token_kind is TokenKind.DETERMINISTIC else None,
            self.index_keys.index_key(spec.name, domain) if spec.searchable else None,
            now + spec.retention_for(purpose),
        )

    def _data_keys(
        self, plan: Plan, prepared: list[Prepared], existing: dict[str, KeyRow], new_ids: set[str], now: datetime
    ) -> dict[str, DataKey]:
        """The DEK each record is sealed under: existing, fresh for new subjects, or rotated when worn."""
        needed: dict[str, int] = {}
        for p in prepared:
            if p.subject_id not in new_ids:
                needed[p.subject_id] = needed.get(p.subject_id, 0) + len(p.values)
        worn = [existing[s] for s, n in needed.items() if existing[s].encryptions + n > self.limits.dek_max_encryptions]
        worn_ids = {row.subject_id for row in worn}
        keys = {
            key_id[0]: key
            for key_id, key in self.keyring.data_keys(
                {(r.subject_id, r.version): r.wrapped for r in existing.values() if r.subject_id not in worn_ids}
            ).items()
        }
        new_records = [p for p in prepared if p.subject_id in new_ids]
        fresh = iter(self.keyring.new_keys(len(new_records) + len(worn)))  # one batched Vault call
        for row in worn:
            secret, wrapped = next(fresh)
            keys[row.subject_id] = self.keyring.remember((row.subject_id, row.version + 1), secret)
            plan.keys.append(_key_row(row.subject_id, row.version + 1, wrapped, needed[row.subject_id], now))
        for subject_id, n in needed.items():
            if subject_id not in worn_ids:
                plan.counts.append((subject_id, keys[subject_id].version, n))
        for p in new_records:
            secret, wrapped = next(fresh)
            keys[p.subject_id] = self.keyring.remember((p.subject_id, 1), secret)
            plan.keys.append(_key_row(p.subject_id, 1, wrapped, len(p.values), now))
        return keys

    def _choose_shaped_tokens(self, tx: Tx, plan: Plan) -> None:
        """Give each format-preserving value a token unique in its field and unlike its value."""
        pending = list(plan.shaped)
        for _ in range(64):
            if not pending:
                return
            proposals = [(item, tk.format_preserving_token(item[4])) for item in pending]
            taken: dict[str, set[str]] = {}
            for field in {item[3].name for item in pending}:
                taken[field] = tx.taken_tokens(field, [tok for item, tok in proposals if item[3].name == field])
            retry = []
            for item, token in proposals:
                value_pos, log_pos, index, spec, value, data_key = item
                if token == value or token in taken[spec.name]:
                    retry.append(item)
                    continue
                taken[spec.name].add(token)
                plan.place_shaped_token(item, token, self._reseal(plan.values[value_pos], data_key, token, value))
            pending = retry
        raise InvalidInput("no free format-preserving token left in a field; its token space is exhausted")

    @staticmethod
    def _reseal(row: tuple, data_key: DataKey, token: str, value: str) -> bytes:
        subject_id, field = row[0], row[1]
        return data_key.seal(value.encode(), row_aad(subject_id, field, token, data_key.version))

    def _fingerprint(self, purpose: str, source: str, notice_id: str, atomic: bool, records: list[RecordIn],
                     notice_given: bool | None = None) -> bytes:
        # Keyed, so the stored fingerprint cannot be used to confirm a guessed value. An explicit
        # notice_given is appended only when set, so answers kept before it existed still match.
        parts = [purpose, source, notice_id, atomic, [[r.subject_id, sorted(r.fields.items())] for r in records]]
        body = json.dumps(parts if notice_given is None else [*parts, notice_given])
        return hmac.digest(self.index_keys.fingerprint_key, body.encode(), hashlib.sha256)

    def _log_rejected(self, caller: Caller, purpose: str, problems: list[ItemProblem], now: datetime) -> None:
        rows = [access_row(now, caller, "tokenize", purpose, _problem_outcome(p), field=p.field or None) for p in problems]
        self.committer.run(lambda tx: tx.log_access(rows))


def _problem_outcome(problem: ItemProblem) -> str:
    return DENIED if isinstance(problem.error, PermissionDenied) else "invalid"


class _ItemError(Exception):
    """The problems found in one record (its subject id, or each of its bad fields)."""

    def __init__(self, problems: list[ItemProblem]) -> None:
        self.problems = problems


def _replay(earlier: tuple[bytes, str, list[tuple[int, str, str]]], fingerprint: bytes, record_count: int) -> TokenizeOutcome:
    stored_fingerprint, response, records = earlier
    outcome = TokenizeOutcome.from_stored(response, records)
    if stored_fingerprint == SCRUBBED_FINGERPRINT:
        # A shred dropped the fingerprint (a hash of values now destroyed): only the shape is left to compare.
        if len(outcome.results) != record_count:
            raise RequestIdReused()
    elif not hmac.compare_digest(stored_fingerprint, fingerprint):
        raise RequestIdReused()
    return outcome


def _key_row(subject_id: str, version: int, wrapped: WrappedKey, encryptions: int, now: datetime) -> tuple:
    return (subject_id, version, wrapped.ciphertext, wrapped.kek_version, encryptions, now)  # KEY_COLUMNS
