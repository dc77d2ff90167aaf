"""SecretBytes: key material that cannot be printed, logged or pickled by accident."""

from __future__ import annotations

import hmac


class SecretBytes:
    """Holds secret bytes; `reveal()` is the only way out.

    repr/str are redacted and pickling raises, so a key that ends up in a log line,
    a traceback's locals or a multiprocessing queue does not leak.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, (bytes, bytearray)):
            raise TypeError("SecretBytes holds bytes")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes(<redacted {len(self._value)} bytes>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretBytes):
            return NotImplemented
        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        raise TypeError("SecretBytes is not hashable")

    def __reduce__(self) -> object:
        raise TypeError("SecretBytes cannot be pickled")

    def __getstate__(self) -> object:
        raise TypeError("SecretBytes cannot be pickled")
