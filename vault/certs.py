"""A development PKI: a CA, a server certificate and client certificates (ECDSA P-256).

DEV ONLY: the CA key sits next to the certificates it signs. Production certificates
come from the city's PKI; PDV only needs the three files named in the TLS settings.
Client certificates name their principal with a SAN URI `urn:pdv:principal:<name>`
(see vault.tls) and carry the same name as CN.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from vault.tls import principal_uri

CA_DAYS = 365
LEAF_DAYS = 90
CRL_DAYS = 30  # a dev CRL's next update; the server warns (and still uses it) past that
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between machines


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def __repr__(self) -> str:
        return f"Issued(subject={self.cert.subject.rfc4514_string()!r}, key=<redacted>)"


def make_ca(name: str = "PDV dev CA", now: dt.datetime | None = None, days: int = CA_DAYS) -> Issued:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = _builder(subject, subject, key.public_key(), now, days)
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
        x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
    ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    return Issued(builder.sign(key, hashes.SHA256()), key)


def make_server_cert(ca: Issued, hosts: list[str] | tuple[str, ...] = DEFAULT_HOSTS,
                     now: dt.datetime | None = None, days: int = LEAF_DAYS) -> Issued:
    """A server certificate for `hosts` (DNS names or IP addresses), signed by `ca`."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return _leaf(ca, hosts[0], sans, ExtendedKeyUsageOID.SERVER_AUTH, now, days)


def make_client_cert(ca: Issued, principal: str, now: dt.datetime | None = None, days: int = LEAF_DAYS) -> Issued:
    """A client certificate naming `principal` (SAN URI and CN), signed by `ca`.

    `now` and `days` are seams for tests: a `now` far enough back makes an expired one.
    """
    uri = principal_uri(principal)
    return _leaf(ca, principal, [x509.UniformResourceIdentifier(uri)], ExtendedKeyUsageOID.CLIENT_AUTH, now, days)


def _leaf(ca: Issued, common_name: str, sans: list[x509.GeneralName], usage: x509.ObjectIdentifier,
          now: dt.datetime | None, days: int) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _builder(subject, ca.cert.subject, key.public_key(), now, days)
    builder = (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             now: dt.datetime | None, days: int) -> x509.CertificateBuilder:
    start = (now or dt.datetime.now(dt.timezone.utc)) - _BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _BACKDATE + dt.timedelta(days=days))
    )


# Files --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevPkiPaths:
    """Where `write_dev_pki` put things. Only paths: never key material."""

    out: Path

    @property
    def ca(self) -> Path:
        return self.out / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.out / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.out / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.out / "server-key.pem"

    def client_cert(self, principal: str) -> Path:
        return self.out / f"client-{principal}.pem"

    def client_key(self, principal: str) -> Path:
        return self.out / f"client-{principal}-key.pem"

    @property
    def crl(self) -> Path:
        return self.out / "crl.pem"


def write_dev_pki(out: Path, principals: list[str], hosts: list[str] | tuple[str, ...] = DEFAULT_HOSTS) -> DevPkiPaths:
    """Write a dev CA (kept if `out` already has one), its CRL (kept likewise; empty when new),
    a server certificate and one client certificate per principal under `out` (mode 0700).
    Key files are created 0600."""
    for name in principals:
        principal_uri(name)  # refuse a bad name before writing anything
    paths = DevPkiPaths(out)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ca = load_issued(paths.ca, paths.ca_key) if paths.ca.exists() and paths.ca_key.exists() else None
    if ca is None:
        ca = make_ca()
        _write(paths.ca_key, ca.key_pem(), private=True)
        _write(paths.ca, ca.cert_pem())
        _write(paths.crl, make_crl(ca, []))
    elif not paths.crl.exists():
        _write(paths.crl, make_crl(ca, []))
    server = make_server_cert(ca, hosts)
    _write(paths.server_key, server.key_pem(), private=True)
    _write(paths.server_cert, server.cert_pem())
    for name in principals:
        client = make_client_cert(ca, name)
        _write(paths.client_key(name), client.key_pem(), private=True)
        _write(paths.client_cert(name), client.cert_pem())
    return paths


def dev_pki_is_current(paths: DevPkiPaths, principal: str, host: str, now: dt.datetime | None = None) -> bool:
    """Whether `paths` holds a CA, a server certificate for `host` valid for another week, and
    `principal`'s client certificate — so `pdv dev --tls` can keep them across restarts."""
    needed = [paths.ca, paths.server_cert, paths.server_key, paths.client_cert(principal), paths.client_key(principal)]
    if not all(p.exists() for p in needed):
        return False
    cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    covered = {str(v) for v in sans.get_values_for_type(x509.DNSName) + sans.get_values_for_type(x509.IPAddress)}
    soon = (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(days=7)
    return host in covered and cert.not_valid_after_utc > soon


def make_crl(ca: Issued, revoked: list[x509.RevokedCertificate], now: dt.datetime | None = None,
             number: int = 1) -> bytes:
    """A PEM CRL signed by `ca` listing `revoked`, valid for CRL_DAYS."""
    now = now or dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + dt.timedelta(days=CRL_DAYS))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def revoke_in_dev_crl(paths: DevPkiPaths, cert: x509.Certificate, now: dt.datetime | None = None) -> bool:
    """Add `cert` (issued by the dev CA in `paths`) to the CRL there; False if it was listed already.

    Raises ValueError if the certificate is not the dev CA's, or the CRL there is not.
    """
    ca = load_issued(paths.ca, paths.ca_key)
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        raise ValueError(f"the certificate was not issued by the CA in {paths.out}") from None
    listed: list[x509.RevokedCertificate] = []
    number = 1
    if paths.crl.exists():
        crl = x509.load_pem_x509_crl(paths.crl.read_bytes())
        if crl.issuer != ca.cert.subject or not crl.is_signature_valid(ca.key.public_key()):
            raise ValueError(f"{paths.crl} is not signed by the CA in {paths.out}")
        listed = list(crl)
        try:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        except x509.ExtensionNotFound:
            number = len(listed) + 1
    if any(r.serial_number == cert.serial_number for r in listed):
        return False
    now = now or dt.datetime.now(dt.timezone.utc)
    entry = x509.RevokedCertificateBuilder().serial_number(cert.serial_number).revocation_date(now).build()
    _write(paths.crl, make_crl(ca, [*listed, entry], now, number))
    return True


def load_issued(cert_path: Path, key_path: Path) -> Issued:
    """Read back a certificate and its (unencrypted, EC) key."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an EC private key")
    return Issued(cert, key)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    # Replace rather than rewrite in place, so an old file's looser mode never survives.
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
