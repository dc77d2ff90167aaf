"""TransitKeyProvider and OpenBaoServer against a real OpenBao (the bundled `bao` binary)."""

from __future__ import annotations

import os
import secrets
import socket
import stat
import time
import uuid
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from vault.domain import WrappedKey
from vault.errors import ConfigError, DecryptionFailed, KeyUnavailable
from vault.keys.openbao import (
    LISTENER_LIMITS,
    OpenBaoServer,
    create_service_token,
    find_bao_binary,
    provision_transit,
    render_service_policy,
)
from vault.keys.transit import TransitKeyProvider, make_client
from vault.secret import SecretBytes

MOUNT = "transit"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    bao = OpenBaoServer(tmp_path_factory.mktemp("openbao")).start()
    try:
        yield bao
    finally:
        bao.stop()


@pytest.fixture(scope="module")
def root(server: OpenBaoServer) -> hvac.Client:
    client = make_client(server.addr, server.root_token)
    provision_transit(client, MOUNT, "pdv-kek")
    return client


@pytest.fixture
def key_name(root: hvac.Client) -> str:
    name = f"pdv-kek-{uuid.uuid4().hex[:8]}"
    provision_transit(root, MOUNT, name)
    return name


@pytest.fixture
def provider(root: hvac.Client, key_name: str) -> TransitKeyProvider:
    return TransitKeyProvider(root, MOUNT, key_name)


def deks(n: int) -> list[SecretBytes]:
    return [SecretBytes(secrets.token_bytes(32)) for _ in range(n)]


def count_calls(client: hvac.Client) -> list[str]:
    """Record the paths the provider posts to (the real call still happens)."""
    calls: list[str] = []
    real_post = client.adapter.post

    def post(url, **kwargs):
        calls.append(url)
        return real_post(url, **kwargs)

    client.adapter.post = post
    return calls


def test_round_trip_crosses_batches(server, key_name):
    client = make_client(server.addr, server.root_token)
    calls = count_calls(client)
    provider = TransitKeyProvider(client, MOUNT, key_name)
    keys = deks(2500)

    wrapped = provider.wrap_keys(keys)
    assert len(calls) == 3  # 1000 + 1000 + 500: one Transit call per batch
    assert provider.unwrap_keys(wrapped) == keys
    assert len(calls) == 6
    assert all(w.ciphertext.startswith("vault:v1:") and w.kek_version == 1 for w in wrapped)
    assert len({w.ciphertext for w in wrapped}) == 2500


def test_empty_input_makes_no_call(server, key_name):
    client = make_client(server.addr, server.root_token)
    calls = count_calls(client)
    provider = TransitKeyProvider(client, MOUNT, key_name)
    assert provider.wrap_keys([]) == []
    assert provider.unwrap_keys([]) == []
    assert calls == []


def test_listener_accepts_a_batch_beyond_the_default_string_limit(root, key_name):
    # Default max_request_json_strings (1000) refuses ~500 items; we ship a raised limit.
    assert LISTENER_LIMITS["max_request_json_strings"] > 2 * 1000 + 2
    provider = TransitKeyProvider(root, MOUNT, key_name, batch_size=1000)
    keys = deks(1000)
    assert provider.unwrap_keys(provider.wrap_keys(keys)) == keys


def test_rotation_new_wraps_use_new_version_old_still_unwrap(root, provider, key_name):
    old_keys = deks(3)
    old = provider.wrap_keys(old_keys)
    root.secrets.transit.rotate_key(name=key_name, mount_point=MOUNT)

    new_keys = deks(3)
    new = provider.wrap_keys(new_keys)
    assert {w.kek_version for w in old} == {1}
    assert all(w.ciphertext.startswith("vault:v2:") and w.kek_version == 2 for w in new)
    assert provider.unwrap_keys(old + new) == old_keys + new_keys


