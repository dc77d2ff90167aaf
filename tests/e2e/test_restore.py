"""Disposal survives a restore: a database backup taken before field shreds, retention
disposal and de-identification is restored, and the server started on it serves none of
what was destroyed (the tombstone ledger replays it), on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pdv_client import Record
from pdv_client.errors import FailedPrecondition
from sqlalchemy import text

from tests.support.backups import backup_database, restore_database
from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.bootstrap import disposal_service
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer

PURPOSE = "benefits_eligibility"  # full_name and date_of_birth 7y; email and phone 3y
YEAR = timedelta(days=366)
NOT_FOUND = 5


def resident(n: int) -> Record:
    return Record({"full_name": f"Grace Hopper {chr(65 + n)}", "email": f"grace{n}@example.org",
                   "phone": f"212-555-{1000 + n}", "date_of_birth": "1984-03-07"})


def count(stack: Stack, sql: str) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def readable(stack: Stack, tokens: list[str], purpose: str = PURPOSE) -> list[bool]:
    return [r.code == 0 for r in stack.client().detokenize(tokens, purpose=purpose)]


def test_a_restored_copy_serves_no_shredded_disposed_or_deidentified_value(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path
) -> None:
    ledger, backup = tmp_path / "tombstones.jsonl", tmp_path / "backup"

    def start(**kw: object) -> Stack:
        return start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL],
                           tombstone_ledger=ledger, **kw)

    eight_years_ago = datetime.now(timezone.utc) - 8 * YEAR
    old = start(clock=lambda: eight_years_ago)  # everything it collects has expired by now
    try:
        (gone,) = old.client().tokenize([resident(0)], purpose=PURPOSE, source="311")
    finally:
        old.stop()
    stack = start(migrate_first=False)
    try:
        client = stack.client()
        shredded, disposed = client.tokenize([resident(1), resident(2)], purpose=PURPOSE, source="311")
        # The same field again, collected for billing (7y): the disposal at 4y must leave it.
        (billing,) = client.tokenize([Record({"email": "grace2.billing@example.org"}, subject_id=disposed.subject_id)],
                                     purpose="billing", source="billing")
    finally:
        stack.stop()
    backup_database(database_url, backup)

    stack = start(migrate_first=False)
    try:
        client = stack.client()
        assert client.shred_fields(shredded.subject_id, ["email"], reason="resident request R-17").status == "shredded"
        report = disposal_service(stack.app).dispose(now=datetime.now(timezone.utc) + 4 * YEAR).to_json()
        assert (report["subjects_shredded"], report["values_deidentified"]) == (1, {"date_of_birth": 1})
        before = {t: count(stack, f"SELECT count(*) FROM {t}") for t in ("tombstones", "deidentified_values", "field_values")}
    finally:
        stack.stop()

    restore_database(database_url, backup)
    for _ in range(2):  # the second start finds nothing more to replay
        restored = start(migrate_first=False)
        try:
            assert readable(restored, [shredded.tokens["email"], shredded.tokens["full_name"]]) == [False, True]
            assert readable(restored, [disposed.tokens["email"], disposed.tokens["phone"],
                                       disposed.tokens["full_name"], disposed.tokens["date_of_birth"]]) == [
                False, False, True, True]
            assert readable(restored, [billing.tokens["email"]], purpose="billing") == [True]
            assert not any(readable(restored, list(gone.tokens.values())))
            client = restored.client()
            assert client.lookup("email", "grace1@example.org", purpose=PURPOSE) == []
            assert client.lookup("phone", "212-555-1002", purpose=PURPOSE) == []
            assert [m.subject_id for m in client.lookup("email", "grace2.billing@example.org", purpose="billing")] == [
                disposed.subject_id]
            # The kept birth year is back, once: the restored copy had none, the replay wrote it again.
            assert {t: count(restored, f"SELECT count(*) FROM {t}") for t in before} == before
            assert count(restored, "SELECT count(*) FROM subjects WHERE id = '%s'" % gone.subject_id) == 0
            if "again" not in locals():  # a value collected after the shred, which the next start must leave
                (again,) = client.tokenize([Record({"email": "grace1.new@example.org"}, subject_id=shredded.subject_id)],
                                           purpose=PURPOSE, source="311")
                before["field_values"] += 1
            assert readable(restored, [again.tokens["email"]]) == [True]
        finally:
            restored.stop()


# --- a database and its ledger rolled back together ---------------------------------------

def health_of(stack: Stack, service: str) -> int:
    with grpc.insecure_channel(stack.target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


def wait_for_serving(stack: Stack, timeout: float = 60) -> None:
    """Follow the health stream until the server reports SERVING (it re-checks on its own)."""
    with grpc.insecure_channel(stack.target) as channel:
        for update in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=timeout):
            if update.status == health_pb2.HealthCheckResponse.SERVING:
                return


def test_a_rolled_back_database_serves_nothing_until_reconciled(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    ledger, checkpoints, backup = tmp_path / "tombstones.jsonl", tmp_path / "checkpoints.jsonl", tmp_path / "backup"
    settings = {"tombstone_ledger": ledger, "audit_checkpoint_file": checkpoints, "restore_check_seconds": 0.2}

    def start(**kw: object) -> Stack:
        return start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], **settings, **kw)

    stack = start()
    try:
        gone, partly = stack.client().tokenize([resident(3), resident(4)], purpose=PURPOSE, source="311")
    finally:
        stack.stop()
    backup_database(database_url, backup)
    ledger_then = ledger.read_text() if ledger.exists() else ""
    stack = start(migrate_first=False)
    try:
        stack.client().shred_subjects([gone.subject_id], reason="resident request R-18")
        stack.client().shred_fields(partly.subject_id, ["email"], reason="resident request R-19")
    finally:
        stack.stop()
    ledger_now = ledger.read_text()

    restore_database(database_url, backup)
    ledger.write_text(ledger_then)  # one backup held both: the ledger lost the shreds too
    restored = start(migrate_first=False)
    try:
        names = ("", "pdv.v1.TokenService", "pdv.v1.SubjectService", "pdv.v1.DisclosureService")
        assert [health_of(restored, n) for n in names] == [health_pb2.HealthCheckResponse.NOT_SERVING] * 4
        with pytest.raises(FailedPrecondition, match="pdv restore reconcile"):
            restored.client().detokenize([gone.tokens["email"]], purpose=PURPOSE)
        with pytest.raises(FailedPrecondition, match="restored from an older copy"):
            restored.client().shred_subjects([partly.subject_id], reason="x")
        with pytest.raises(FailedPrecondition, match="restored from an older copy"):  # a disclosure releases values too
            restored.client().disclosure.disclose([gone.tokens["email"]], purpose="public_disclosure",
                                                  case_id="req_" + "0" * 24)
        assert restored.log.getvalue().count("ROLLBACK DETECTED") == 1
        assert count(restored, "SELECT count(*) FROM access_log WHERE action = 'serve' AND outcome = 'refused' "
                               "AND field = 'restore_not_reconciled'") == 3

        # The operator gets the ledger back from its own storage, then reconciles.
        ledger.write_text(ledger_now)
        for name, value in (("DATABASE_URL", database_url), ("VAULT_ADDR", openbao.addr), ("VAULT_TOKEN", vault_token),
                            ("TOMBSTONE_LEDGER", str(ledger)), ("AUDIT_CHECKPOINT_FILE", str(checkpoints)),
                            ("DEV_POLICY", "true")):
            monkeypatch.setenv(f"PDV_{name}", value)
        assert pdv_main(["restore", "status"]) == 1
        assert pdv_main(["audit", "verify", "--local"]) == 1  # a rollback without a reconcile stays a failure
        assert "the database rolled back" in capsys.readouterr().err
        assert pdv_main(["restore", "reconcile", "--reason", "disk failure, restored the 02:00 backup"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert (report["subjects_shredded_again"], report["field_shreds_reapplied"]) == (1, 1)
        assert report["restore_recorded_at"] and report["behind"]
        assert pdv_main(["restore", "status"]) == 0
        assert pdv_main(["audit", "verify", "--local"]) == 0  # re-baselined: green, the cut-off checkpoints noted
        err = capsys.readouterr().err
        assert f"superseded by the restore of {report['restore_recorded_at']}" in err and "TAMPERED" not in err

        wait_for_serving(restored)
        assert [health_of(restored, n) for n in names] == [health_pb2.HealthCheckResponse.SERVING] * 4
        assert readable(restored, [gone.tokens["email"], partly.tokens["email"], partly.tokens["phone"]]) == [
            False, False, True]
        assert count(restored, "SELECT count(*) FROM access_log WHERE action = 'restore' AND outcome = 'reconciled'") == 1
    finally:
        restored.stop()

    restore_database(database_url, backup)  # the same old copy again: past the restore
    again = start(migrate_first=False)
    try:
        assert health_of(again, "") == health_pb2.HealthCheckResponse.NOT_SERVING
        assert "the restore of" in again.log.getvalue()
    finally:
        again.stop()
    assert pdv_main(["audit", "verify", "--local"]) == 1
    # A restore record Vault did not sign supersedes nothing, and is itself a problem.
    forged = {"at": "2030-01-01T00:00:00.000000Z", "baseline": {}, "type": "pdv.restore-record.v1"}
    with checkpoints.open("a") as f:
        f.write(json.dumps({"kind": "restore", "record": json.dumps(forged), "signature": "vault:v1:AAAA"}) + "\n")
    capsys.readouterr()
    assert pdv_main(["audit", "verify", "--local"]) == 1
    assert "a restore record in the checkpoint file has an invalid signature" in capsys.readouterr().err
    forged_too = start(migrate_first=False)
    try:
        assert health_of(forged_too, "") == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        forged_too.stop()


def test_a_disposal_receipt_without_expired_by_replays_what_had_expired_when_it_was_signed(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path
) -> None:
    """Receipts signed before they named `expired_by` (earlier releases): the replay takes the
    signing time, so the billing copy of the field (7y) stays and the expired one (3y) goes."""
    ledger = tmp_path / "tombstones.jsonl"
    four_years_ago = datetime.now(timezone.utc) - 4 * YEAR
    old = start_stack(openbao, database_url, vault_token, tombstone_ledger=ledger, clock=lambda: four_years_ago)
    try:
        (rec,) = old.client().tokenize([resident(5)], purpose=PURPOSE, source="311")
        (billing,) = old.client().tokenize([Record({"email": "grace5.billing@example.org"}, subject_id=rec.subject_id)],
                                           purpose="billing", source="billing")
        receipt = json.dumps({
            "type": "pdv.shred-receipt.v1", "subject_id": rec.subject_id, "fields": ["email"],
            "shredded_at": datetime.now(timezone.utc).isoformat(), "actor": "pdv-disposal",
            "reason": "retention period expired", "values_destroyed": 1, "data_keys_destroyed": 0, "kek_versions": [],
            "backups": "",
        }, sort_keys=True, separators=(",", ":"))
        (signature,) = old.app.shredder.signer.sign([receipt.encode()])
    finally:
        old.stop()
    ledger.write_text(json.dumps({"receipt": receipt, "signature": signature}) + "\n")  # the database never had it

    restored = start_stack(openbao, database_url, vault_token, migrate_first=False, tombstone_ledger=ledger)
    try:
        assert readable(restored, [rec.tokens["email"], rec.tokens["full_name"]]) == [False, True]
        assert readable(restored, [billing.tokens["email"]], purpose="billing") == [True]
    finally:
        restored.stop()
