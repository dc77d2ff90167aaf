"""Several Vault addresses (vault/keys/failover.py) against real OpenBao servers: a dead port
or a sealed node in front of a live one is passed over, and with every node gone the call
fails KeyUnavailable within vault_retry_seconds."""

from __future__ import annotations

import http.server
import secrets
import socket
import threading
import time

import pytest
import requests

from vault.errors import KeyUnavailable
from vault.keys.openbao import OpenBaoServer, free_loopback_port, provision_transit
from vault.keys.transit import TransitKeyProvider, make_client
from vault.secret import SecretBytes

MOUNT = "transit"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    bao = OpenBaoServer(tmp_path_factory.mktemp("live")).start()
    try:
        provision_transit(bao.client(), MOUNT, "pdv-kek")
        yield bao
    finally:
        bao.stop()


def dead_addr() -> str:
    return f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens there


def deks(n: int) -> list[SecretBytes]:
    return [SecretBytes(secrets.token_bytes(32)) for _ in range(n)]


def provider(addresses: list[str] | str, token: str, retry_seconds: float = 3.0) -> TransitKeyProvider:
    return TransitKeyProvider(make_client(addresses, token, timeout=2.0, retry_seconds=retry_seconds),
                              MOUNT, "pdv-kek")


@pytest.mark.parametrize("as_text", [False, True], ids=["list", "comma-separated"])
def test_a_dead_address_in_front_is_passed_over(live, as_text):
    addresses = [dead_addr(), live.addr]
    keys = provider(", ".join(addresses) if as_text else addresses, live.root_token)
    dek = deks(3)
    wrapped = keys.wrap_keys(dek)
    assert keys.unwrap_keys(wrapped) == dek
    keys.check()


def test_a_sealed_node_in_front_is_passed_over(live, tmp_path):
    sealed = OpenBaoServer(tmp_path / "sealed").start()
    try:
        sealed.seal()
        keys = provider([sealed.addr, live.addr], live.root_token)
        dek = deks(2)
        assert keys.unwrap_keys(keys.wrap_keys(dek)) == dek
    finally:
        sealed.stop()


def test_the_node_that_answered_is_asked_first_next_time(live):
    # The dead address is first in the list; once the live one has answered, later calls go
    # straight to it: 20 calls finish long before 20 rounds of failing over would.
    keys = provider([dead_addr(), live.addr], live.root_token)
    keys.check()
    started = time.monotonic()
    for _ in range(20):
        keys.check()
    assert time.monotonic() - started < 20 * 0.5


def test_a_node_that_comes_back_within_the_retry_window_serves_the_call(tmp_path):
    bao = OpenBaoServer(tmp_path / "bao").start()
    try:
        provision_transit(bao.client(), MOUNT, "pdv-kek")
        keys = provider([bao.addr], bao.root_token, retry_seconds=60.0)
        (wrapped,) = keys.wrap_keys(deks(1))
        bao.seal()
        # Sealed: 503 answers, retried; unsealing from another thread lets the same call finish.
        unsealer = threading.Timer(1.0, bao.unseal)
        unsealer.start()
        try:
            assert len(keys.unwrap_keys([wrapped])) == 1
        finally:
            unsealer.join()
    finally:
        bao.stop()


@pytest.mark.parametrize("retry_seconds", [0.0, 2.0])
def test_every_address_dead_is_key_unavailable_within_the_bound(live, retry_seconds):
    keys = provider([dead_addr(), dead_addr()], live.root_token, retry_seconds=retry_seconds)
    started = time.monotonic()
    with pytest.raises(KeyUnavailable, match="vault sealed or unreachable"):
        keys.wrap_keys(deks(1))
    elapsed = time.monotonic() - started
    # Retried for the whole window (refused connections fail in milliseconds), and no longer
    # than the window plus one last attempt's minimum and the machine's slack.
    assert retry_seconds <= elapsed < retry_seconds + 3.0


@pytest.fixture
def silent_addr():
    """A listener that accepts connections and never answers: every request to it times out."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def test_a_transit_call_whose_answer_was_lost_is_sent_to_the_next_node(live, silent_addr):
    keys = TransitKeyProvider(make_client([silent_addr, live.addr], live.root_token, timeout=0.5, retry_seconds=5.0),
                              MOUNT, "pdv-kek")
    dek = deks(1)
    assert keys.unwrap_keys(keys.wrap_keys(dek)) == dek


def test_a_rotation_whose_answer_was_lost_is_not_sent_again(live, silent_addr):
    # The silent node may have rotated the key before its answer was lost: sending the
    # rotation on to the live node could rotate twice. The call fails instead.
    provision_transit(live.client(), MOUNT, "rotate-once")
    before = live.client().secrets.transit.read_key(name="rotate-once", mount_point=MOUNT)["data"]["latest_version"]
    admin = make_client([silent_addr, live.addr], live.root_token, timeout=0.5, retry_seconds=5.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        admin.secrets.transit.rotate_key(name="rotate-once", mount_point=MOUNT)
    after = live.client().secrets.transit.read_key(name="rotate-once", mount_point=MOUNT)["data"]["latest_version"]
    assert after == before

    # A refused connection never reached a node: the rotation moves on, and happens once.
    admin = make_client([dead_addr(), live.addr], live.root_token, timeout=0.5, retry_seconds=5.0)
    admin.secrets.transit.rotate_key(name="rotate-once", mount_point=MOUNT)
    assert live.client().secrets.transit.read_key(name="rotate-once", mount_point=MOUNT)["data"]["latest_version"] == before + 1


@pytest.fixture
def redirecting_addr(live):
    """A node that answers every request as a standby that does not forward does: 307 to the leader."""

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(307)
            self.send_header("Location", live.addr + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_standby_redirect_is_followed_with_the_token_and_the_body(live, redirecting_addr):
    keys = provider([redirecting_addr], live.root_token, retry_seconds=0.0)
    dek = deks(2)
    assert keys.unwrap_keys(keys.wrap_keys(dek)) == dek
