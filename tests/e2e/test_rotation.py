"""KEK rotation end to end (DESIGN §4, §6): rotate, rewrap online and after kill -9, status, trim.

Each test has its own Transit key, service token and admin token (the admin policy rendered from
deploy/openbao/pdv-admin.hcl), so rotating and trimming never touch the session's `pdv-kek`.
Data is created through the client against a real server; the rotation runs with the admin token
only, as an operator's `pdv keys …` would.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import hvac
import hvac.exceptions
import pytest
from sqlalchemy import text
from pdv_client import Record

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.bootstrap import rewrap_service, rotation_service
from vault.cli.serve import start_rewrap_job
from vault.cli.main import main
from vault.config import Settings, load_settings
from vault.domain import WrappedKey
from vault.errors import DecryptionFailed, RotationRefused
from vault.keys.openbao import OpenBaoServer, create_admin_token, create_service_token, provision_transit
from vault.keys.transit import TransitKeyProvider, make_client
from vault.keys.transit_admin import TransitKeyAdmin
from vault.services.rewrap import RewrapJob
from vault.storage.jobs import lock_key
from vault.services.rotation import RotationService
from vault.storage.engine import create_store_engine
from vault.storage.rotation import Rewrapped, RotationRepository
from vault.storage.store import Store

PURPOSE = "benefits_eligibility"
MOUNT = "transit"


@dataclass
class Kek:
    name: str
    service_token: str
    admin_token: str


@pytest.fixture
def kek(openbao: OpenBaoServer) -> Kek:
    root = openbao.client()
    name = f"pdv-kek-{uuid.uuid4().hex[:8]}"
    provision_transit(root, MOUNT, name)
    return Kek(name, create_service_token(root, MOUNT, name), create_admin_token(root, MOUNT, name))


@pytest.fixture
def served(openbao: OpenBaoServer, kek: Kek, database_url: str) -> Iterator[Stack]:
    # No spare DEKs: a spare wrapped before the rotation would (correctly, for up to the
    # cache TTL) still be handed out, and these tests check versions row by row.
    s = start_stack(openbao, database_url, kek.service_token, kek_name=kek.name, dek_spare_keys=0,
                    admin_principals=[PRINCIPAL])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def admin_settings(openbao: OpenBaoServer, kek: Kek, database_url: str) -> Settings:
    return load_settings(database_url=database_url, vault_addr=openbao.addr, vault_admin_token=kek.admin_token,
                         kek_name=kek.name)


def admin_env(openbao: OpenBaoServer, kek: Kek, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    env.update(PDV_DATABASE_URL=database_url, PDV_VAULT_ADDR=openbao.addr, PDV_VAULT_ADMIN_TOKEN=kek.admin_token,
               PDV_KEK_NAME=kek.name)
    return env


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, openbao: OpenBaoServer, kek: Kek, database_url: str,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    for name, value in admin_env(openbao, kek, database_url).items():
        if name.startswith("PDV_"):
            monkeypatch.setenv(name, value)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["keys", argv[0], "--local", *argv[1:]])
        out, err = capsys.readouterr()
        assert kek.admin_token not in out + err
        return code, out, err

    return run


def tokenize(stack: Stack, n: int, tag: str) -> dict[str, str]:
    """n new subjects with one email each; token → expected value."""
    values = [f"{tag}{i}@example.org" for i in range(n)]
    results = stack.client().tokenize([Record({"email": v}) for v in values], purpose=PURPOSE, source="311")
    return {r.tokens["email"]: v for r, v in zip(results, values)}


def assert_all_detokenize(stack: Stack, expected: dict[str, str]) -> None:
    stack.app.keyring.clear()  # every DEK unwrapped again by Vault, from the rewrapped rows
    results = stack.client().detokenize(list(expected), purpose=PURPOSE)
    assert [(r.code, r.value) for r in results] == [(0, expected[r.token]) for r in results]


def repo_for(database_url: str) -> tuple[RotationRepository, Store]:
    store = Store(create_store_engine(database_url, pool_size=2))
    return RotationRepository(store), store


def versions(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    with rotation_service(settings) as service:
        status = service.status()
    return status.data_keys, status.secrets


# --- rotate and rewrap ----------------------------------------------------------------------------

def test_rotate_then_rewrap_online(served: Stack, admin_settings: Settings, database_url: str) -> None:
    old = tokenize(served, 1500, "old")
    with rotation_service(admin_settings) as service:
        assert service.rotate() == 2
        new = tokenize(served, 20, "new")  # new subjects get DEKs wrapped by v2 at once
        status = service.status()
        assert (status.kek.latest, status.kek.min_decryption) == (2, 1)
        assert status.data_keys == {1: 1500, 2: 20}
        assert status.secrets == {1: 1}  # the index root
        assert_all_detokenize(served, old | new)  # v1 rows still unwrap

        # The server keeps serving reads and writes while the rewrap runs.
        stop, failures, written = threading.Event(), [], {}

        def traffic() -> None:
            client, i = served.client(), 0
            try:
                while not stop.is_set():
                    i += 1
                    (rec,) = client.tokenize([Record({"email": f"live{i}@example.org"})], purpose=PURPOSE, source="311")
                    written[rec.tokens["email"]] = f"live{i}@example.org"
                    token = random.choice(list(old))
                    assert client.detokenize_one(token, purpose=PURPOSE) == old[token]
            except Exception as exc:  # reported below
                failures.append(exc)

        thread = threading.Thread(target=traffic)
        thread.start()
        progress: list[int] = []
        try:
            report = service.rewrap(batch_size=100, on_progress=progress.append)
        finally:
            stop.set()
            thread.join()
        assert failures == []
        assert (report.latest, report.rewrapped, report.failed, report.remaining) == (2, 1501, 0, 0)
        assert sum(progress) == 1500
        status = service.status()
        assert set(status.data_keys) == {2} and status.secrets == {2: 1}
    assert_all_detokenize(served, old | new | written)
    # A restarted server unwraps the rewrapped index root: lookups still find everyone.
    assert served.client().lookup("email", "old7@example.org", purpose=PURPOSE)


def test_rewrap_never_overwrites_a_concurrent_change(served: Stack, admin_settings: Settings, database_url: str) -> None:
    tokenize(served, 3, "c")
    repo, store = repo_for(database_url)
    try:
        with rotation_service(admin_settings) as service:
            service.rotate()
        rows = repo.keys_below(2, None, 10)
        assert len(rows) == 3
        stale = [Rewrapped(r.subject_id, r.version, "vault:v1:not-what-is-stored", WrappedKey("vault:v2:x")) for r in rows]
        assert repo.replace_keys(stale) == 0
        assert [r.wrapped for r in repo.keys_below(2, None, 10)] == [r.wrapped for r in rows]
    finally:
        store.close()


def test_the_scan_for_old_keys_meets_every_row_once(served: Stack, admin_settings: Settings, database_url: str) -> None:
    tokenize(served, 300, "p")
    with rotation_service(admin_settings) as service:
        service.rotate()
    repo, store = repo_for(database_url)
    try:
        seen, after, chunks = [], None, 0
        while rows := repo.keys_below(2, after, 7):
            seen += [r.subject_id for r in rows]
            after, chunks = rows[-1].position, chunks + 1
        total = repo.count_keys_below(2)
    finally:
        store.close()
    assert total == 300 and len(seen) == 300 and len(set(seen)) == 300
    assert chunks == 43  # full chunks of 7 until the last


def test_rewrap_meets_rows_changed_after_it_read_them(
    served: Stack, admin_settings: Settings, openbao: OpenBaoServer, kek: Kek, database_url: str
) -> None:
    """Between the read and the write of a chunk: one key is used (its row gets a new version, at
    another place on PostgreSQL), one subject is shredded, one key is rewrapped by someone else."""
    results = served.client().tokenize([Record({"email": f"m{i}@example.org"}) for i in range(4)],
                                       purpose=PURPOSE, source="311")
    expected = {r.tokens["email"]: f"m{i}@example.org" for i, r in enumerate(results)}
    token_of = {r.subject_id: r.tokens["email"] for r in results}
    repo, store = repo_for(database_url)
    try:
        with rotation_service(admin_settings) as service:
            service.rotate()
        rows = repo.keys_below(2, None, 10)
        assert len(rows) == 4
        used, shredded, changed, untouched = rows
        admin = TransitKeyAdmin(make_client(openbao.addr, kek.admin_token), MOUNT, kek.name)
        fresh = admin.rewrap([WrappedKey(r.wrapped) for r in rows])

        client = served.client()
        client.tokenize([Record({"phone": "2025550143"}, subject_id=used.subject_id)], purpose=PURPOSE, source="311")
        (outcome,) = client.shred_subjects([shredded.subject_id], reason="resident request")
        assert outcome.status == "shredded"
        (theirs,) = admin.rewrap([WrappedKey(changed.wrapped)])
        assert repo.replace_keys([Rewrapped(changed.subject_id, changed.version, changed.wrapped, theirs)]) == 1
        if database_url.startswith("postgresql"):  # the used key's row really is elsewhere now
            (moved,) = [r for r in repo.keys_below(2, None, 10) if r.subject_id == used.subject_id]
            assert moved.position[0] != used.position[0]

        changes = [Rewrapped(r.subject_id, r.version, r.wrapped, new, r.position) for r, new in zip(rows, fresh)]
        assert repo.replace_keys(changes) == 2  # the used key and the untouched one
        stored = {r.subject_id: r.wrapped for r in repo.keys_below(99, None, 10)}
    finally:
        store.close()
    assert stored == {
        used.subject_id: fresh[0].ciphertext, changed.subject_id: theirs.ciphertext,
        untouched.subject_id: fresh[3].ciphertext,
    }
    del expected[token_of[shredded.subject_id]]
    assert_all_detokenize(served, expected)


def test_rewrap_killed_at_random_points_resumes(
    served: Stack, openbao: OpenBaoServer, kek: Kek, admin_settings: Settings, database_url: str
) -> None:
    expected = tokenize(served, 3000, "k")
    with rotation_service(admin_settings) as service:
        service.rotate()
    env = admin_env(openbao, kek, database_url)
    command = [sys.executable, "-m", "vault.cli.main", "keys", "rewrap", "--local", "--batch", "10"]
    rng = random.Random()
    repo, store = repo_for(database_url)
    kills_mid_run = 0
    try:
        for _ in range(4):
            before = repo.key_counts().get(2, 0)
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # Wait until it is visibly rewrapping, then kill -9 at a random moment after.
            deadline = time.monotonic() + 30
            while proc.poll() is None and repo.key_counts().get(2, 0) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills_mid_run += 1
            proc.wait()
            counts = repo.key_counts()
            assert sum(counts.values()) == 3000 and set(counts) <= {1, 2}  # nothing lost or half-written
        assert kills_mid_run >= 1
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "0 still below v2" in done.stdout
        assert kek.admin_token not in done.stdout + done.stderr
        assert repo.key_counts() == {2: 3000}
        assert repo.secret_counts() == {2: 1}
    finally:
        store.close()
    assert_all_detokenize(served, expected)


def test_status_counts_rows_per_version(served: Stack, cli: Callable[..., tuple[int, str, str]]) -> None:
    tokenize(served, 7, "s")
    code, out, _ = cli("rotate")
    assert code == 0 and "v2" in out
    tokenize(served, 4, "t")
    code, out, _ = cli("status")
    assert code == 0
    assert "KEK latest version        v2" in out
    assert "min_decryption_version    v1" in out
    assert "min_available_version     0 (nothing trimmed)" in out
    assert "data_keys                 v1: 7, v2: 4" in out
    assert "wrapped_secrets           v1: 1" in out
    assert "8 row(s) below v2" in out
    code, out, _ = cli("rewrap")
    assert code == 0 and "rewrapped 8 to KEK v2" in out
    code, out, _ = cli("status")
    assert "data_keys                 v2: 11" in out and "wrapped_secrets           v2: 1" in out


# --- trim and the backup horizon ---------------------------------------------------------------

def test_trim_refused_while_rows_reference_old_versions(
    served: Stack, admin_settings: Settings, cli: Callable[..., tuple[int, str, str]], openbao: OpenBaoServer, kek: Kek
) -> None:
    tokenize(served, 5, "r")
    with rotation_service(admin_settings) as service:
        service.rotate()
        with pytest.raises(RotationRefused) as refused:
            service.trim(timedelta(0))
    message = str(refused.value)
    assert "below v2" in message and "v1: 5 data keys" in message and "v1: 1 wrapped secrets" in message
    assert "pdv keys rewrap" in message
    code, _, err = cli("trim", "--backup-horizon-days", "0")
    assert code == 2 and "v1: 5 data keys" in err
    key = openbao.client().secrets.transit.read_key(name=kek.name)["data"]
    assert (key["min_decryption_version"], key["min_available_version"]) == (1, 0)  # untouched


def test_trim_refused_before_the_backup_horizon(
    served: Stack, admin_settings: Settings, cli: Callable[..., tuple[int, str, str]], openbao: OpenBaoServer, kek: Kek
) -> None:
    tokenize(served, 5, "h")
    with rotation_service(admin_settings) as service:
        service.rotate()
        service.rewrap()
        with pytest.raises(RotationRefused) as refused:
            service.trim()  # the configured 35 days
    message = str(refused.value)
    assert "v1 was superseded by v2" in message and "backup horizon is 35.0 days" in message
    assert "35.0 days remain" in message
    code, _, err = cli("trim", "--backup-horizon-days", "10")
    assert code == 2 and "backup horizon is 10.0 days" in err and "10.0 days remain" in err
    key = openbao.client().secrets.transit.read_key(name=kek.name)["data"]
    assert (key["min_decryption_version"], key["min_available_version"]) == (1, 0)

    # The same horizon, 36 days on (an injected clock, not a sleep): allowed.
    later = lambda: datetime.now(timezone.utc) + timedelta(days=36)  # noqa: E731
    with rotation_service(admin_settings, clock=later) as service:
        assert service.trim().trimmed


def test_trim_after_rewrap_makes_old_backups_unrecoverable(
    served: Stack, admin_settings: Settings, cli: Callable[..., tuple[int, str, str]],
    openbao: OpenBaoServer, kek: Kek, database_url: str,
) -> None:
    expected = tokenize(served, 20, "b")
    repo, store = repo_for(database_url)
    try:
        backup = [WrappedKey(r.wrapped) for r in repo.keys_below(99, None, 1000)]  # a copy of data_keys
    finally:
        store.close()
    assert len(backup) == 20 and {w.kek_version for w in backup} == {1}
    service_keys = TransitKeyProvider(make_client(openbao.addr, kek.service_token), MOUNT, kek.name)
    assert len(service_keys.unwrap_keys(backup)) == 20  # the copy is recoverable today

    assert cli("rotate")[0] == 0
    assert cli("rewrap")[0] == 0
    assert len(service_keys.unwrap_keys(backup)) == 20  # ... and after the rewrap, until the trim
    code, out, _ = cli("trim", "--backup-horizon-days", "0")
    assert code == 0 and "below v2 trimmed" in out

    key = openbao.client().secrets.transit.read_key(name=kek.name)["data"]
    assert (key["min_decryption_version"], key["min_available_version"], key["latest_version"]) == (2, 2, 2)
    assert list(key["keys"]) == ["2"]
    for wrapped in backup:  # the backup horizon guarantee: not even Vault can unwrap the copy
        with pytest.raises(DecryptionFailed):
            service_keys.unwrap_keys([wrapped])
    assert_all_detokenize(served, expected)  # the live data is untouched
    code, out, _ = cli("trim", "--backup-horizon-days", "0")
    assert code == 0 and "nothing to trim" in out
    code, out, _ = cli("status")
    assert "min_available_version     v2 (versions below it are trimmed)" in out


def test_trim_gives_way_to_a_row_that_appears_while_it_runs(
    served: Stack, admin_settings: Settings, openbao: OpenBaoServer, kek: Kek, database_url: str
) -> None:
    """A server holding a DEK wrapped before the rotation stores it between the check and the trim."""
    expected = tokenize(served, 2, "race")
    repo, store = repo_for(database_url)
    try:
        (row,) = repo.keys_below(2, None, 1)[:1]
        with rotation_service(admin_settings) as service:
            service.rotate()
            service.rewrap()
            (rewrapped,) = [r for r in repo.keys_below(99, None, 10) if r.subject_id == row.subject_id]
            real = RotationRepository.key_counts
            calls = []

            def key_counts(self: RotationRepository) -> dict[int, int]:
                calls.append(1)
                if len(calls) == 2:  # after the first check: the old-version row comes back
                    repo.replace_keys([Rewrapped(row.subject_id, row.version, rewrapped.wrapped, WrappedKey(row.wrapped))])
                return real(self)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(RotationRepository, "key_counts", key_counts)
                with pytest.raises(RotationRefused, match="appeared while trimming; nothing was trimmed"):
                    service.trim(timedelta(0))
    finally:
        store.close()
    key = openbao.client().secrets.transit.read_key(name=kek.name)["data"]
    assert (key["min_decryption_version"], key["min_available_version"]) == (1, 0)  # rolled back
    assert_all_detokenize(served, expected)  # including the subject whose row went back to v1


def test_admin_token_holds_exactly_the_rotation_calls(openbao: OpenBaoServer, kek: Kek) -> None:
    admin = hvac.Client(url=openbao.addr, token=kek.admin_token, timeout=5)
    transit = admin.secrets.transit
    assert transit.read_key(name=kek.name)["data"]["latest_version"] == 1  # allowed: metadata
    forbidden = {
        "encrypt": lambda: transit.encrypt_data(name=kek.name, plaintext="AAAA"),
        "decrypt": lambda: transit.decrypt_data(name=kek.name, ciphertext="vault:v1:AAAA"),
        "export": lambda: transit.export_key(name=kek.name, key_type="encryption-key"),
        "backup": lambda: transit.backup_key(name=kek.name),
        "delete": lambda: transit.delete_key(name=kek.name),
        "another key": lambda: transit.read_key(name="pdv-kek"),
        "policies": lambda: admin.sys.read_policy(name="root"),
    }
    for what, call in forbidden.items():
        with pytest.raises(hvac.exceptions.Forbidden):
            call()


# --- scheduled rotation and the in-server rewrap ---------------------------------------------------

def test_schedule_sets_the_rotation_period_in_vault_and_status_shows_it(
    served: Stack, cli: Callable[..., tuple[int, str, str]], openbao: OpenBaoServer, kek: Kek
) -> None:
    def vault_period() -> int:
        return openbao.client().secrets.transit.read_key(name=kek.name)["data"]["auto_rotate_period"]

    code, out, _ = cli("status")
    assert code == 0 and "auto_rotate_period        off" in out
    code, out, _ = cli("schedule", "--every", "90d")
    assert code == 0 and "every 90d" in out
    assert vault_period() == 90 * 86400
    created = openbao.client().secrets.transit.read_key(name=kek.name)["data"]["keys"]["1"]
    due = datetime.fromtimestamp(created, timezone.utc) + timedelta(days=90)
    code, out, _ = cli("status")
    assert f"auto_rotate_period        90d (next rotation about {due:%Y-%m-%d %H:%M} UTC)" in out
    code, out, _ = cli("schedule", "--every", "12w")
    assert vault_period() == 84 * 86400 and "every 12w" in out

    for bad in ("30m", "90", "soon"):  # refused before Vault is asked
        with pytest.raises(SystemExit) as usage:
            cli("schedule", "--every", bad)
        assert usage.value.code == 2
    assert vault_period() == 84 * 86400

    code, out, _ = cli("schedule", "--off")
    assert code == 0 and "off" in out and vault_period() == 0
    assert "auto_rotate_period        off" in cli("status")[1]


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    """Poll until `condition` holds (the job runs on its own thread); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the rewrap job did not get there in time"
        time.sleep(0.05)


