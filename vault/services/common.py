"""What every use case shares: who is calling, the limits, and access-log rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vault.errors import InvalidInput

MAX_REQUEST_ID = 128
MAX_LABEL = 200


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


def require_label(name: str, value: str, limit: int = MAX_LABEL) -> str:
    """A short printable identifier (purpose, source, request id); the message names it only."""
    if not value:
        raise InvalidInput(f"{name} is required")
    if len(value) > limit or not value.isprintable():
        raise InvalidInput(f"{name} must be printable and at most {limit} characters")
    return value


def require_batch(name: str, count: int, limits: Limits) -> None:
    if count == 0:
        raise InvalidInput(f"{name} is empty")
    if count > limits.max_batch_items:
        raise InvalidInput(f"{name} has {count} items; the limit is {limits.max_batch_items}")


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
