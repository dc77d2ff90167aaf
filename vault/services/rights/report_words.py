"""Plain words for what the access log records, as a resident reads it in their report.

The log's action and outcome names are terse identifiers (README, "Audit"); each known one
gets a sentence fragment here. An unknown one (a newer PDV's) is shown as its name in
words, never dropped: the report must account for every entry.
"""

from __future__ import annotations

import math
from datetime import timedelta

ACTIONS = {
    "tokenize": "collected and stored",
    "append": "added to your record",
    "detokenize": "read",
    "lookup": "searched for by value",
    "shred": "destroyed",
    "hold": "legal hold placed",
    "release_hold": "legal hold released",
    "verify_receipt": "destruction receipt checked",
    "consent": "your consent choices changed or read",
    "correct": "corrected, or correction history read",
    "rotate_dek": "encryption key renewed",
    "access_report": "access report made",
    "request_open": "privacy request received",
    "request_show": "privacy request read",
    "request_update": "privacy request updated",
    "request_list": "privacy requests listed",
    "request_overdue": "overdue privacy requests listed",
    "request_dispose": "closed privacy request deleted",
    "restore": "database restore reconciled",
    "serve": "refused while the database was being restored",
}

# Purposes the log records for PDV's own work (not catalog purposes, which have descriptions).
LOG_PURPOSES = {
    "disposal": "records management (destroying data)",
    "legal_hold": "a legal hold",
    "privacy_request": "handling a privacy request",
    "correction": "correcting your data",
    "correction_report": "reading the correction history",
    "consent_report": "reading your consent choices",
    "key_management": "keeping the encryption keys fresh",
    "restore": "a database restore",
}

OUTCOMES = {
    "ok": "allowed",
    "ok_masked": "allowed, masked (only part of the value was shown)",
    "plain": "allowed, the value was included",
    "masked": "allowed, the value was included masked",
    "denied": "refused: not permitted",
    "denied_purpose": "refused: the purpose given does not fit why the data was collected",
    "denied_consent": "refused: you opted out of that purpose",
    "not_found": "nothing found",
    "invalid": "refused: the request was malformed",
    "invalid_purpose": "refused: no such purpose",
    "unavailable": "failed: a service PDV needs was down",
    "too_large": "refused: the answer was too large to send",
    "overloaded": "refused: the service was busy",
    "shredded": "destroyed",
    "already_shredded": "already destroyed earlier",
    "on_hold": "not destroyed: a legal hold blocks it",
    "placed": "placed",
    "released": "released",
    "opt_out": "you were opted out",
    "opt_in": "you were opted back in",
    "corrected": "corrected",
    "merged": "corrected (merged with an identical value)",
    "reapplied": "destroyed again after a database restore",
    "no_open_case": "refused: no open privacy request had that case number",
    "received": "received",
}


def action_text(action: str) -> str:
    return ACTIONS.get(action) or action.replace("_", " ")


def outcome_text(outcome: str) -> str:
    return OUTCOMES.get(outcome) or outcome.replace("_", " ")


def period_text(period: timedelta) -> str:
    """A retention period in words, undoing the catalog's rounding of units to whole days
    (a year is 365.25 days rounded up, a month 31 days, a week 7: vault/catalog.py)."""
    days = period.days
    years = round(days / 365.25)
    if years and math.ceil(years * 365.25) == days:
        return _plural(years, "year")
    for unit, length in (("month", 31), ("week", 7)):
        if days % length == 0:
            return _plural(days // length, unit)
    return _plural(days, "day")


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}{'' if count == 1 else 's'}"


def mask_token(token: str) -> str:
    """A token masked for the report: its last four characters (a token is not the value, but
    a holder of the whole token could use it)."""
    return "…" + token[-4:] if len(token) > 4 else "…"
