"""Built-in normalizers, validators and masks that the field catalog refers to by name.

Pure functions over text. A rule that rejects a value raises `RuleViolation` with
a fixed reason ("must be 9 digits"); the reason never quotes the value or any part
of it, so `FieldSpec.normalize` can pass it on to the caller unchanged.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable

REDACTED = "****"
_DIGITS = "0123456789"
_UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _DIGITS


class RuleViolation(Exception):
    """A value broke a rule; `reason` is a fixed phrase that never contains the value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- normalizers: text -> canonical text (or RuleViolation) ---------------------

_WHITESPACE = re.compile(r"\s+")
_DIGIT_SEPARATORS = re.compile(r"[\s\-.()]+")
_ID_SEPARATORS = re.compile(r"[\s\-.:]+")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(value: str) -> str:
    # NFC so that the same name typed on two systems gives one deterministic token.
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", value)).strip()


def _email(value: str) -> str:
    return value.strip().lower()


def _only(value: str, alphabet: str, reason: str) -> str:
    if not value or any(ch not in alphabet for ch in value):
        raise RuleViolation(reason)
    return value


def _digits(value: str) -> str:
    return _only(_DIGIT_SEPARATORS.sub("", value), _DIGITS, "must contain only digits")


def _phone(value: str) -> str:
    digits = _digits(value.strip().removeprefix("+"))
    # NANP numbers are often written with the country code: +1 212 555 0100.
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def _date(value: str) -> str:
    return _parse_date(value.strip()).isoformat()


def _parse_date(text: str) -> datetime.date:
    parsed = None
    if _ISO_DATE.fullmatch(text):
        try:
            parsed = datetime.date.fromisoformat(text)
        except ValueError:
            pass
    # Raised outside the except block so no exception quoting the value is chained.
    if parsed is None:
        raise RuleViolation("must be a real date in YYYY-MM-DD form")
    return parsed


def _upper_alnum(value: str) -> str:
    return _only(_ID_SEPARATORS.sub("", value).upper(), _UPPER_ALNUM,
                 "must contain only letters A-Z and digits")


def _address(value: str) -> str:
    return _text(value).upper()


NORMALIZERS: dict[str, Callable[[str], str]] = {
    "text": _text,
    "email": _email,
    "digits": _digits,
    "phone": _phone,
    "date": _date,
    "upper_alnum": _upper_alnum,
    "address": _address,
}

# Normalizers whose output is drawn from a fixed alphabet: the only ones a
# format-preserving token can imitate. Value: that alphabet.
FIXED_SHAPE: dict[str, str] = {"digits": _DIGITS, "phone": _DIGITS, "upper_alnum": _UPPER_ALNUM}


# --- validators: canonical text -> None (or RuleViolation) ----------------------

def _nonempty(value: str) -> None:
    if not value:
        raise RuleViolation("must not be empty")


def _length(value: str, low: int, high: int, what: str) -> None:
    if not low <= len(value) <= high:
        raise RuleViolation(f"must be {low}-{high} {what}")


def _ssn(value: str) -> None:
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        raise RuleViolation("must be 9 digits")
    area, group, serial = value[:3], value[3:5], value[5:]
    if area in ("000", "666") or area.startswith("9"):
        raise RuleViolation("area number is never issued")
    if group == "00" or serial == "0000":
        raise RuleViolation("group or serial number is never issued")


_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def _email_valid(value: str) -> None:
    local, at, domain = value.partition("@")
    labels = domain.split(".")
    if (len(value) > 254 or not at or not _EMAIL_LOCAL.fullmatch(local)
            or local.startswith(".") or local.endswith(".") or ".." in local
            or len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(x) for x in labels)
            or labels[-1].isdigit()):
        raise RuleViolation("must be an email address like name@example.org")


def _phone_nanp(value: str) -> None:
    if len(value) != 10 or not value.isascii() or not value.isdigit():
        raise RuleViolation("must be a 10-digit North American number")


def _today() -> datetime.date:
    # UTC plus one day: a date of birth entered where it is already tomorrow
    # (UTC+14) must not be refused as being in the future.
    return datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1)


