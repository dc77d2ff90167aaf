"""AdminService end to end (issue 15, item 4): each method under its own grant and logged,
refusals logged, rewrap and disposal streamed, audit verify over the API catching a tampered
log, and the `pdv keys | dispose | audit verify | hold list | policy` commands going through it.

Real OpenBao (a Transit key of the module's own, so rotating and trimming touch nothing
else), both databases, a real gRPC server, the generated client.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from pdv.v1 import admin_pb2
from pdv_client import PdvClient, Record
from pdv_client.errors import FailedPrecondition, InvalidArgument, NotFound, PdvError, PermissionDenied
from sqlalchemy import text

from tests.conftest import DATABASES
from tests.support.stack import PRINCIPAL, Stack, start_stack, stack_with_policy
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer, create_admin_token, create_service_token, provision_transit
from vault.services.rewrap import RewrapJob
from vault.services.tokenize_model import new_subject_id
from vault.storage.disposal import DISPOSAL_LOCK
from vault.storage.jobs import job_lock

POLICY_FILE = Path(__file__).with_name("admin_policy.yaml")
PURPOSE = "benefits_eligibility"  # email and phone 3y, full_name 7y
NAMED = ("loader-svc", "custodian", "officer", "auditor", "policy-admin", "narrow-keys", "override-admin")
YEAR = timedelta(days=366)


@dataclass
class Admin:
    stack: Stack
    keys: dict[str, str] = field(repr=False)
    clients: dict[str, PdvClient]
    kek: str
    service_token: str = field(repr=False)
    policy_path: Path

    def files(self) -> dict[str, Path]:
        """The module stack's checkpoint file and ledger, for another server on its database."""
        tmp = self.policy_path.parent
        return {"audit_checkpoint_file": tmp / "checkpoints.jsonl", "tombstone_ledger": tmp / "tombstones.jsonl"}

    def count(self, sql: str, **params: object) -> int:
        with self.stack.app.store.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar_one()

    def entries(self, principal: str, action: str, outcome: str) -> int:
        return self.count("SELECT count(*) FROM access_log WHERE principal = :p AND action = :a AND outcome = :o",
                          p=principal, a=action, o=outcome)


def own_kek(openbao: OpenBaoServer) -> tuple[str, str, str]:
    root = openbao.client()
    name = f"pdv-kek-{uuid.uuid4().hex[:8]}"
    provision_transit(root, "transit", name)
    return name, create_service_token(root, "transit", name), create_admin_token(root, "transit", name)


@pytest.fixture(scope="module", params=DATABASES)
def admin(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Admin]:
    tmp = tmp_path_factory.mktemp("admin-api")
    policy = tmp / "policy.yaml"
    shutil.copy(POLICY_FILE, policy)
    kek, service, admin_token = own_kek(openbao)
    with stack_with_policy(openbao, service, request.param, tmp, policy, NAMED, kek_name=kek, dek_spare_keys=0,
                           kek_admin_over_api=True, vault_admin_token=admin_token,
                           admin_principals=["override-admin"], audit_checkpoint_file=tmp / "checkpoints.jsonl",
                           tombstone_ledger=tmp / "tombstones.jsonl") as (stack, keys):
        yield Admin(stack, keys, {p: stack.client(keys[p]) for p in NAMED}, kek, service, policy)


def resident(n: int) -> Record:
    return Record({"full_name": f"Grace Hopper {chr(65 + n % 26)}{chr(97 + n // 26 % 26)}", "email": f"admin{n}-{uuid.uuid4().hex[:6]}@example.org",
                   "phone": f"212-555-{1000 + n % 9000:04d}"})


def load(admin: Admin, n: int = 1) -> list:
    return admin.clients["loader-svc"].tokenize([resident(i) for i in range(n)], purpose=PURPOSE, source="test")