def test_service_token_rewraps_to_the_latest_version_it_learns_from_a_wrap(server, root, key_name):
    service = TransitKeyProvider(make_client(server.addr, create_service_token(root, MOUNT, key_name)), MOUNT, key_name)
    keys = deks(3)
    old = service.wrap_keys(keys)
    assert service.latest_version() == 1
    root.secrets.transit.rotate_key(name=key_name, mount_point=MOUNT)
    root.secrets.transit.rotate_key(name=key_name, mount_point=MOUNT)
    assert service.latest_version() == 3  # without reading the key: the token may not

    prefix, version, body = old[1].ciphertext.split(":", 2)
    tampered = WrappedKey(f"{prefix}:{version}:{body[:10]}{'A' if body[10] != 'A' else 'B'}{body[11:]}")
    fresh = service.rewrap([old[0], tampered, old[2]])
    assert fresh[1] is None  # one bad item does not fail the batch
    assert [w.kek_version for w in (fresh[0], fresh[2])] == [3, 3]
    assert service.unwrap_keys([fresh[0], fresh[2]]) == [keys[0], keys[2]]
    assert service.rewrap([tampered]) == [None]  # every item bad: still an answer per item


def test_tampered_wrapped_key_fails_without_echoing_anything(provider):
    good = provider.wrap_keys(deks(2))
    prefix, version, body = good[1].ciphertext.split(":", 2)
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    tampered = WrappedKey(f"{prefix}:{version}:{flipped}")

    for batch in ([tampered], [good[0], tampered], [WrappedKey("vault:v1:not-base64!")]):
        with pytest.raises(DecryptionFailed) as caught:
            provider.unwrap_keys(batch)
        assert str(caught.value) == "decryption failed"
        # The hvac error's body holds ciphertexts and the good item's plaintext: not kept.
        assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_version_that_was_never_created_fails_decryption(provider):
    (wrapped,) = provider.wrap_keys(deks(1))
    future = WrappedKey(wrapped.ciphertext.replace("vault:v1:", "vault:v9:", 1))
    with pytest.raises(DecryptionFailed):
        provider.unwrap_keys([future])


def test_unknown_key_is_a_setup_fault_not_a_decryption_failure(root, provider):
    (wrapped,) = provider.wrap_keys(deks(1))
    missing = TransitKeyProvider(root, MOUNT, "pdv-no-such-key")
    with pytest.raises(KeyUnavailable):
        missing.unwrap_keys([wrapped])


def test_check_passes_on_a_usable_key(provider):
    provider.check()


def test_sealed_vault_is_key_unavailable(server, provider):
    (wrapped,) = provider.wrap_keys(deks(1))
    server.seal()
    try:
        for call in (provider.check, lambda: provider.wrap_keys(deks(1)),
                     lambda: provider.unwrap_keys([wrapped])):
            with pytest.raises(KeyUnavailable, match="vault sealed or unreachable"):
                call()
    finally:
        server.start()  # unseals the running server
    assert len(provider.unwrap_keys([wrapped])) == 1


@pytest.mark.serial  # asserts elapsed time
def test_unresponsive_vault_times_out_as_key_unavailable():
    # A listener that accepts connections but never answers: the read timeout must fire.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        addr = f"http://127.0.0.1:{silent.getsockname()[1]}"
        provider = TransitKeyProvider(make_client(addr, "t", timeout=0.5), MOUNT, "pdv-kek")
        started = time.monotonic()
        with pytest.raises(KeyUnavailable, match="vault sealed or unreachable"):
            provider.wrap_keys(deks(1))
        assert time.monotonic() - started < 3


@pytest.mark.serial  # asserts elapsed time
def test_killed_server_is_key_unavailable_fast(tmp_path):
    bao = OpenBaoServer(tmp_path / "bao").start()
    try:
        client = make_client(bao.addr, bao.root_token, timeout=5.0)
        provision_transit(client)
        provider = TransitKeyProvider(client, MOUNT, "pdv-kek")
        (wrapped,) = provider.wrap_keys(deks(1))
        bao.kill()

        started = time.monotonic()
        with pytest.raises(KeyUnavailable, match="vault sealed or unreachable"):
            provider.unwrap_keys([wrapped])
        with pytest.raises(KeyUnavailable):
            provider.check()
        assert time.monotonic() - started < 10
    finally:
        bao.stop()