def _date_past(value: str) -> None:
    day = _parse_date(value)
    if day < datetime.date(1900, 1, 1):
        raise RuleViolation("must not be before 1900-01-01")
    if day > _today():
        raise RuleViolation("must not be in the future")


def _ascii_class(value: str, low: int, high: int, alphabet: str, what: str) -> None:
    if not low <= len(value) <= high or any(ch not in alphabet for ch in value):
        raise RuleViolation(f"must be {low}-{high} {what}")


def _drivers_license(value: str) -> None:
    _ascii_class(value, 5, 20, _UPPER_ALNUM, "letters A-Z and digits")


def _utility_account(value: str) -> None:
    _ascii_class(value, 6, 16, _DIGITS, "digits")


def _alnum_id(value: str) -> None:
    _ascii_class(value, 4, 32, _UPPER_ALNUM, "letters A-Z and digits")


def _license_plate(value: str) -> None:
    _ascii_class(value, 2, 8, _UPPER_ALNUM, "letters A-Z and digits")


def _device_id(value: str) -> None:
    _ascii_class(value, 8, 64, _UPPER_ALNUM, "letters A-Z and digits (MAC, IMEI, UUID)")


_NAME_PUNCTUATION = frozenset(" -'’.")


def _name(value: str) -> None:
    _length(value, 1, 200, "characters")
    letters = 0
    for ch in value:
        if ch.isalpha():
            letters += 1
        elif ch not in _NAME_PUNCTUATION and not unicodedata.category(ch).startswith("M"):
            raise RuleViolation("may contain only letters, spaces, hyphens, apostrophes and periods")
    if not letters:
        raise RuleViolation("must contain a letter")


def _address_valid(value: str) -> None:
    _length(value, 3, 300, "characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise RuleViolation("must not contain control characters")
    if not any(ch.isalnum() for ch in value):
        raise RuleViolation("must contain a letter or digit")


VALIDATORS: dict[str, Callable[[str], None]] = {
    "nonempty": _nonempty,
    "ssn": _ssn,
    "email": _email_valid,
    "phone_nanp": _phone_nanp,
    "date_past": _date_past,
    "drivers_license": _drivers_license,
    "utility_account": _utility_account,
    "device_id": _device_id,
    "alnum_id": _alnum_id,
    "license_plate": _license_plate,
    "name": _name,
    "address": _address_valid,
}


# --- masks: canonical text -> what a caller with a "masked" grant may see ---------
# A mask never raises: a value it cannot shape is redacted in full.

def _tail(value: str, prefix: str) -> str:
    return prefix + value[-4:] if len(value) >= 8 else REDACTED


def _mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    return f"{local[0]}***@{domain}" if local and at and domain else REDACTED


def _mask_year_only(value: str) -> str:
    return f"{value[:4]}-**-**" if _ISO_DATE.fullmatch(value) else REDACTED


def _mask_initials(value: str) -> str:
    initials = [next((ch for ch in word if ch.isalpha()), "") for word in value.split()]
    shown = " ".join(f"{ch.upper()}." for ch in initials if ch)
    return shown or REDACTED


MASKS: dict[str, Callable[[str], str]] = {
    "ssn_last4": lambda v: _tail(v, "***-**-"),
    "email": _mask_email,
    "phone_last4": lambda v: _tail(v, "***-***-"),
    "year_only": _mask_year_only,
    # Shows the last four only when that is at most half the value.
    "last4": lambda v: _tail(v, "****"),
    "initials": _mask_initials,
    "full": lambda v: REDACTED,
    "none": lambda v: REDACTED,
}

# A mask that reveals part of a value is only safe on values of the shape it
# expects (year_only on a name would reveal its first four letters).
MASK_NORMALIZERS: dict[str, frozenset[str]] = {
    "ssn_last4": frozenset({"digits"}),
    "email": frozenset({"email"}),
    "phone_last4": frozenset({"phone", "digits"}),
    "year_only": frozenset({"date"}),
    "initials": frozenset({"text"}),
}