# Every AdminService method: (grant holder, logged action, a call).
CALLS: dict[str, tuple[str, str, Callable[[PdvClient], object]]] = {
    "KeyStatus": ("custodian", "kek_status", lambda c: c.admin.key_status()),
    "RotateKek": ("custodian", "kek_rotate", lambda c: c.admin.rotate_kek()),
    "ScheduleKekRotation": ("custodian", "kek_schedule", lambda c: c.admin.schedule_kek_rotation(None)),
    "Rewrap": ("custodian", "rewrap", lambda c: c.admin.rewrap()),
    "TrimKek": ("custodian", "kek_trim", lambda c: c.admin.trim_kek()),
    "RotateDek": ("custodian", "rotate_dek", lambda c: c.admin.rotate_dek(new_subject_id())),
    "Dispose": ("officer", "dispose", lambda c: c.admin.dispose()),
    "VerifyAuditLog": ("auditor", "audit_verify", lambda c: c.admin.verify_audit_log()),
    "ListHolds": ("officer", "list_holds", lambda c: c.admin.list_holds()),
    "ReloadPolicy": ("policy-admin", "policy_reload", lambda c: c.admin.reload_policy()),
    "CheckPolicy": ("policy-admin", "policy_check", lambda c: c.admin.check_policy("version: 1\nroles: {}\n")),
}


def test_the_refusal_table_lists_every_admin_method() -> None:
    assert set(CALLS) == set(admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods_by_name)


@pytest.mark.parametrize("method", sorted(CALLS))
def test_each_method_is_refused_without_its_grant_and_the_refusal_is_logged(admin: Admin, method: str) -> None:
    holder, action, call = CALLS[method]
    # A data principal, another duty's holder, and a grant on some fields only: none may.
    others = ["loader-svc", "narrow-keys", "auditor" if holder != "auditor" else "custodian"]
    for principal in others:
        before = admin.entries(principal, action, "denied")
        with pytest.raises(PermissionDenied) as err:
            call(admin.clients[principal])
        assert "grant on every field for every purpose" in str(err.value)
        assert admin.entries(principal, action, "denied") == before + 1, principal


def test_key_status_rotate_rewrap_streamed_and_trim_held_by_the_backup_horizon(admin: Admin) -> None:
    custodian = admin.clients["custodian"]
    results = load(admin, 12)
    status = custodian.admin.key_status()
    assert status.vault_metadata and status.versions and status.min_decryption_version >= 1
    assert sum(status.data_keys.values()) >= 12

    latest = custodian.admin.rotate_kek()
    assert latest == status.latest_version + 1
    behind = custodian.admin.key_status().rows_behind
    assert behind >= 12

    ticks: list[tuple[int, int]] = []
    report = custodian.admin.rewrap(batch_size=5, on_progress=lambda total, done: ticks.append((total, done)))
    assert ticks, "no progress message came before the report"
    assert [d for _, d in ticks] == sorted(d for _, d in ticks)  # progress only moves forward
    assert ticks[-1][1] == ticks[-1][0] >= 12
    assert report.latest_version == latest and report.rewrapped >= 12 and report.remaining == 0
    after = custodian.admin.key_status()
    assert after.rows_behind == 0 and set(after.data_keys) == {latest}
    assert admin.entries("custodian", "rewrap", "ok") >= 1

    # Nothing below the latest is used any more, but v<latest> is minutes old: the horizon holds.
    with pytest.raises(FailedPrecondition, match="refusing to trim: .* the backup horizon is 35.0 days"):
        custodian.admin.trim_kek()
    assert admin.entries("custodian", "kek_trim", "refused") >= 1
    # Over the API the horizon can be lengthened, never shortened.
    with pytest.raises(InvalidArgument, match="can only be lengthened"):
        custodian.admin.trim_kek(backup_horizon_days=1)
    with pytest.raises(FailedPrecondition, match="the backup horizon is 400.0 days"):
        custodian.admin.trim_kek(backup_horizon_days=400)
    assert custodian.admin.key_status().min_decryption_version == status.min_decryption_version

    schedule = custodian.admin.schedule_kek_rotation(timedelta(days=90))
    assert schedule.auto_rotate_period == timedelta(days=90) and schedule.next_rotation is not None
    assert custodian.admin.schedule_kek_rotation(None).auto_rotate_period is None
    with pytest.raises(InvalidArgument, match="at most hourly"):
        custodian.admin.schedule_kek_rotation(timedelta(minutes=5))

    admin.stack.app.keyring.clear()  # read the rewrapped keys back from the database
    reader = admin.clients["loader-svc"]
    assert reader.detokenize_one(results[0].tokens["email"], purpose=PURPOSE).startswith("admin0-")


