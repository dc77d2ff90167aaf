"""Token generation and strict parsing.

Opaque tokens are `pdv_` + 22 URL-safe base64 characters (128 bits): either
random, or — for deterministic fields — an HMAC of the normalized value under a
per-field key. The two look alike. Format-preserving tokens are random
characters in the value's own shape (digit for digit, letter for letter).
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import secrets
import string

PREFIX = "pdv_"
TOKEN_BYTES = 16
_OPAQUE = re.compile(r"pdv_[A-Za-z0-9_-]{21}[AQgw]")  # 128 bits: the last char carries 2 bits
_MAX_TOKEN_LEN = 256


def _encode(raw: bytes) -> str:
    return PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def random_token() -> str:
    """128 bits from the CSPRNG: no subject, time or sequence inside."""
    return _encode(os.urandom(TOKEN_BYTES))


def deterministic_token(field_key: bytes, normalized_value: str) -> str:
    """Same key and normalized value give the same token; nothing else does."""
    return _encode(hmac.digest(field_key, normalized_value.encode(), "sha256")[:TOKEN_BYTES])


def is_opaque_token(text: str) -> bool:
    """Strict syntax check, done before any lookup."""
    return len(text) == 26 and _OPAQUE.fullmatch(text) is not None


def format_preserving_token(normalized_value: str) -> str:
    """A random token shaped like the value: each digit → random digit, letter → random letter."""
    out = []
    for ch in normalized_value:
        if ch.isdigit():
            out.append(secrets.choice(string.digits))
        elif ch.isascii() and ch.isalpha():
            out.append(secrets.choice(string.ascii_uppercase if ch.isupper() else string.ascii_lowercase))
        else:
            out.append(ch)
    return "".join(out)


def is_plausible_format_preserving(text: str) -> bool:
    """A format-preserving token is printable ASCII, short, and never looks opaque."""
    return 0 < len(text) <= _MAX_TOKEN_LEN and text.isascii() and text.isprintable() and not text.startswith(PREFIX)