def test_the_server_rewraps_by_itself_after_each_rotation(served: Stack, admin_settings: Settings) -> None:
    assert start_rewrap_job(served.app, served.settings.model_copy(update={"rewrap_interval_seconds": 0})) is None
    expected = tokenize(served, 1200, "auto")
    # The job holds only the stack's service token: it may rewrap, not rotate (see the admin test).
    job = start_rewrap_job(served.app, served.settings.model_copy(update={"rewrap_interval_seconds": 0.1}))
    assert job is not None
    try:
        with rotation_service(admin_settings) as service:
            for latest in (2, 3):
                assert service.rotate() == latest  # as Vault's own schedule would
                wait_for(lambda: versions(admin_settings) == ({latest: len(expected)}, {latest: 1}))
                expected |= tokenize(served, 5, f"v{latest}-")  # new subjects: wrapped by the latest at once
                assert versions(admin_settings)[0] == {latest: len(expected)}
    finally:
        job.stop()
    assert not job._thread.is_alive()
    assert_all_detokenize(served, expected)
    assert served.client().lookup("email", "auto7@example.org", purpose=PURPOSE)  # the index root, rewrapped
    assert "rewrap to KEK v3: 1206 rewrapped" in served.log.getvalue()  # 1205 data keys and the index root


def test_the_rewrap_job_runs_on_one_replica_at_a_time(served: Stack, admin_settings: Settings) -> None:
    tokenize(served, 3, "one")
    with rotation_service(admin_settings) as service:
        service.rotate()
    job = RewrapJob(rewrap_service(served.app), served.app.store, interval=3600)
    if served.app.store.dialect == "postgresql":
        with served.app.store.engine.connect() as other:  # another replica's round
            assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(b"PDVREWRP")}).scalar()
            assert job.run_once() is None
            assert versions(admin_settings)[0] == {1: 3}
            other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(b"PDVREWRP")})
    report = job.run_once()
    assert report is not None and (report.latest, report.rewrapped, report.remaining) == (2, 4, 0)
    assert job.run_once().rewrapped == 0  # nothing left: a cheap round
