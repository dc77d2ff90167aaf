"""The shapes rows travel in between the store and its callers, and the column orders of
the bulk inserts (the hot paths hand rows over as tuples in these orders)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Protocol

VALUE_COLUMNS = (
    "subject_id", "field", "token", "key_version", "ciphertext", "blind_index",
    "purpose", "source", "notice_id", "collected_at", "expires_at", "notice_given", "domain",
    "locator", "token_check",  # a sequential token's (vault.crypto.locators); None for any other token
)
SUBJECT_COLUMNS = ("id", "created_at", "created_by")
KEY_COLUMNS = ("subject_id", "version", "wrapped", "kek_version", "encryptions", "created_at")
REQUEST_COLUMNS = ("principal", "request_id", "fingerprint", "response", "created_at")
RECORD_COLUMNS = ("principal", "request_id", "position", "subject_id", "tokens")
# The fingerprint of a stored tokenize answer a shred touched: a keyed hash of values now
# destroyed, so it is dropped, and a retry of that request is no longer compared with it.
SCRUBBED_FINGERPRINT = b""
ACCESS_COLUMNS = ("at", "request_id", "principal", "action", "purpose", "subject_id", "field", "token", "outcome")
# An access-log entry as the store writes it: one request's header and its items
# (vault.storage.access_items; `items` NULL when the entry has one item, in the columns).
ENTRY_COLUMNS = (*ACCESS_COLUMNS, "items")
# What the access-log chain appends to each row when the transaction commits.
CHAIN_COLUMNS = ("chain_id", "seq", "mac")


@dataclass(frozen=True, slots=True)
class ChainHead:
    """Where an access-log chain ends: its id, last seq and mac; `new` if these rows start it."""

    chain_id: str
    seq: int
    mac: bytes
    new: bool = False

    def __iter__(self) -> Iterator:
        return iter((self.chain_id, self.seq, self.mac))


class AccessChain(Protocol):
    """Seals access-log entries (ENTRY_COLUMNS order) into a hash chain (vault.services.audit.AuditChain).

    `lock` is held from seal() until the transaction has committed (advance) or failed
    (abandon), so the chain's in-memory head only ever moves with a commit.
    """

    lock: threading.Lock

    def seal(self, rows: Sequence[tuple]) -> tuple[list[tuple], ChainHead]: ...
    def advance(self, head: ChainHead) -> None: ...
    def abandon(self) -> None: ...


@dataclass(frozen=True, slots=True)
class KeyRow:
    subject_id: str
    version: int
    wrapped: str
    encryptions: int


# A read makes one ValueRow or IndexMatch per row: plain slotted classes, since a frozen
# dataclass sets each field through object.__setattr__ and cost three times as much to make.
@dataclass(slots=True)
class ValueRow:
    token: str
    field: str
    subject_id: str
    key_version: int
    ciphertext: bytes
    wrapped: str
    # Read with the value for the policy check: why it was collected, and whether its
    # subject opted out of the access purpose asked about.
    purpose: str = dc_field(default="", compare=False)
    opted_out: bool = dc_field(default=False, compare=False)


@dataclass(slots=True)
class IndexMatch:
    field: str
    blind_index: bytes
    subject_id: str
    token: str
    # As ValueRow: the collection purpose and the opt-out from the access purpose asked about.
    purpose: str = dc_field(default="", compare=False)
    opted_out: bool = dc_field(default=False, compare=False)
