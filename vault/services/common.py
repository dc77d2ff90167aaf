"""What every use case shares: who is calling, the limits, and access-log rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from vault.errors import InvalidInput

if TYPE_CHECKING:
    from vault.storage.store import Tx

# Each label's limit is the column it is stored in (vault/storage/tables.py, migrations/):
# PostgreSQL refuses a longer value (and the failed commit cost the process its audit chain)
# while SQLite would store it, so labels are checked here, the same on both databases.
# tests/storage/test_label_columns.py holds the two together.
MAX_PURPOSE = 64  # field_values.purpose, access_log.purpose, consent_optouts.purpose
MAX_FIELD = 64  # field_values.field, access_log.field (catalog names are at most 63)
MAX_REQUEST_ID = 128  # tokenize_requests.request_id, access_log.request_id
MAX_LABEL = 200  # field_values.source and notice_id, legal_holds.case_id
MAX_REASON = 1000  # shred and hold reasons: text columns, bounded so a receipt stays small
INVALID = "invalid"  # access-log outcome of a request refused for bad input


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal and the request id every log row carries."""

    principal: str
    request_id: str


@dataclass(frozen=True, slots=True)
class Limits:
    max_value_bytes: int = 64 * 1024
    max_batch_items: int = 10_000
    dek_max_encryptions: int = 1 << 20
    # The largest answer the transport will send (max_message_bytes): a detokenize answer is
    # measured against it before its access is logged as delivered.
    max_answer_bytes: int = 4 * 1024 * 1024


def require_label(name: str, value: str, limit: int = MAX_LABEL) -> str:
    """A short printable identifier (purpose, source, request id); the message names it only."""
    if not value:
        raise InvalidInput(f"{name} is required", name)
    if not fits(value, limit):
        raise InvalidInput(f"{name} must be printable and at most {limit} characters", name)
    return value


def fits(value: str, limit: int) -> bool:
    """Whether `value` may be stored as a label in a column of `limit` characters."""
    return len(value) <= limit and value.isprintable()


def require_batch(name: str, count: int, limits: Limits) -> None:
    if count == 0:
        raise InvalidInput(f"{name} is empty", name)
    if count > limits.max_batch_items:
        raise InvalidInput(f"{name} has {count} items; the limit is {limits.max_batch_items}", name)


@contextmanager
def refusals_logged(
    run: Callable[[Callable[["Tx"], object]], object], at: datetime, caller: Caller, action: str, purpose: str,
) -> Iterator[None]:
    """Checks of a whole request run inside: an InvalidInput they raise is written to the
    access log as the request's refusal (refusal_row), through `run` (a write transaction:
    GroupCommitter.run, say), then passed on."""
    try:
        yield
    except InvalidInput as exc:
        row = refusal_row(at, caller, action, purpose, exc)
        run(lambda tx: tx.log_access([row]))
        raise


def refusal_row(at: datetime, caller: Caller, action: str, purpose: str, error: InvalidInput) -> tuple:
    """The access-log entry of a request refused as a whole for bad input (outcome "invalid",
    field: the item at fault). A request id or purpose that would not fit its column, or is
    not printable, is left out rather than written: it may be the very item at fault."""
    request_id = caller.request_id if caller.request_id and fits(caller.request_id, MAX_REQUEST_ID) else "-"
    shown_purpose = purpose if purpose and fits(purpose, MAX_PURPOSE) else "-"
    return access_row(at, Caller(caller.principal, request_id), action, shown_purpose, INVALID,
                      field=(error.item or "request")[:MAX_FIELD])


def access_row(
    at: datetime,
    caller: Caller,
    action: str,
    purpose: str,
    outcome: str,
    subject_id: str | None = None,
    field: str | None = None,
    token: str | None = None,
) -> tuple:
    """One access-log entry (ACCESS_COLUMNS order). Never a value: who, what, why, which, how it went."""
    return (at, caller.request_id, caller.principal, action, purpose, subject_id, field, token, outcome)


def change_ref(caller: Caller, at: datetime) -> str:
    """What tells one consent or hold change's events from another's (event_outbox.ref): the
    caller's request id and the time, so a request id used twice still makes two events."""
    return f"{caller.request_id[:120]}@{at.isoformat()}"