def test_dek_rotation_over_the_api_keeps_tokens_and_values(admin: Admin) -> None:
    (rec,) = load(admin)
    done = admin.clients["custodian"].admin.rotate_dek(rec.subject_id)
    assert done.subject_id == rec.subject_id and done.old_versions == (1,) and done.new_version == 2
    assert done.values == 3
    assert admin.entries("custodian", "rotate_dek", "ok") >= 1
    admin.stack.app.keyring.clear()
    assert admin.clients["loader-svc"].detokenize_one(rec.tokens["phone"], purpose=PURPOSE) == "2125551000"
    with pytest.raises(NotFound):
        admin.clients["custodian"].admin.rotate_dek(new_subject_id())
    with pytest.raises(InvalidArgument, match="subject_id: malformed subject id"):
        admin.clients["custodian"].admin.rotate_dek("not-a-subject")


def test_disposal_dry_run_and_run_stream_progress_and_report(admin: Admin, openbao: OpenBaoServer) -> None:
    # A cohort collected by a server whose clock says four years ago: its email and phone
    # (3y) have expired, its name (7y) has not.
    past = datetime.now(timezone.utc) - 4 * YEAR
    old = start_stack(openbao, admin.stack.settings.database_url, admin.service_token, migrate_first=False,
                      clock=lambda: past, kek_name=admin.kek, **admin.files())
    try:
        cohort = old.client().tokenize([resident(100 + i) for i in range(6)], purpose=PURPOSE, source="test")
    finally:
        old.stop()
    officer = admin.clients["officer"]
    ticks: list[tuple[int, int]] = []
    dry = officer.admin.dispose(dry_run=True, on_progress=lambda total, done: ticks.append((total, done)))
    assert dry.dry_run and dry.values_disposed.get("email", 0) >= 6 and dry.values_disposed.get("phone", 0) >= 6
    assert ticks and ticks[-1][0] >= 12 and ticks[-1][1] == ticks[-1][0]
    assert admin.entries("officer", "dispose_dry_run", "ok") >= 1
    assert admin.clients["loader-svc"].detokenize_one(cohort[0].tokens["email"], purpose=PURPOSE)  # still there

    with pytest.raises(InvalidArgument, match="only allowed with dry_run"):
        officer.admin.dispose(now=datetime.now(timezone.utc) + YEAR)
    assert admin.entries("officer", "dispose", "invalid") >= 1

    ticks.clear()
    real = officer.admin.dispose(on_progress=lambda total, done: ticks.append((total, done)))
    assert not real.dry_run and real.to_json()["total_disposed"] >= 12 and ticks
    assert admin.entries("officer", "dispose", "ok") >= 1
    (gone,) = admin.clients["loader-svc"].detokenize([cohort[0].tokens["email"]], purpose=PURPOSE)
    assert gone.code != 0
    assert admin.clients["loader-svc"].detokenize_one(cohort[0].tokens["full_name"], purpose=PURPOSE)


def test_list_holds_shows_the_holds_in_force(admin: Admin) -> None:
    (rec,) = load(admin)
    placer = admin.clients["override-admin"]
    assert placer.place_hold(rec.subject_id, case_id="CV-77", reason="litigation")
    officer = admin.clients["officer"]
    (hold,) = officer.admin.list_holds(rec.subject_id)
    assert (hold.subject_id, hold.case_id, hold.reason, hold.placed_by) == (rec.subject_id, "CV-77", "litigation",
                                                                          "override-admin")
    assert hold.placed_at is not None and "litigation" not in repr(hold)
    assert any(h.subject_id == rec.subject_id for h in officer.admin.list_holds())
    placer.release_hold(rec.subject_id, case_id="CV-77")
    assert officer.admin.list_holds(rec.subject_id) == []
    with pytest.raises(InvalidArgument, match="subject_id: malformed subject id"):
        officer.admin.list_holds("../etc")


