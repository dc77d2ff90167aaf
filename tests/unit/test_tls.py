"""TLS settings, their validation at start, the dev PKI and the certificate principal scheme."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from vault.certs import (
    DevPkiPaths, Issued, dev_pki_is_current, make_ca, make_client_cert, make_server_cert, write_dev_pki,
)
from vault.config import load_settings
from vault.errors import ConfigError
from vault.tls import load_server_tls, principal_of, principal_uri

NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPkiPaths:
    return write_dev_pki(tmp_path_factory.mktemp("pki"), ["intake-311"], ["localhost", "127.0.0.1"])


def tls(pki: DevPkiPaths, **overrides: object) -> dict[str, object]:
    return {"tls_cert_file": pki.server_cert, "tls_key_file": pki.server_key, "tls_client_ca_file": pki.ca, **overrides}


# Settings --------------------------------------------------------------------------


def test_plaintext_is_refused_off_loopback_and_the_error_names_the_tls_settings() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(listen="0.0.0.0:50051")
    assert "loopback" in str(err.value) and "tls_cert_file" in str(err.value)
    load_settings(listen="[::1]:0")
    load_settings(listen="localhost:0")


def test_with_tls_any_address_is_allowed_and_the_files_check_out(pki: DevPkiPaths) -> None:
    settings = load_settings(listen="0.0.0.0:0", **tls(pki))
    assert settings.tls_enabled
    loaded = load_server_tls(settings)
    assert loaded is not None and b"BEGIN CERTIFICATE" in loaded.cert_chain
    assert "redacted" in repr(loaded)


def test_tls_files_go_together(pki: DevPkiPaths) -> None:
    with pytest.raises(ConfigError, match="set all three or none"):
        load_settings(tls_cert_file=pki.server_cert, tls_key_file=pki.server_key)
    with pytest.raises(ConfigError, match="tls_principals needs TLS"):
        load_settings(tls_principals=["x"])


def test_missing_file_names_the_setting(pki: DevPkiPaths, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls_client_ca_file .*No such file"):
        load_server_tls(load_settings(**tls(pki, tls_client_ca_file=tmp_path / "absent.pem")))


def test_garbage_files_name_the_setting_and_never_echo_the_key(pki: DevPkiPaths, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a pem\n")
    with pytest.raises(ConfigError, match="tls_cert_file .*no PEM certificate"):
        load_server_tls(load_settings(**tls(pki, tls_cert_file=junk)))
    with pytest.raises(ConfigError, match="tls_client_ca_file .*no PEM certificate"):
        load_server_tls(load_settings(**tls(pki, tls_client_ca_file=junk)))
    # A certificate where the key should be: the message must not quote the file.
    with pytest.raises(ConfigError, match="tls_key_file .*not a PEM private key") as err:
        load_server_tls(load_settings(**tls(pki, tls_key_file=pki.ca)))
    assert "BEGIN" not in str(err.value)


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: DevPkiPaths) -> None:
    with pytest.raises(ConfigError, match="tls_key_file .*does not match") as err:
        load_server_tls(load_settings(**tls(pki, tls_key_file=pki.client_key("intake-311"))))
    key_text = pki.client_key("intake-311").read_text()
    assert "PRIVATE KEY" not in str(err.value) and key_text.splitlines()[1] not in str(err.value)


def test_an_expired_server_certificate_is_refused(pki: DevPkiPaths, tmp_path: Path) -> None:
    old = make_server_cert(make_ca(), ["localhost"], now=NOW - dt.timedelta(days=100), days=10)
    (tmp_path / "old.pem").write_bytes(old.cert_pem())
    (tmp_path / "old-key.pem").write_bytes(old.key_pem())
    with pytest.raises(ConfigError, match="tls_cert_file .*expired"):
        load_server_tls(load_settings(**tls(pki, tls_cert_file=tmp_path / "old.pem", tls_key_file=tmp_path / "old-key.pem")))


# Principal scheme ------------------------------------------------------------------


def test_the_principal_comes_from_the_san_uri_else_the_cn() -> None:
    ca = make_ca()
    cert = make_client_cert(ca, "intake-311").cert
    assert principal_of(cert) == "intake-311"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:pdv:principal:intake-311"]
    # A certificate from another PKI without our URI: the CN names the principal.
    cn_only = _self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gis-batch")]))
    assert principal_of(cn_only) == "gis-batch"
    assert principal_of(_self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bad name/..")]))) is None
    assert principal_of(_self_signed(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "City")]))) is None


def test_principal_names_are_restricted() -> None:
    for bad in ("", "-lead", "a b", "a/b", "x" * 201):
        with pytest.raises(ValueError):
            principal_uri(bad)


def _self_signed(subject: x509.Name) -> x509.Certificate:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(1).not_valid_before(NOW).not_valid_after(NOW + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )


# Dev PKI ---------------------------------------------------------------------------


def test_dev_pki_files_keys_are_private_and_certs_chain(pki: DevPkiPaths) -> None:
    assert pki.out.stat().st_mode & 0o777 == 0o700
    for key in (pki.ca_key, pki.server_key, pki.client_key("intake-311")):
        assert key.stat().st_mode & 0o777 == 0o600
    ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    client = x509.load_pem_x509_certificate(pki.client_cert("intake-311").read_bytes())
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=91)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert dev_pki_is_current(pki, "intake-311", "127.0.0.1")
    assert not dev_pki_is_current(pki, "intake-311", "10.0.0.1")
    assert not dev_pki_is_current(pki, "someone-else", "127.0.0.1")


def test_a_second_run_keeps_the_ca_and_tightens_loose_key_modes(tmp_path: Path) -> None:
    first = write_dev_pki(tmp_path / "pki", ["a"])
    ca_before = first.ca.read_bytes()
    first.client_key("a").chmod(0o644)
    second = write_dev_pki(tmp_path / "pki", ["a", "b"])
    assert second.ca.read_bytes() == ca_before
    assert second.client_key("a").stat().st_mode & 0o777 == 0o600
    assert second.client_key("b").stat().st_mode & 0o777 == 0o600


def test_issued_key_material_does_not_print() -> None:
    issued: Issued = make_ca()
    assert "redacted" in repr(issued) and "PRIVATE" not in repr(issued)
