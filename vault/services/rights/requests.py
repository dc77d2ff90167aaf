"""Residents' privacy requests and complaints: opened, worked, answered, kept, disposed of.

A request has a kind (vault.domain.REQUEST_KINDS), names its subject when there is one
(complaints and disclosure requests may not), and moves through the workflow of
vault.domain.REQUEST_TRANSITIONS; every change is a history row (who, when, from, to) in
the same transaction as the change and its access-log entry. Its due date is fixed when it
is received: received_at plus the kind's deadline from the settings.

Its free text (description, contact, response) is personal data: each request gets its own
DEK, made and wrapped by the KeyRing like a subject's, stored in wrapped_secrets (so key
rotation rewraps it), and each text is sealed with AES-256-GCM under associated data naming
the request and the text (`request_aad`). Disposal deletes closed requests past their
retention with their DEK.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from vault.crypto.aead import DataKey, request_aad
from vault.domain import FINAL_STATUSES, REQUEST_KINDS, REQUEST_STATUSES, REQUEST_TRANSITIONS
from vault.errors import InvalidInput, InvalidTransition, NotFound
from vault.services.common import Caller, Limits
from vault.services.keyring import KeyRing
from vault.services.rights.links import is_case_id
from vault.services.rights.request_access import RequestAccess, entry
from vault.services.tokenize_model import is_subject_id, require_subject_id
from vault.storage import requests as db
from vault.storage.consent import subject_exists
from vault.storage.store import Store

KEY_VERSION = 1
MAX_TEXT_BYTES = 16 * 1024
MAX_CONTACT_BYTES = 1024
SUBJECT_OPTIONAL = frozenset({"complaint", "disclosure"})  # may be about no one PDV holds
DISPOSAL_PRINCIPAL = "pdv-disposal"
DISPOSAL_CHUNK = 500


@dataclass(frozen=True)
class RequestSummary:
    """A request as listed: no free text."""

    case_id: str
    kind: str
    subject_id: str | None
    status: str
    received_at: datetime
    due_at: datetime
    closed_at: datetime | None
    opened_by: str


@dataclass(frozen=True)
class RequestCase:
    """A whole request. Its texts are personal data: kept out of repr."""

    summary: RequestSummary
    description: str = field(repr=False)
    contact: str = field(repr=False)
    response_text: str = field(repr=False)
    history: list[db.HistoryRow]
    actions: list[db.ActionRow]


def _summary(row: db.RequestRow) -> RequestSummary:
    return RequestSummary(row.id, row.kind, row.subject_id, row.status, row.received_at, row.due_at, row.closed_at,
                          row.opened_by)


def _text(name: str, value: str, limit: int, required: bool) -> bytes | None:
    """A free-text input as UTF-8; the message names the input, never its content."""
    if not value:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    data = value.encode("utf-8", "surrogatepass")
    if len(data) > limit or "\x00" in value:
        raise InvalidInput(f"{name} must be at most {limit} bytes of text (UTF-8, no NUL)")
    return data


class RequestService:
    def __init__(self, store: Store, keyring: KeyRing, gate: RequestAccess, limits: Limits,
                 deadline_days: Callable[[str], float], retention: timedelta, clock: Callable[[], datetime]) -> None:
        self.store, self.keyring, self.gate, self.limits = store, keyring, gate, limits
        self.deadline_days, self.retention, self.clock = deadline_days, retention, clock

    def open(self, caller: Caller, kind: str, subject_id: str | None, description: str, contact: str = "") -> RequestSummary:
        """Record a new request, status "received", due after the kind's deadline.

        Raises:
            PermissionDenied: no `requests` grant (logged).
            InvalidInput: unknown kind; a missing or malformed subject id; a missing or oversized text.
            NotFound: no such subject.
            KeyUnavailable: Vault cannot wrap the request's key; nothing was written.
        """
        self.gate.require(caller, "open", subject_id if subject_id and is_subject_id(subject_id) else None)
        if kind not in REQUEST_KINDS:
            raise InvalidInput(f"kind: unknown request kind {kind!r} (known: {', '.join(REQUEST_KINDS)})")
        if not subject_id and kind not in SUBJECT_OPTIONAL:
            raise InvalidInput(f"subject_id is required for kind {kind!r} (only complaints and disclosure "
                               "requests may name no subject)")
        if subject_id:
            require_subject_id(subject_id)
        text = _text("description", description, MAX_TEXT_BYTES, True)
        reach = _text("contact", contact, MAX_CONTACT_BYTES, False)
        case_id = "req_" + secrets.token_hex(12)
        (secret, wrapped), = self.keyring.new_keys(1)
        key = self.keyring.remember((db.KEY_PREFIX + case_id, KEY_VERSION), secret)
        now = self.clock()
        row = db.RequestRow(
            case_id, kind, subject_id or None, "received", now, now + timedelta(days=self.deadline_days(kind)), None,
            caller.principal, key.seal(text, request_aad(case_id, "description", KEY_VERSION)),  # type: ignore[arg-type]
            None if reach is None else key.seal(reach, request_aad(case_id, "contact", KEY_VERSION)), None,
        )
        with self.store.transaction() as tx:
            if subject_id and not subject_exists(tx, subject_id):
                raise NotFound("subject_id: unknown subject")
            db.add_request(tx, row, wrapped.ciphertext)
            self.gate.log(caller, [entry(now, caller, "open", "received", row.subject_id, case_id)], tx)
        return _summary(row)

    def list(self, caller: Caller, status: str | None = None, kind: str | None = None, subject_id: str | None = None,
             open_only: bool = False) -> list[RequestSummary]:
        """Requests matching every filter given, newest first, at most the batch limit; logged
        as one entry per request listed (one entry when none is).

        Raises:
            PermissionDenied: no `requests` grant (logged). InvalidInput: an unknown filter value.
        """
        self.gate.require(caller, "list")
        if status is not None and status not in REQUEST_STATUSES:
            raise InvalidInput(f"status: unknown status {status!r}")
        if kind is not None and kind not in REQUEST_KINDS:
            raise InvalidInput(f"kind: unknown request kind {kind!r}")
        if subject_id:
            require_subject_id(subject_id)
        with self.store.snapshot() as tx:
            rows = db.list_requests(tx, status, kind, subject_id or None, open_only, self.limits.max_batch_items)
        self._log_listed(caller, "list", rows)
        return [_summary(r) for r in rows]

    def overdue(self, caller: Caller) -> list[RequestSummary]:
        """Open requests past their due date, the longest overdue first (at most the batch limit)."""
        self.gate.require(caller, "overdue")
        with self.store.snapshot() as tx:
            rows = db.overdue(tx, self.clock(), self.limits.max_batch_items)
        self._log_listed(caller, "overdue", rows)
        return [_summary(r) for r in rows]

    def show(self, caller: Caller, case_id: str) -> RequestCase:
        """One request with its texts, history and linked actions; the read is logged first.

        Raises:
            PermissionDenied (logged); InvalidInput: malformed case id; NotFound: no such request;
            KeyUnavailable: Vault cannot unwrap its key.
        """
        self.gate.require(caller, "show", case_id=case_id if is_case_id(case_id) else None)
        self._check_case_id(case_id)
        with self.store.snapshot() as tx:
            row = db.get_request(tx, case_id)
            if row is None:
                raise NotFound("case_id: no privacy request has this id")
            wrapped, history, actions = db.wrapped_key(tx, case_id), db.history(tx, case_id), db.actions(tx, case_id)
        key = self._key(case_id, wrapped)
        opened = {part: "" if blob is None else key.open(blob, request_aad(case_id, part, KEY_VERSION)).decode()
                  for part, blob in (("description", row.description), ("contact", row.contact),
                                     ("response", row.response))}
        self.gate.log(caller, [entry(self.clock(), caller, "show", "ok", row.subject_id, case_id)])
        return RequestCase(_summary(row), opened["description"], opened["contact"], opened["response"], history, actions)

    def update(self, caller: Caller, case_id: str, status: str | None, response_text: str = "") -> RequestSummary:
        """Move a request to `status` (None: keep it) and/or set its response text.

        Reaching answered, rejected or withdrawn closes it; answered and rejected need a
        response text (given now or before). A closed request takes no further change.

        Raises:
            PermissionDenied (logged); InvalidInput: malformed case id, unknown status, nothing to change,
            oversized text; NotFound: no such request; InvalidTransition: the workflow does not allow
            it (logged as "refused_transition").
        """
        self.gate.require(caller, "update", case_id=case_id if is_case_id(case_id) else None)
        self._check_case_id(case_id)
        if status is not None and status not in REQUEST_STATUSES:
            raise InvalidInput(f"status: unknown status {status!r} (known: {', '.join(REQUEST_STATUSES)})")
        text = _text("response_text", response_text, MAX_TEXT_BYTES, False)
        if status is None and text is None:
            raise InvalidInput("nothing to change: give a status, a response text, or both")
        sealed = None
        if text is not None:
            with self.store.snapshot() as tx:
                wrapped = db.wrapped_key(tx, case_id)
            if wrapped is None:
                raise NotFound("case_id: no privacy request has this id")
            sealed = self._key(case_id, wrapped).seal(text, request_aad(case_id, "response", KEY_VERSION))
        now = self.clock()
        try:
            with self.store.transaction() as tx:
                row = db.get_request(tx, case_id, for_update=True)
                if row is None:
                    raise NotFound("case_id: no privacy request has this id")
                target = row.status if status is None else status
                _check_transition(row, target, has_response=sealed is not None or row.response is not None,
                                  sets_response=sealed is not None)
                closed_at = now if target in FINAL_STATUSES else None
                db.set_state(tx, case_id, target, closed_at, sealed)
                db.add_history(tx, case_id, now, caller.principal, row.status, target, sealed is not None)
                self.gate.log(caller, [entry(now, caller, "update", target, row.subject_id, case_id)], tx)
        except InvalidTransition:
            self.gate.log(caller, [entry(now, caller, "update", "refused_transition", row.subject_id, case_id)])
            raise
        return RequestSummary(row.id, row.kind, row.subject_id, target, row.received_at, row.due_at, closed_at,
                              row.opened_by)

    def dispose_closed(self, now: datetime | None = None, dry_run: bool = False) -> int:
        """Delete requests closed longer than the retention period ago, with their history, links and
        DEK (so any copy of their text is noise); one access-log entry each. Returns how many (would) go."""
        cutoff = (now or self.clock()) - self.retention
        if dry_run:
            with self.store.snapshot() as tx:
                return db.count_closed_before(tx, cutoff)
        caller = Caller(DISPOSAL_PRINCIPAL, f"dispose-requests-{secrets.token_hex(8)}")
        total = 0
        while True:
            with self.store.transaction() as tx:
                chunk = db.closed_before(tx, cutoff, DISPOSAL_CHUNK)
                db.delete_requests(tx, [i for i, _ in chunk])
                at = self.clock()
                tx.log_access([entry(at, caller, "dispose", "deleted", subject, i) for i, subject in chunk])
            self.keyring.evict((db.KEY_PREFIX + i, KEY_VERSION) for i, _ in chunk)
            total += len(chunk)
            if len(chunk) < DISPOSAL_CHUNK:
                return total

    def _key(self, case_id: str, wrapped: str | None) -> DataKey:
        if wrapped is None:
            raise NotFound("case_id: no privacy request has this id")
        key_id = (db.KEY_PREFIX + case_id, KEY_VERSION)
        keys: Mapping = self.keyring.data_keys({key_id: wrapped})
        return keys[key_id]

    def _log_listed(self, caller: Caller, op: str, rows: list[db.RequestRow]) -> None:
        now = self.clock()
        self.gate.log(caller, [entry(now, caller, op, "ok", r.subject_id, r.id) for r in rows]
                      or [entry(now, caller, op, "ok", None, None)])

    @staticmethod
    def _check_case_id(case_id: str) -> None:
        if not is_case_id(case_id):
            raise InvalidInput("case_id: malformed (a privacy request's case id looks like req_ and 24 hex digits)")


def _check_transition(row: db.RequestRow, target: str, has_response: bool, sets_response: bool) -> None:
    if row.status in FINAL_STATUSES:
        raise InvalidTransition(f"request {row.id} is {row.status}, which closed it: it takes no further change")
    if target == row.status and not sets_response:
        raise InvalidTransition(f"request {row.id} is already {target}")
    if target != row.status and target not in REQUEST_TRANSITIONS[row.status]:
        allowed = ", ".join(sorted(REQUEST_TRANSITIONS[row.status]))
        raise InvalidTransition(f"request {row.id} is {row.status}: it cannot become {target} (it may become: {allowed})")
    if target in ("answered", "rejected") and not has_response:
        raise InvalidTransition(f"request {row.id}: a response text is needed to close it as {target}")