def test_policy_check_and_reload(admin: Admin) -> None:
    pol = admin.clients["policy-admin"]
    good = pol.admin.check_policy(POLICY_FILE.read_text())
    assert good.valid and good.principals == 6 and any("narrow_keys" in w for w in good.warnings)
    bad = pol.admin.check_policy("version: 1\nroles:\n  r:\n    grants:\n      - fields: [shoe_size]\n"
                                 "        actions: [keys]\n        purposes: '*'\n")
    assert not bad.valid and "line 5" in bad.error and "shoe_size" in bad.error

    original = admin.policy_path.read_text()
    try:
        # The auditor loses its role; the reload takes effect on the next call.
        admin.policy_path.write_text(original.replace("  auditor: [auditor]\n", ""))
        info = pol.admin.reload_policy()
        assert info.source == str(admin.policy_path) and info.principals == 5
        with pytest.raises(PermissionDenied):
            admin.clients["auditor"].admin.verify_audit_log()
        admin.policy_path.write_text("version: 2\nroles: {}\n")
        with pytest.raises(FailedPrecondition, match="unsupported policy version"):
            pol.admin.reload_policy()
        assert admin.entries("policy-admin", "policy_reload", "refused") >= 1
    finally:
        admin.policy_path.write_text(original)
        pol.admin.reload_policy()
    assert admin.clients["auditor"].admin.verify_audit_log().intact


