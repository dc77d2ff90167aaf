"""Plain values passed to and returned by PdvClient.

Anything that holds personal values (Record.fields, DetokenizeResult.value)
keeps them out of its repr, so printing or logging a result shows field names
and tokens only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime

from pdv_client.errors import PdvError, error_for_status

__all__ = ["Record", "ItemError", "RecordTokens", "DetokenizeResult", "Match", "ShredOutcome", "CorrectedValue", "Correction"]


@dataclass(frozen=True)
class Record:
    """One person's fields to tokenize.

    Attributes:
        fields: catalog field name to value (strings).
        subject_id: the existing subject to add the fields to; None creates a
            new subject.
    """

    fields: Mapping[str, str]
    subject_id: str | None = None

    def __repr__(self) -> str:
        return f"Record(subject_id={self.subject_id!r}, fields={sorted(self.fields)!r})"


@dataclass(frozen=True)
class ItemError:
    """Why one record was not stored (partial-mode tokenize).

    Attributes:
        index: position of the record in the list given to ``tokenize`` (across
            all batches, not within one request).
        field: the field at fault, or "" for the record as a whole.
        code: gRPC status code number.
        message: the server's reason; never contains the value.
    """

    index: int
    field: str
    code: int
    message: str

    def to_exception(self) -> PdvError:
        """The exception this item error maps to (not raised)."""
        return error_for_status(self.code, self.message)


@dataclass(frozen=True)
class RecordTokens:
    """The outcome for one record given to ``tokenize``, in input order.

    Attributes:
        subject_id: the subject the fields belong to (new or given); "" when
            the record was not stored.
        tokens: field name to token; empty when the record was not stored.
        errors: why the record was not stored (partial mode only); empty when
            it was stored.
    """

    subject_id: str
    tokens: dict[str, str]
    errors: tuple[ItemError, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the record was stored."""
        return not self.errors


@dataclass(frozen=True)
class DetokenizeResult:
    """The outcome for one token given to ``detokenize``, in input order.

    Attributes:
        token: the token as asked.
        field: the field it belongs to ("" unless code is 0).
        value: the value ("" unless code is 0); kept out of repr.
        code: gRPC status code number; 0 is OK, 5 NOT_FOUND (identical for
            every miss).
        message: the server's reason when code is not 0.
    """

    token: str
    field: str
    value: str = dataclass_field(repr=False)
    code: int
    message: str

    @property
    def ok(self) -> bool:
        """True when the value was returned."""
        return self.code == 0

    def to_exception(self) -> PdvError | None:
        """The exception for a failed item (not raised), or None when OK."""
        return None if self.ok else error_for_status(self.code, self.message)


@dataclass(frozen=True)
class TranslateResult:
    """The outcome for one token given to ``translate``, in input order.

    Attributes:
        token: the token as asked (a token of the other domain).
        field: the field it belongs to ("" unless code is 0).
        translated_token: the token of the same value in the caller's own domain.
        code: gRPC status code number; 0 is OK, 5 NOT_FOUND (identical for every miss).
        message: the server's reason when code is not 0.
    """

    token: str
    field: str
    translated_token: str
    code: int
    message: str

    @property
    def ok(self) -> bool:
        """True when a translated token was returned."""
        return self.code == 0

    def to_exception(self) -> PdvError | None:
        """The exception for a failed item (not raised), or None when OK."""
        return None if self.ok else error_for_status(self.code, self.message)


@dataclass(frozen=True)
class Match:
    """One stored value equal to a lookup query."""

    subject_id: str
    token: str


@dataclass(frozen=True)
class ShredOutcome:
    """What a shred did to one subject.

    Attributes:
        subject_id: the subject.
        status: "shredded", "already_shredded", "on_hold" or "not_found".
        hold_case_ids: the legal cases that blocked it (status "on_hold").
        receipt: the signed receipt (canonical JSON, no personal data); empty if none.
        signature: Vault's signature over the receipt.
    """

    subject_id: str
    status: str
    hold_case_ids: tuple[str, ...] = ()
    receipt: str = ""
    signature: str = ""


@dataclass(frozen=True)
class CorrectedValue:
    """One stored value after ``correct_value``.

    Attributes:
        purpose: the purpose it was collected for.
        token: its token now (unchanged unless the field is deterministic).
        token_changed: True when the token changed; the old one no longer reaches the value.
    """

    purpose: str
    token: str
    token_changed: bool


@dataclass(frozen=True)
class Correction:
    """One row of a subject's correction history (never a value).

    Attributes:
        field, purpose: the value corrected.
        token: its token right after the correction.
        corrected_at, corrected_by, reason, case_id, request_id: when, who, why, under what.
        old_value_fingerprint: hex keyed hash of the old value (equal hashes: equal old values).
    """

    field: str
    purpose: str
    token: str
    corrected_at: datetime
    corrected_by: str
    reason: str
    case_id: str
    request_id: str
    old_value_fingerprint: str
