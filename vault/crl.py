"""Client-certificate revocation: a PEM CRL issued by the client CA, checked on every call.

gRPC's Python server credentials cannot consult a CRL, so the authentication interceptor
asks `RevocationList.is_revoked` with the peer certificate of each call. The CRL's
signature is verified against tls_client_ca_file when it is loaded (at start: a CRL that
does not verify stops the server; on reload: the previous list stays in force).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509

from vault.errors import ConfigError

log = logging.getLogger("pdv.tls")

SETTING = "tls_crl_file"


@dataclass(frozen=True)
class _Revoked:
    issuer: x509.Name
    serials: frozenset[int]


class RevocationList:
    """The serials a CRL file revokes; `reload` swaps in the file as it is now."""

    def __init__(self, path: Path, client_ca_pem: bytes) -> None:
        self.path = path
        self._client_ca = client_ca_pem
        self._lock = threading.Lock()
        self._current = read_crl(path, client_ca_pem)

    def __repr__(self) -> str:
        return f"RevocationList(path={str(self.path)!r}, revoked={len(self._current.serials)})"

    @property
    def revoked_count(self) -> int:
        return len(self._current.serials)

    def reload(self) -> int:
        """Re-read and re-verify the file; returns how many serials it revokes.

        Raises ConfigError (and keeps the list in force) if the file is unreadable, not a
        CRL, or not signed by the client CA.
        """
        with self._lock:
            self._current = read_crl(self.path, self._client_ca)
            return len(self._current.serials)

    def is_revoked(self, cert_pem: bytes) -> bool:
        """Whether the CRL revokes this certificate (by issuer and serial number)."""
        current = self._current  # replaced whole on reload, read without a lock
        identity = _issuer_and_serial(cert_pem)
        return identity is not None and identity[0] == current.issuer and identity[1] in current.serials


def read_crl(path: Path, client_ca_pem: bytes, now: dt.datetime | None = None) -> _Revoked:
    """Parse the CRL at `path` and check that a certificate of `client_ca_pem` signed it.

    Raises ConfigError naming the setting and the file, never printing their contents.
    A CRL past its next update is used, with a warning in the server log.
    """
    try:
        crl = x509.load_pem_x509_crl(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{SETTING} {path}: {exc.strerror}") from None
    except ValueError:
        raise ConfigError(f"{SETTING} {path}: not a PEM certificate revocation list") from None
    try:
        authorities = [c for c in x509.load_pem_x509_certificates(client_ca_pem) if c.subject == crl.issuer]
    except ValueError:
        authorities = []
    if not any(crl.is_signature_valid(ca.public_key()) for ca in authorities):  # type: ignore[arg-type]
        raise ConfigError(f"{SETTING} {path}: the CRL is not signed by a CA of tls_client_ca_file; "
                          "use the CRL issued by the CA that signs the client certificates")
    now = now or dt.datetime.now(dt.timezone.utc)
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        log.warning("%s %s: the CRL was due for renewal on %s; publish a fresh one", SETTING, path,
                    f"{crl.next_update_utc:%Y-%m-%d}")
    return _Revoked(crl.issuer, frozenset(r.serial_number for r in crl))


@lru_cache(maxsize=1024)
def _issuer_and_serial(cert_pem: bytes) -> tuple[x509.Name, int] | None:
    # Cached: a peer sends the same certificate on every call.
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return None
    return cert.issuer, cert.serial_number