def test_the_cli_goes_through_the_api_with_an_admin_credential(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    for name in [n for n in __import__("os").environ if n.startswith("PDV_")]:
        monkeypatch.delenv(name)  # no database URL, no Vault token: only the target and a key
    monkeypatch.chdir(admin.policy_path.parent)
    target = ["--target", admin.stack.target]

    def pdv(principal: str, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("PDV_API_KEY", admin.keys[principal])
        code = pdv_main([*argv, *target])
        out = capsys.readouterr()
        return code, out.out, out.err

    (rec,) = load(admin)
    code, out, _ = pdv("custodian", "keys", "status")
    assert code == 0 and "KEK latest version" in out and "min_decryption_version" in out
    code, out, _ = pdv("custodian", "keys", "rotate")
    assert code == 0 and "KEK rotated: latest version is now" in out
    code, out, err = pdv("custodian", "keys", "rewrap", "--batch", "2")
    assert code == 0 and "rewrapped" in out and "still below" in out and "rewrap" in err  # the bar is on stderr
    code, _, err = pdv("custodian", "keys", "rewrap", "--batch", "5000")
    assert code == 2 and "--batch must be between 1 and 1000" in err  # refused before any call
    code, out, _ = pdv("custodian", "keys", "rotate-dek", "--subject", rec.subject_id)
    assert code == 0 and "3 value(s) re-encrypted under DEK v2; deleted v1" in out
    code, _, err = pdv("custodian", "keys", "trim")
    assert code == 1 and "FailedPrecondition" in err and "refusing to trim" in err

    code, out, _ = pdv("officer", "dispose", "--dry-run", "--now", "2300-01-01T00:00:00Z")
    assert code == 0 and '"dry_run": true' in out
    admin.clients["override-admin"].place_hold(rec.subject_id, case_id="CLI-1", reason="audit")
    code, out, _ = pdv("officer", "hold", "list", "--subject", rec.subject_id)
    assert code == 0 and '"case_id": "CLI-1"' in out
    code, out, _ = pdv("auditor", "audit", "verify")
    assert code == 0 and "audit log intact" in out
    code, out, _ = pdv("policy-admin", "policy", "reload")
    assert code == 0 and "policy reloaded from" in out
    code, out, _ = pdv("policy-admin", "policy", "check", "--server", str(admin.policy_path))
    assert code == 0 and "ok against the server's catalog" in out

    code, _, err = pdv("officer", "keys", "status")  # a records officer holds no keys grant
    assert code == 1 and "PermissionDenied" in err
    for secret in admin.keys.values():
        assert secret not in out + err


def test_without_the_admin_token_kek_changes_stay_local(openbao: OpenBaoServer, database_url: str) -> None:
    kek, service, _ = own_kek(openbao)
    s = start_stack(openbao, database_url, service, kek_name=kek, admin_principals=[PRINCIPAL])
    try:
        client = s.client()
        client.tokenize([resident(1)], purpose=PURPOSE, source="test")
        status = client.admin.key_status()
        assert status.latest_version == 1 and not status.vault_metadata and status.data_keys == {1: 1}
        for call in (client.admin.rotate_kek, client.admin.trim_kek, lambda: client.admin.schedule_kek_rotation(None)):
            with pytest.raises(FailedPrecondition, match="holds no Vault admin token .* --local"):
                call()
        report = client.admin.rewrap()  # the service token may rewrap
        assert report.latest_version == 1 and report.remaining == 0
        with s.app.store.engine.connect() as conn:
            refused = conn.execute(text("SELECT count(*) FROM access_log WHERE action IN "
                                        "('kek_rotate', 'kek_trim', 'kek_schedule') AND outcome = 'refused'")).scalar_one()
        assert refused == 3
    finally:
        s.stop()


def test_audit_verify_over_the_api_reports_a_tampered_log(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL],
                    audit_checkpoint_file=tmp_path / "checkpoints.jsonl")
    try:
        client = s.client()
        (rec,) = client.tokenize([resident(1)], purpose=PURPOSE, source="test")
        client.detokenize_one(rec.tokens["email"], purpose=PURPOSE)
        first = client.admin.verify_audit_log()
        assert first.intact and not first.empty and first.entries >= 2 and not first.problems
        with s.app.store.engine.begin() as conn:
            target = conn.execute(text("SELECT min(id) FROM access_log WHERE action = 'detokenize'")).scalar_one()
            conn.execute(text("UPDATE access_log SET outcome = 'denied' WHERE id = :i"), {"i": target})
        report = client.admin.verify_audit_log()
        assert not report.intact and report.problem_count >= 1
        assert any(p.entry_id == target and "MAC mismatch" in p.what for p in report.problems), report.problems
        assert all(p.text for p in report.problems)

        # `pdv audit verify` with only the address and a key: exit 1, the problems on stderr.
        monkeypatch.setenv("PDV_API_KEY", s.api_key)
        capsys.readouterr()
        assert pdv_main(["audit", "verify", "--target", s.target]) == 1
        err = capsys.readouterr().err
        assert err.startswith("audit log TAMPERED:") and f"(id {target}): MAC mismatch" in err, err
    finally:
        s.stop()


def test_rewrap_and_disposal_run_on_one_replica_at_a_time(admin: Admin) -> None:
    """While another replica holds the job's lock (its scheduled run), the call is ABORTED,
    says why, changes nothing and is logged; once the lock is free it runs."""
    store = admin.stack.app.store
    custodian, officer = admin.clients["custodian"].admin, admin.clients["officer"].admin
    for lock, call, action, busy in (
        (RewrapJob.LOCK, custodian.rewrap, "rewrap", "another replica is rewrapping now"),
        (DISPOSAL_LOCK, lambda: officer.dispose(dry_run=True), "dispose_dry_run", "another replica is running disposal"),
    ):
        principal = "custodian" if action == "rewrap" else "officer"
        before = admin.entries(principal, action, "failed")
        with job_lock(store, lock) as mine:
            assert mine
            with pytest.raises(PdvError) as err:
                call()
        assert err.value.status is grpc.StatusCode.ABORTED and busy in err.value.message
        assert admin.entries(principal, action, "failed") == before + 1
        call()  # the lock is free again
