"""The values a tokenize passes between its steps. Some hold personal values: no reprs of them."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from dataclasses import field as dc_field

from vault.catalog import FieldSpec
from vault.crypto import tokens as tk
from vault.errors import InvalidInput, NotFound, PdvError, PermissionDenied

SUBJECT_PREFIX = "sub_"
NO_LONGER_HELD = "record not found"


def new_subject_id() -> str:
    """128 random bits, like a token: a subject id says nothing about the person."""
    return SUBJECT_PREFIX + secrets.token_urlsafe(16)


def is_subject_id(text: str) -> bool:
    return len(text) == 26 and text.startswith(SUBJECT_PREFIX) and tk.is_opaque_token(tk.PREFIX + text[4:])


def require_subject_id(text: str) -> None:
    """The one check of a subject id a caller names, with the one message every call gives."""
    if not is_subject_id(text):
        raise InvalidInput("subject_id: malformed subject id", "subject_id")


@dataclass(slots=True)  # not frozen: a batch makes one per record, and frozen ones cost three times as much
class RecordIn:
    """One person's fields as sent."""

    subject_id: str
    fields: dict[str, str] = dc_field(repr=False)


@dataclass(frozen=True)
class ItemProblem:
    index: int
    field: str
    error: PdvError


@dataclass
class Prepared:
    index: int
    subject_id: str  # "" until a new subject is given its id
    values: list[tuple[FieldSpec, str]] = dc_field(repr=False)  # (spec, normalized value)


@dataclass(frozen=True)
class TokenizeOutcome:
    results: list[tuple[str, dict[str, str]]]  # per record: (subject id, field → token); ("", {}) if rejected
    errors: list[ItemProblem]

    def to_stored(self) -> tuple[str, list[tuple[int, str, str]]]:
        """What a retry with the same request id gets back (ids and tokens only, no values):
        the answer's JSON (record count, errors) and a row per stored record (position,
        subject id, tokens JSON), which a shred can scrub on its own."""
        problems = [[p.index, p.field, type(p.error).__name__, str(p.error)] for p in self.errors]
        records = [(i, subject, json.dumps(tokens)) for i, (subject, tokens) in enumerate(self.results) if subject]
        return json.dumps({"records": len(self.results), "errors": problems}), records

    @classmethod
    def from_stored(cls, text: str, records: list[tuple[int, str, str]]) -> "TokenizeOutcome":
        """The answer `to_stored` kept; a record scrubbed by a shred (no subject) is an error."""
        body = json.loads(text)
        kinds = {"NotFound": NotFound, "PermissionDenied": PermissionDenied}
        results: list[tuple[str, dict[str, str]]] = [("", {}) for _ in range(body["records"])]
        errors = [ItemProblem(i, f, kinds.get(kind, InvalidInput)(msg)) for i, f, kind, msg in body["errors"]]
        for i, subject, tokens in records:
            if subject:
                results[i] = (subject, json.loads(tokens))
            else:
                errors.append(ItemProblem(i, "", NotFound(NO_LONGER_HELD)))
        return cls(results, sorted(errors, key=lambda p: p.index))


@dataclass(repr=False)
class Plan:
    """Everything one tokenize will write, computed before the write transaction opens."""

    record_count: int
    problems: list[ItemProblem]
    subjects: list[tuple] = dc_field(default_factory=list)
    keys: list[tuple] = dc_field(default_factory=list)
    counts: list[tuple[str, int, int]] = dc_field(default_factory=list)
    values: list[tuple] = dc_field(default_factory=list)
    log: list[tuple] = dc_field(default_factory=list)
    deterministic_keys: list[tuple[str, str, str]] = dc_field(default_factory=list)
    shaped: list[tuple] = dc_field(default_factory=list)  # (value pos, log pos, record index, spec, value, key)
    reserved: list[tuple[str, str]] = dc_field(default_factory=list)
    results: list[tuple[str, dict[str, str]]] = dc_field(default_factory=list)

    def __post_init__(self) -> None:
        self.results = [("", {}) for _ in range(self.record_count)]

    def place_shaped_token(self, item: tuple, token: str, sealed: bytes) -> None:
        """Put a chosen format-preserving token (and the value sealed with it) everywhere it goes."""
        value_pos, log_pos, index, spec = item[:4]
        row = list(self.values[value_pos])
        row[2], row[4] = token, sealed
        self.values[value_pos] = tuple(row)
        entry = list(self.log[log_pos])
        entry[7] = token
        self.log[log_pos] = tuple(entry)
        self.results[index][1][spec.name] = token
        self.reserved.append((spec.name, token))

    def outcome(self) -> TokenizeOutcome:
        return TokenizeOutcome(self.results, sorted(self.problems, key=lambda p: p.index))


# gRPC carries a status message in a trailer, and a client refuses trailers past 8 KiB
# (RESOURCE_EXHAUSTED instead of the answer): the list stops well short of that.
SUMMARY_BUDGET = 6000


def summarize(problems: list[ItemProblem], budget: int = SUMMARY_BUDGET) -> str:
    """`records[3].fields['email']: …; …` for every problem (names, never values), in record order.

    Only if the list would not fit a status message does it end early, with the count of the
    rest; BATCH_MODE_PARTIAL lists each of them in `errors`.
    """
    parts, size = [], 0
    for shown, p in enumerate(problems):
        where = f"records[{p.index}]" + (f".fields[{p.field!r}]" if p.field else "")
        part = f"{where}: {p.error}"
        size += _wire_length(part) + 2
        if size > budget:
            rest = len(problems) - shown
            return "; ".join(parts) + f" (and {rest} more; BATCH_MODE_PARTIAL lists every one in errors)"
        parts.append(part)
    return "; ".join(parts)


def _wire_length(text: str) -> int:
    """Bytes of `text` in a grpc-message trailer, which percent-encodes all but printable ASCII."""
    return sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in text.encode())
