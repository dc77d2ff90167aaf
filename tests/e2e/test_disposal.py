"""Retention disposal (shred, de-identify, holds, dry run, resume) and DEK rotation on demand,
on real OpenBao and both databases. Time is moved by passing `now` (or, for the real `pdv dispose`,
which refuses a future `now`, by collecting with a server clock set in the past), never by sleeping."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest
from pdv_client import Record
from sqlalchemy import text

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.bootstrap import dek_rotation_service, disposal_service
from vault.keys.openbao import OpenBaoServer
from vault.services.common import Caller
from vault.services.disposal import DisposalJob
from vault.storage.disposal import DISPOSAL_LOCK_KEY
from vault.storage.engine import create_store_engine

PURPOSE = "benefits_eligibility"  # full_name and date_of_birth 7y; email and phone 3y
YEAR = timedelta(days=366)


@pytest.fixture
def admin_stack(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL],
                    tombstone_ledger=tmp_path / "tombstones.jsonl", disposal_batch_size=2)
    try:
        yield s
    finally:
        s.stop()


def resident(n: int) -> Record:
    return Record({"full_name": f"Grace Hopper {chr(65 + n % 26)}", "email": f"grace{n}@example.org",
                   "phone": f"212-555-{1000 + n}", "date_of_birth": "1984-03-07"})


def count(stack: Stack, sql: str, **params: object) -> int:
    with stack.app.store.engine.connect() as conn:
        return conn.execute(text(sql), params).scalar_one()


def tables(stack: Stack) -> dict[str, int]:
    names = ("subjects", "data_keys", "field_values", "tombstones", "deidentified_values", "legal_holds")
    return {t: count(stack, f"SELECT count(*) FROM {t}") for t in names}


def later(years: int) -> datetime:
    return datetime.now(timezone.utc) + years * YEAR


def test_expired_fields_go_unexpired_stay_then_the_subject_goes_whole(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([resident(1)], purpose=PURPOSE, source="311")
    disposer = disposal_service(admin_stack.app)

    assert disposer.dispose(now=later(1)).to_json()["total_disposed"] == 0
    report = disposer.dispose(now=later(4)).to_json()
    assert report["values_disposed"] == {"email": 1, "phone": 1}
    assert (report["subjects_with_fields_shredded"], report["subjects_shredded"], report["receipts"]) == (1, 0, 1)
    assert client.detokenize([rec.tokens["email"]], purpose=PURPOSE)[0].code == 5
    assert client.lookup("email", "grace1@example.org", purpose=PURPOSE) == []
    assert client.detokenize_one(rec.tokens["full_name"], purpose=PURPOSE) == "Grace Hopper B"
    with admin_stack.app.store.engine.connect() as conn:
        receipt, fields = conn.execute(text("SELECT receipt, fields FROM tombstones WHERE subject_id = :s"),
                                       {"s": rec.subject_id}).one()
    assert fields == "email,phone" and json.loads(receipt)["values_destroyed"] == 2
    assert json.loads(receipt)["reason"] == "retention period expired"

    report = disposer.dispose(now=later(8)).to_json()
    assert report["values_disposed"] == {"date_of_birth": 1, "full_name": 1}
    assert report["values_deidentified"] == {"date_of_birth": 1}
    assert (report["subjects_shredded"], report["receipts"]) == (1, 1)
    assert count(admin_stack, "SELECT count(*) FROM subjects WHERE id = :s", s=rec.subject_id) == 0
    assert count(admin_stack, "SELECT count(*) FROM data_keys WHERE subject_id = :s", s=rec.subject_id) == 0
    assert client.detokenize([rec.tokens["full_name"]], purpose=PURPOSE)[0].code == 5


def test_deidentify_keeps_only_what_the_catalog_names(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([resident(2)], purpose=PURPOSE, source="311")
    disposal_service(admin_stack.app).dispose(now=later(8))
    with admin_stack.app.store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM deidentified_values"))]
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {"id", "field", "kept", "value", "purpose", "disposed_at"}  # no subject, token, ciphertext
    assert (row["field"], row["kept"], row["value"], row["purpose"]) == ("date_of_birth", "year", "1984", PURPOSE)
    for gone in ("1984-03-07", rec.subject_id, rec.tokens["date_of_birth"], "Grace", "grace2", "5551002"):
        assert gone not in json.dumps(rows, default=str)
    assert tables(admin_stack)["field_values"] == 0


def test_a_legal_hold_blocks_disposal_and_the_report_names_the_case(admin_stack: Stack) -> None:
    client = admin_stack.client()
    held, free = client.tokenize([resident(3), resident(4)], purpose=PURPOSE, source="311")
    assert client.place_hold(held.subject_id, case_id="CV-2026-7", reason="litigation")
    disposer = disposal_service(admin_stack.app)

    report = disposer.dispose(now=later(8)).to_json()
    assert report["held"] == {held.subject_id: ["CV-2026-7"]} and report["values_held"] == 4
    assert report["subjects_shredded"] == 1
    assert client.detokenize_one(held.tokens["email"], purpose=PURPOSE) == "grace3@example.org"
    assert count(admin_stack, "SELECT count(*) FROM field_values WHERE subject_id = :s", s=held.subject_id) == 4

    assert client.release_hold(held.subject_id, case_id="CV-2026-7") == 1
    report = disposer.dispose(now=later(8)).to_json()
    assert report["held"] == {} and report["subjects_shredded"] == 1
    assert tables(admin_stack)["subjects"] == 0


def test_dry_run_changes_nothing(admin_stack: Stack) -> None:
    client = admin_stack.client()
    client.tokenize([resident(5), resident(6)], purpose=PURPOSE, source="311")
    before = tables(admin_stack)
    report = disposal_service(admin_stack.app).dispose(now=later(4), dry_run=True).to_json()
    assert report["dry_run"] and report["values_disposed"] == {"email": 2, "phone": 2} and report["receipts"] == 0
    assert tables(admin_stack) == before


def test_an_interrupted_run_is_completed_by_the_next(admin_stack: Stack) -> None:
    client = admin_stack.client()
    client.tokenize([resident(n) for n in range(10, 15)], purpose=PURPOSE, source="311")
    disposer = disposal_service(admin_stack.app)  # batch size 2: several pages
    seen: list[int] = []

    def crash(n: int) -> None:
        seen.append(n)
        raise KeyboardInterrupt  # as if killed after the first batch committed

    with pytest.raises(KeyboardInterrupt):
        disposer.dispose(now=later(8), on_progress=crash)
    assert 0 < tables(admin_stack)["subjects"] < 5
    totals: list[int] = []
    report = disposer.dispose(now=later(8), on_total=totals.append).to_json()
    assert totals == [4 * tables_left(report)] and report["subjects_shredded"] == tables_left(report)
    after = tables(admin_stack)
    assert (after["subjects"], after["data_keys"], after["field_values"]) == (0, 0, 0)
    assert after["tombstones"] == 5 and after["deidentified_values"] == 5  # each exactly once
    assert disposer.dispose(now=later(8)).to_json()["total_disposed"] == 0  # idempotent


def tables_left(report: dict) -> int:
    return report["subjects_shredded"]


def test_scheduled_job_runs_on_one_replica_at_a_time(admin_stack: Stack) -> None:
    job = DisposalJob(disposal_service(admin_stack.app), interval=3600)
    assert job.run_once() is not None
    if admin_stack.app.store.dialect != "postgresql":
        return  # SQLite: the single writer serializes replicas (see README)
    with admin_stack.app.store.engine.connect() as other:
        assert other.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": DISPOSAL_LOCK_KEY}).scalar()
        assert job.run_once() is None
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": DISPOSAL_LOCK_KEY})
    assert job.run_once() is not None


def test_dek_rotation_keeps_tokens_and_values_and_drops_the_old_key(admin_stack: Stack) -> None:
    client = admin_stack.client()
    rec, other = client.tokenize([resident(20), resident(21)], purpose=PURPOSE, source="311")
    rotator = dek_rotation_service(admin_stack.app)
    caller = Caller("records-admin", "rotate-1")

    done = rotator.rotate_subject(caller, rec.subject_id)
    assert (done.old_versions, done.new_version, done.values) == ((1,), 2, 4)
    done = rotator.rotate_subject(caller, rec.subject_id)
    assert (done.old_versions, done.new_version) == ((2,), 3)
    with admin_stack.app.store.engine.connect() as conn:
        versions = [v for (v,) in conn.execute(text("SELECT version FROM data_keys WHERE subject_id = :s"),
                                              {"s": rec.subject_id})]
        used = {v for (v,) in conn.execute(text("SELECT key_version FROM field_values WHERE subject_id = :s"),
                                          {"s": rec.subject_id})}
    assert versions == [3] and used == {3}

    admin_stack.app.keyring.clear()  # decrypt through Vault, not a cached key
    fresh = admin_stack.client()
    assert fresh.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == "grace20@example.org"
    assert fresh.detokenize_one(rec.tokens["full_name"], purpose=PURPOSE) == "Grace Hopper U"
    assert fresh.detokenize_one(rec.tokens["date_of_birth"], purpose=PURPOSE) == "1984-03-07"
    assert [m.subject_id for m in fresh.lookup("email", "grace20@example.org", purpose=PURPOSE)] == [rec.subject_id]
    assert fresh.detokenize_one(other.tokens["email"], purpose=PURPOSE) == "grace21@example.org"
    (again,) = client.tokenize([Record({"phone": "212-555-9999"}, subject_id=rec.subject_id)],
                               purpose=PURPOSE, source="311")
    assert fresh.detokenize_one(again.tokens["phone"], purpose=PURPOSE) == "2125559999"


def test_deidentify_can_keep_a_pseudonym_instead(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
) -> None:
    shipped = (Path(__file__).parents[2] / "vault" / "catalog.yaml").read_text()
    for name in ("email", "phone"):
        shipped = shipped.replace(f"\n  {name}:\n", f"\n  {name}:\n    on_expiry: deidentify\n    deidentify_keep: pseudonym\n", 1)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(shipped)
    s = start_stack(openbao, database_url, vault_token, catalog_path=catalog)
    try:
        (rec,) = s.client().tokenize([resident(7)], purpose=PURPOSE, source="311")
        report = disposal_service(s.app).dispose(now=later(4)).to_json()
        assert report["values_deidentified"] == {"email": 1, "phone": 1}
        with s.app.store.engine.connect() as conn:
            kept = dict(conn.execute(text("SELECT field, value FROM deidentified_values")).all())
        assert kept["email"] == rec.tokens["email"]  # deterministic: the token partners already hold
        assert len(kept["phone"]) == 32 and int(kept["phone"], 16) >= 0 and "5551007" not in kept["phone"]
        assert kept["phone"] != rec.tokens["phone"]
    finally:
        s.stop()


def test_serve_starts_and_stops_the_scheduled_job(admin_stack: Stack) -> None:
    from vault.cli.serve import start_disposal_job

    assert start_disposal_job(admin_stack.app, admin_stack.settings.model_copy(update={"disposal_interval_seconds": 0})) is None
    admin_stack.client().tokenize([resident(8)], purpose=PURPOSE, source="311")
    settings = admin_stack.settings.model_copy(update={"disposal_interval_seconds": 0.05})
    job = start_disposal_job(admin_stack.app, settings)
    assert job is not None
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=20)
        while job.runs == 0 and datetime.now(timezone.utc) < deadline:
            job._stop.wait(0.02)  # waiting for the thread, not for retention to pass
    finally:
        job.stop()
    assert job.runs >= 1 and not job._thread.is_alive()
    assert tables(admin_stack)["subjects"] == 1  # nothing has expired yet, so nothing went


def test_pdv_dispose_and_rotate_dek_commands(
    admin_stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from vault.cli.main import main

    # Over AdminService, as an admin runs them: the server's address and an API key, no settings.
    (rec,) = admin_stack.client().tokenize([resident(9)], purpose=PURPOSE, source="311")
    monkeypatch.setenv("PDV_API_KEY", admin_stack.api_key)
    target = ["--target", admin_stack.target]
    before = tables(admin_stack)
    future = later(4).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert main(["dispose", "--dry-run", "--now", future, *target]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dry_run"] and report["values_disposed"] == {"email": 1, "phone": 1}
    assert tables(admin_stack) == before
    assert main(["dispose", "--now", future, *target]) == 2  # a real run may not pretend it is later
    assert main(["dispose", *target]) == 0
    assert json.loads(capsys.readouterr().out)["total_disposed"] == 0

    assert main(["keys", "rotate-dek", "--subject", rec.subject_id, *target]) == 0
    assert "4 value(s) re-encrypted under DEK v2; deleted v1" in capsys.readouterr().out
    admin_stack.app.keyring.clear()
    assert admin_stack.client().detokenize_one(rec.tokens["phone"], purpose=PURPOSE) == "2125551009"


def test_dispose_killed_with_sigkill_is_finished_by_the_next_run(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
) -> None:
    """`pdv dispose` as an operator runs it, killed -9 part-way, then run again."""
    ledger = tmp_path / "tombstones.jsonl"
    # Three cohorts, collected by servers whose clocks say 8, 4 and 0 years ago: everything of
    # the first has expired (the subject goes, its birth year is kept), the second's email and
    # phone have (3y) but not its name and birth date (7y), nothing of the third has.
    cohorts: dict[str, dict[str, dict[str, str]]] = {}  # cohort → subject → field → token
    values: dict[str, str] = {}  # token → the value as stored (normalized)
    for name, years_ago, first, n in (("gone", 8, 0, 300), ("half", 4, 1000, 300), ("live", 0, 2000, 40)):
        collected = datetime.now(timezone.utc) - years_ago * YEAR
        s = start_stack(openbao, database_url, vault_token, clock=lambda c=collected: c)
        try:
            records = [resident(i) for i in range(first, first + n)]
            results = s.client().tokenize(records, purpose=PURPOSE, source="311")
        finally:
            s.stop()
        cohorts[name] = {r.subject_id: dict(r.tokens) for r in results}
        values |= {res.tokens[f]: v.replace("-", "") if f == "phone" else v
                   for rec, res in zip(records, results) for f, v in rec.fields.items()}
    gone, half, live = (set(cohorts[c]) for c in ("gone", "half", "live"))

    env = {k: v for k, v in os.environ.items() if not k.startswith("PDV_")}
    env.update(PDV_DATABASE_URL=database_url, PDV_VAULT_ADDR=openbao.addr, PDV_VAULT_TOKEN=vault_token,
               PDV_TOMBSTONE_LEDGER=str(ledger), PDV_DISPOSAL_BATCH_SIZE="10", PDV_DEV_POLICY="true")
    command = [sys.executable, "-m", "vault.cli.main", "dispose", "--local"]

    def ledger_lines() -> list[dict]:
        # Complete lines only: read while `pdv dispose` appends, the file can end in part of a line.
        text = ledger.read_text() if ledger.exists() else ""
        return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]

    # Kill it at a random point after its first receipts have landed in the ledger (each batch
    # commits, then appends): a point of its progress, not of the clock. The run has ten times
    # that much left to do, so it cannot finish in the few milliseconds before the kill.
    rng = random.Random()
    wanted = rng.randint(1, 60)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(ledger_lines()) < wanted and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.03))  # anywhere in a batch: survey, signing, commit, append
    assert proc.poll() is None, "pdv dispose ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    killed_output, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL and killed_output == b""  # no report: it never finished

    def tombstones() -> dict[str, list[tuple[str | None, str]]]:
        engine = create_store_engine(database_url, pool_size=1)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT subject_id, fields, receipt FROM tombstones")).all()
        finally:
            engine.dispose()
        out: dict[str, list[tuple[str | None, str]]] = {}
        for subject_id, fields, receipt in rows:
            out.setdefault(subject_id, []).append((fields, receipt))
        return out

    first_run = tombstones()
    assert 0 < len(first_run) < len(gone | half)  # killed part-way
    gone_left, half_left = len(gone - set(first_run)), len(half - set(first_run))

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert (report["subjects_shredded"], report["subjects_with_fields_shredded"]) == (gone_left, half_left)
    assert report["receipts"] == gone_left + half_left and report["held"] == {}
    assert report["values_disposed"] == {k: v for k, v in {
        "date_of_birth": gone_left, "email": gone_left + half_left,
        "full_name": gone_left, "phone": gone_left + half_left}.items() if v}
    assert report["values_deidentified"] == ({"date_of_birth": gone_left} if gone_left else {})

    # Exactly one tombstone per disposed subject, whole or field-level as its values were;
    # none for the subjects with nothing expired.
    final = tombstones()
    assert set(final) == gone | half
    assert all(len(entries) == 1 for entries in final.values())
    assert {s: final[s][0][0] for s in gone} == dict.fromkeys(gone)
    assert {s: final[s][0][0] for s in half} == dict.fromkeys(half, "email,phone")
    # The ledger holds whole receipts only of committed shreds, each once. A kill between a
    # batch's commit and its append can leave that batch out; the finished run's are all in.
    in_ledger = [json.loads(e["receipt"])["subject_id"] for e in ledger_lines()]
    assert len(in_ledger) == len(set(in_ledger))
    assert {e["receipt"] for e in ledger_lines()} <= {r for entries in final.values() for _, r in entries}
    assert set(final) - set(first_run) <= set(in_ledger)

    check = start_stack(openbao, database_url, vault_token, migrate_first=False)
    try:
        assert count(check, "SELECT count(*) FROM deidentified_values WHERE field = 'date_of_birth' "
                            "AND value = '1984'") == len(gone) == count(check, "SELECT count(*) FROM deidentified_values")
        assert count(check, "SELECT count(*) FROM subjects") == len(half) + len(live)
        client = check.client()
        tokens = [t for c in cohorts.values() for fields in c.values() for t in fields.values()]
        answers = {a.token: (a.code, a.value) for a in client.detokenize(tokens, purpose=PURPOSE)}
        expected_gone = {t for s in gone for t in cohorts["gone"][s].values()} | {
            cohorts["half"][s][f] for s in half for f in ("email", "phone")}
        assert {t for t, (code, _) in answers.items() if code == 5} == expected_gone  # NOT_FOUND
        assert {t: v for t, (code, v) in answers.items() if code == 0} == {t: values[t] for t in set(tokens) - expected_gone}
    finally:
        check.stop()


def test_tokenize_answers_kept_for_retries_are_pruned_after_their_retention(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (first,) = client.tokenize([resident(60)], purpose=PURPOSE, source="311", request_id="intake-60")
    disposer = disposal_service(admin_stack.app)
    now = datetime.now(timezone.utc)

    assert disposer.dispose(now=now + timedelta(days=6)).answers_pruned == 0
    assert client.tokenize([resident(60)], purpose=PURPOSE, source="311", request_id="intake-60") == [first]
    stored = count(admin_stack, "SELECT count(*) FROM tokenize_requests")
    assert disposer.dispose(now=now + timedelta(days=8), dry_run=True).answers_pruned == stored
    assert disposer.dispose(now=now + timedelta(days=8)).answers_pruned == stored >= 1
    assert count(admin_stack, "SELECT count(*) FROM tokenize_requests") == 0
    assert count(admin_stack, "SELECT count(*) FROM request_records") == 0
    # Past the window a retry is a new request: new subject, new tokens; the first is untouched.
    (again,) = client.tokenize([resident(60)], purpose=PURPOSE, source="311", request_id="intake-60")
    assert again.subject_id != first.subject_id
    assert client.detokenize_one(first.tokens["full_name"], purpose=PURPOSE) == "Grace Hopper I"
