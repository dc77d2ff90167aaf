"""mTLS material: load and check the server's files, and name the principal of a client certificate.

Principal scheme: a client certificate names its principal with a SAN URI
``urn:pdv:principal:<name>``; a certificate without one falls back to its subject CN.
Names are 1–200 characters of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from vault.crl import RevocationList
from vault.errors import ConfigError
from vault.secret import SecretBytes

if TYPE_CHECKING:
    from vault.config import Settings

PRINCIPAL_URI_PREFIX = "urn:pdv:principal:"
PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def principal_uri(name: str) -> str:
    """The SAN URI that names `name`; raises ValueError for a name outside the scheme."""
    if not PRINCIPAL_NAME.fullmatch(name):
        raise ValueError(f"principal name {name[:40]!r} must match {PRINCIPAL_NAME.pattern}")
    return PRINCIPAL_URI_PREFIX + name


def principal_of(cert: x509.Certificate) -> str | None:
    """The principal a client certificate names: its first `urn:pdv:principal:` SAN URI, else its CN.

    Returns None when neither is present or the name is outside the scheme.
    """
    try:
        uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.UniformResourceIdentifier
        )
    except x509.ExtensionNotFound:
        uris = []
    names = [u[len(PRINCIPAL_URI_PREFIX):] for u in uris if u.startswith(PRINCIPAL_URI_PREFIX)]
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not names or not PRINCIPAL_NAME.fullmatch(names[0]):
        return None
    return names[0]


@lru_cache(maxsize=1024)
def principal_of_pem(pem: bytes) -> str | None:
    """`principal_of` for the PEM the TLS stack hands over; cached, as a peer sends the same cert every call."""
    try:
        return principal_of(x509.load_pem_x509_certificate(pem))
    except ValueError:
        return None


@dataclass(frozen=True)
class ServerTls:
    """The checked contents of the three TLS files, ready for the gRPC edge."""

    cert_chain: bytes
    private_key: SecretBytes
    client_ca: bytes
    revocations: RevocationList | None = None  # tls_crl_file, checked on every call


def load_server_tls(settings: Settings, now: dt.datetime | None = None) -> ServerTls | None:
    """Read and check tls_cert_file, tls_key_file, tls_client_ca_file and (if set) tls_crl_file;
    None if TLS is not configured.

    Raises ConfigError naming the setting at fault: a missing or unreadable file, one
    that does not parse, an expired server certificate, a key that does not match it, or
    a CRL not signed by the client CA. Messages never include file contents.
    """
    if settings.tls_cert_file is None or settings.tls_key_file is None or settings.tls_client_ca_file is None:
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    chain_pem = _read("tls_cert_file", settings.tls_cert_file)
    key_pem = SecretBytes(_read("tls_key_file", settings.tls_key_file))
    ca_pem = _read("tls_client_ca_file", settings.tls_client_ca_file)
    leaf = _certificates("tls_cert_file", settings.tls_cert_file, chain_pem)[0]
    _certificates("tls_client_ca_file", settings.tls_client_ca_file, ca_pem)
    if leaf.not_valid_after_utc < now:
        raise ConfigError(f"tls_cert_file {settings.tls_cert_file}: the certificate expired on {leaf.not_valid_after_utc:%Y-%m-%d}")
    try:
        key = serialization.load_pem_private_key(key_pem.reveal(), password=None)
    except TypeError:
        raise ConfigError(f"tls_key_file {settings.tls_key_file}: the key is encrypted; give an unencrypted PEM key (mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ConfigError(f"tls_key_file {settings.tls_key_file}: not a PEM private key") from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise ConfigError(f"tls_key_file {settings.tls_key_file}: the key does not match the certificate in tls_cert_file")
    revocations = RevocationList(settings.tls_crl_file, ca_pem) if settings.tls_crl_file is not None else None
    return ServerTls(chain_pem, key_pem, ca_pem, revocations)


def _read(setting: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting} {path}: {exc.strerror}") from None


def _certificates(setting: str, path: Path, pem: bytes) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certs = []
    if not certs:
        raise ConfigError(f"{setting} {path}: no PEM certificate found")
    return certs


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