def test_data_survives_stop_and_start(tmp_path):
    data_dir = tmp_path / "bao"
    with OpenBaoServer(data_dir) as bao:
        client = make_client(bao.addr, bao.root_token)
        provision_transit(client)
        keys = deks(5)
        wrapped = TransitKeyProvider(client, MOUNT, "pdv-kek").wrap_keys(keys)
        bao.stop()
        bao.start()
        provider = TransitKeyProvider(make_client(bao.addr, bao.root_token), MOUNT, "pdv-kek")
        assert provider.unwrap_keys(wrapped) == keys

    # A fresh object on the same data_dir (as `pdv dev` after a reboot) unseals it too.
    with OpenBaoServer(data_dir) as again:
        provider = TransitKeyProvider(make_client(again.addr, again.root_token), MOUNT, "pdv-kek")
        assert provider.unwrap_keys(wrapped) == keys
        provision_transit(make_client(again.addr, again.root_token))  # idempotent


def test_service_token_wraps_and_unwraps_but_cannot_manage_keys(server, root, key_name):
    other_mount = f"transit-{uuid.uuid4().hex[:6]}"
    provision_transit(root, other_mount, key_name)
    token = create_service_token(root, MOUNT, key_name)
    service = make_client(server.addr, token)

    provider = TransitKeyProvider(service, MOUNT, key_name)
    provider.check()
    keys = deks(10)
    assert provider.unwrap_keys(provider.wrap_keys(keys)) == keys

    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.rotate_key(name=key_name, mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.read_key(name=key_name, mount_point=MOUNT)
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.read_key(name=key_name, mount_point=other_mount)
    with pytest.raises(hvac.exceptions.Forbidden):
        service.secrets.transit.read_key(name="pdv-kek", mount_point=MOUNT)
    with pytest.raises(KeyUnavailable, match="check the token's policy"):
        TransitKeyProvider(service, other_mount, key_name).wrap_keys(deks(1))
    with pytest.raises(KeyUnavailable, match="check the token's policy"):
        TransitKeyProvider(service, MOUNT, "pdv-kek").check()

    me = service.auth.token.lookup_self()["data"]
    assert me["policies"] == [f"pdv-service-{MOUNT}-{key_name}"]
    assert me["orphan"] is True
    service.auth.token.renew_self()


def test_shipped_service_policy_is_for_the_default_key_and_renders_for_others():
    shipped = (Path(__file__).resolve().parents[2] / "deploy/openbao/pdv-service.hcl").read_text()
    assert render_service_policy() == shipped
    rendered = render_service_policy("kms/pdv", "kek-2")
    for op in ("encrypt", "decrypt", "rewrap"):
        assert f'path "kms/pdv/{op}/kek-2"' in rendered
    code = [line for line in rendered.splitlines() if not line.lstrip().startswith("#")]
    assert not any("pdv-kek" in line or "transit/" in line for line in code)
    with pytest.raises(ConfigError):
        render_service_policy("transit", 'x"\npath "*')
    with pytest.raises(ConfigError):
        render_service_policy("transit", "*")


def test_credentials_file_is_private(server):
    mode = stat.S_IMODE(os.stat(server.credentials_path).st_mode)
    assert mode == 0o600


def test_secrets_do_not_appear_in_reprs_or_the_server_log(server, provider):
    token = server.root_token
    unseal_key = server._load_credentials()["unseal_key"]
    for text in (repr(server), str(server), repr(provider), str(provider)):
        assert token not in text and unseal_key not in text
    log = server.log_path.read_text()
    assert token not in log and unseal_key not in log


def test_find_bao_binary_is_executable():
    assert os.access(find_bao_binary(), os.X_OK)
