"""A principal's events: where a subscription starts, the events after a cursor, acknowledgements.

Cursors are the outbox ids as decimal text. A subscription starts after the given cursor or
the principal's last acknowledged one, whichever is later (acknowledged events are deleted:
a token stays in the outbox only until its holder has handled the event); a start below the
highest id of the principal's events purged unread is OUT_OF_RANGE. Only the principal's own
events are ever read: every query names it.

Every Subscribe is logged (action "events", outcome "ok", or the refusal: "denied",
"invalid", "out_of_range"); an Ack is logged only when refused. No entry names a token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from vault.errors import InvalidInput, OutOfRange, PermissionDenied
from vault.services.access import DENIED, AccessControl
from vault.services.common import INVALID, Caller, access_row
from vault.storage import events as db
from vault.storage.events import StoredEvent
from vault.storage.store import Store

ACTION, PURPOSE = "events", "events"
ACK_ACTION = "events_ack"
OUT_OF_RANGE = "out_of_range"
MAX_CURSOR_DIGITS = 19  # a BIGINT
BATCH = 256  # events read per query


@dataclass(frozen=True, slots=True)
class Start:
    """Where a subscription begins: deliver the events after `cursor`."""

    cursor: int


class EventDelivery:
    def __init__(self, store: Store, access: AccessControl, retention: timedelta,
                 clock: Callable[[], datetime]) -> None:
        self.store, self.access, self.retention, self.clock = store, access, retention, clock

    def start(self, caller: Caller, cursor: str) -> Start:
        """Check the caller may subscribe and where it resumes; the subscription is logged.

        Raises:
            PermissionDenied: no `events` grant.
            InvalidInput: the cursor is not one PDV hands out.
            OutOfRange: events after the cursor have expired; the message says where to resume.
        """
        self._require_grant(caller, ACTION)
        wanted = self._parse(caller, cursor, ACTION)
        with self.store.transaction() as tx:
            acked, purged = db.cursor_of(tx, caller.principal)
            # Events up to the acknowledged cursor are handled (and deleted): never sent again.
            after = acked if wanted is None else max(wanted, acked)
            # The subscription's log entry, in the transaction that read where it starts.
            tx.log_access([access_row(self.clock(), caller, ACTION, PURPOSE, OUT_OF_RANGE if after < purged else "ok")])
        if after < purged:
            raise OutOfRange(
                f"events after cursor {after} have expired (kept for {self.retention.total_seconds():.0f} s, "
                f"event_retention_seconds): changes to tokens you hold may have been missed. Check the tokens you "
                f"hold against PDV (a detokenize or lookup tells a shredded one), then subscribe with cursor "
                f"\"{purged}\" to continue from the oldest event kept")
        return Start(after)

    def still_allowed(self, caller: Caller) -> bool:
        """Whether the policy in force still grants the caller `events` (asked again between batches)."""
        return self.access.policy.may_receive_events(caller.principal, self.access.today())

    def after(self, principal: str, cursor: int, limit: int = BATCH) -> list[StoredEvent]:
        """The principal's events after `cursor`, oldest first."""
        with self.store.snapshot() as tx:
            return db.events_after(tx, principal, cursor, limit)

    def ack(self, caller: Caller, cursor: str) -> int:
        """Record every event up to `cursor` as handled; the cursor now stored (never moved back).

        Raises:
            PermissionDenied: no `events` grant.
            InvalidInput: not a cursor, or beyond the caller's last event.
        """
        self._require_grant(caller, ACK_ACTION)
        wanted = self._parse(caller, cursor, ACK_ACTION)
        if wanted is None:
            self._refuse(caller, ACK_ACTION, InvalidInput("cursor is empty: name the last event handled", "cursor"))
        with self.store.transaction() as tx:
            # Acknowledged and purged events are deleted: a cursor up to either is still one sent.
            sent = max(db.last_event_id(tx, caller.principal), *db.cursor_of(tx, caller.principal))
            if wanted <= sent:  # type: ignore[operator]
                return db.ack(tx, caller.principal, wanted)  # type: ignore[arg-type]
            tx.log_access([access_row(self.clock(), caller, ACK_ACTION, PURPOSE, INVALID, field="cursor")])
        raise InvalidInput("cursor names no event delivered to you: acknowledge a cursor Subscribe sent", "cursor")

    def _require_grant(self, caller: Caller, action: str) -> None:
        if not self.still_allowed(caller):
            self._log(caller, action, DENIED)
            raise PermissionDenied("not allowed: the policy grants you no `events`")

    def _parse(self, caller: Caller, cursor: str, action: str) -> int | None:
        if cursor == "":
            return None
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= MAX_CURSOR_DIGITS):
            self._refuse(caller, action, InvalidInput("cursor is not one PDV sent (decimal digits)", "cursor"))
        return int(cursor)

    def _refuse(self, caller: Caller, action: str, error: InvalidInput) -> None:
        self._log(caller, action, INVALID, error.item)
        raise error

    def _log(self, caller: Caller, action: str, outcome: str, field: str | None = None) -> None:
        with self.store.transaction() as tx:
            tx.log_access([access_row(self.clock(), caller, action, PURPOSE, outcome, field=field)])
