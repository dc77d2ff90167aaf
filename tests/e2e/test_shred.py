"""Crypto-shredding, receipts, legal holds and the tombstone ledger, on both databases."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
from pdv_client import Record
from pdv_client.errors import PermissionDenied, Unavailable
from sqlalchemy import select, text

from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t

PURPOSE = "benefits_eligibility"
NEVER_ISSUED = "pdv_" + "Q" * 21 + "A"


@pytest.fixture
def admin_stack(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> Iterator[Stack]:
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL],
                    tombstone_ledger=tmp_path / "tombstones.jsonl")
    try:
        yield s
    finally:
        s.stop()


def person(n: int) -> Record:
    return Record({"full_name": "Ada Lovelace", "email": f"ada{n}@example.org", "ssn": f"123-45-{6000 + n}"})


def rows_mentioning(stack: Stack, subject_id: str) -> dict[str, int]:
    with stack.app.store.engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table} WHERE {column} = :s"), {"s": subject_id}).scalar_one()
            for table, column in (("subjects", "id"), ("data_keys", "subject_id"), ("field_values", "subject_id"),
                                  ("tombstones", "subject_id"), ("legal_holds", "subject_id"))
        }


def test_shredded_tokens_answer_like_never_issued_ones(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (kept, gone) = client.tokenize([person(1), person(2)], purpose=PURPOSE, source="311")
    (outcome,) = client.shred_subjects([gone.subject_id], reason="retention expired")
    assert outcome.status == "shredded"

    never = client.detokenize([NEVER_ISSUED], purpose=PURPOSE)[0]
    for token in gone.tokens.values():
        field = "ssn" if token == gone.tokens["ssn"] else ""
        result = client.detokenize([(token, field)] if field else [token], purpose=PURPOSE)[0]
        assert (result.code, result.message, result.value, result.field) == (never.code, never.message, "", "")
    assert client.lookup("email", "ada2@example.org", purpose=PURPOSE) == []
    assert client.detokenize_one(kept.tokens["email"], purpose=PURPOSE) == "ada1@example.org"
    assert rows_mentioning(admin_stack, gone.subject_id) == {
        "subjects": 0, "data_keys": 0, "field_values": 0, "tombstones": 1, "legal_holds": 0,
    }


# Where a shredded subject's id or tokens may still be found, by design: its tombstone and
# receipt, the access log (who did what to which subject, never a value: its columns, the
# items of its entries of several items, and the per-subject index of its entries), and the
# table of format-preserving tokens, which stay reserved so a shredded token is never issued again.
MAY_REMAIN = {("tombstones", "subject_id"), ("tombstones", "receipt"), ("access_log", "subject_id"),
              ("access_log", "token"), ("access_log", "items"), ("access_subjects", "subject_id"),
              ("reserved_tokens", "token"),
              # The shred's event to the subject's token holder (intake-311) names its tokens until the
              # holder acknowledges it (tests/e2e/test_events.py shows none left after the ack).
              ("event_outbox", "subject_id"), ("event_outbox", "tokens")}


def places_naming(stack: Stack, needles: list[str]) -> set[tuple[str, str]]:
    """Every (table, column) of every table in the schema holding any of `needles`."""
    found = set()
    with stack.app.store.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    text_value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if any(n in text_value for n in needles):
                        found.add((table.name, column))
    return found


def test_shred_leaves_no_row_of_the_subject_in_any_table(admin_stack: Stack) -> None:
    client = admin_stack.client()
    fields = {"full_name": "Grace Hopper", "email": "grace@example.org", "ssn": "123-45-7001", "phone": "2125550100"}
    (rec,) = client.tokenize([Record(fields)], purpose=PURPOSE, source="311", request_id="intake-7")
    (more,) = client.tokenize([Record({"street_address": "1 Navy Way"}, subject_id=rec.subject_id)],
                              purpose=PURPOSE, source="311", request_id="intake-8")
    (other,) = client.tokenize([person(70)], purpose=PURPOSE, source="311", request_id="intake-9")
    client.set_consent(rec.subject_id, "billing", opted_out=True)
    client.place_hold(rec.subject_id, case_id="CV-1", reason="audit")
    client.release_hold(rec.subject_id, case_id="CV-1")
    client.detokenize([(token, field) for field, token in rec.tokens.items()], purpose=PURPOSE)
    client.lookup("email", "grace@example.org", purpose=PURPOSE)
    needles = [rec.subject_id, *rec.tokens.values(), *more.tokens.values()]
    assert {"subjects", "data_keys", "field_values", "consent_optouts", "request_records",
            "legal_holds"} <= {table for table, _ in places_naming(admin_stack, needles)}

    (outcome,) = client.shred_subjects([rec.subject_id], reason="resident request")
    assert outcome.status == "shredded"
    assert places_naming(admin_stack, needles) - MAY_REMAIN == set()
    # A retry of a request that created the subject is told the record is no longer held.
    (retried,) = client.tokenize([Record(fields)], purpose=PURPOSE, source="311", request_id="intake-7")
    assert (retried.subject_id, retried.tokens) == ("", {})
    assert [(e.code, e.message) for e in retried.errors] == [(5, "record not found")]
    # The stored fingerprint (a keyed hash of the values sent) is dropped with them.
    with admin_stack.app.store.engine.connect() as conn:
        fingerprints = dict(conn.execute(text("SELECT request_id, fingerprint FROM tokenize_requests")).all())
    assert bytes(fingerprints["intake-7/0"]) == b"" and bytes(fingerprints["intake-9/0"]) != b""
    # Others' answers are untouched.
    assert client.tokenize([person(70)], purpose=PURPOSE, source="311", request_id="intake-9") == [other]


def test_field_shred_takes_the_fields_tokens_out_of_stored_answers(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(71)], purpose=PURPOSE, source="311", request_id="intake-71")
    client.shred_fields(rec.subject_id, ["email"], reason="correction")
    (retried,) = client.tokenize([person(71)], purpose=PURPOSE, source="311", request_id="intake-71")
    assert retried.subject_id == rec.subject_id and retried.errors == ()
    assert retried.tokens == {f: tok for f, tok in rec.tokens.items() if f != "email"}
    assert places_naming(admin_stack, [rec.tokens["email"]]) <= MAY_REMAIN


def test_receipt_is_signed_value_free_and_tamper_evident(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(3)], purpose=PURPOSE, source="311")
    (outcome,) = client.shred_subjects([rec.subject_id], reason="resident request R-17")
    receipt = json.loads(outcome.receipt)
    assert receipt["subject_id"] == rec.subject_id and receipt["values_destroyed"] == 3
    assert receipt["data_keys_destroyed"] == 1 and receipt["kek_versions"] == [1]
    assert receipt["actor"] == PRINCIPAL and receipt["reason"] == "resident request R-17"
    assert "trimmed" in receipt["backups"]
    for secret in ("Lovelace", "ada3", "6003"):
        assert secret not in outcome.receipt
    assert outcome.signature.startswith("vault:v1:")
    assert client.verify_receipt(outcome.receipt, outcome.signature)
    forged = outcome.receipt.replace('"values_destroyed":3', '"values_destroyed":2')
    assert forged != outcome.receipt and not client.verify_receipt(forged, outcome.signature)
    assert not client.verify_receipt(outcome.receipt, "vault:v1:bm90LWEtc2lnbmF0dXJl")


def test_shred_is_idempotent_and_reports_unknown_subjects(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(4)], purpose=PURPOSE, source="311")
    (first,) = client.shred_subjects([rec.subject_id], reason="expired")
    again, unknown = client.shred_subjects([rec.subject_id, "sub_" + "B" * 21 + "A"], reason="expired")
    assert again.status == "already_shredded" and again.receipt == first.receipt
    assert unknown.status == "not_found" and unknown.receipt == ""


def test_concurrent_shreds_each_read_as_if_alone(admin_stack: Stack) -> None:
    """Many callers at once (their shreds share a transaction and a signing call): each gets
    its own subjects' outcomes and receipts naming its own reason; a subject two callers
    shred together is shredded once, and the other caller is told it already was."""
    client = admin_stack.client()
    records = client.tokenize([person(100 + n) for n in range(24)], purpose=PURPOSE, source="311")
    ids = [r.subject_id for r in records]
    orders = [([s], f"request {n}") for n, s in enumerate(ids[:20])]
    orders += [([ids[20], ids[21]], "pair one"), ([ids[21], ids[22]], "pair two"), ([ids[22]], "single")]
    with ThreadPoolExecutor(max_workers=len(orders)) as pool:
        answers = list(pool.map(lambda o: admin_stack.client().shred_subjects(o[0], reason=o[1]), orders))

    for (subject_ids, reason), outcomes in zip(orders, answers):
        assert [o.subject_id for o in outcomes] == subject_ids
        for o in outcomes:
            assert o.status in ("shredded", "already_shredded")
            assert client.verify_receipt(o.receipt, o.signature)
            if o.status == "shredded":
                assert json.loads(o.receipt)["reason"] == reason
    by_subject: dict[str, list[str]] = {}
    for outcomes in answers:
        for o in outcomes:
            by_subject.setdefault(o.subject_id, []).append(o.status)
    assert all(statuses.count("shredded") == 1 for statuses in by_subject.values())
    assert sorted(by_subject) == sorted(ids[:23])
    for s in ids[:23]:
        assert rows_mentioning(admin_stack, s) == {
            "subjects": 0, "data_keys": 0, "field_values": 0, "tombstones": 1, "legal_holds": 0,
        }
    assert client.detokenize_one(records[23].tokens["email"], purpose=PURPOSE) == "ada123@example.org"


def test_legal_hold_blocks_subject_and_field_shreds_until_released(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(5)], purpose=PURPOSE, source="311")
    assert client.place_hold(rec.subject_id, case_id="CV-2026-114", reason="litigation")
    assert not client.place_hold(rec.subject_id, case_id="CV-2026-114", reason="litigation")
    (held,) = client.shred_subjects([rec.subject_id], reason="expired")
    assert (held.status, held.hold_case_ids, held.receipt) == ("on_hold", ("CV-2026-114",), "")
    field_held = client.shred_fields(rec.subject_id, ["email"], reason="expired")
    assert field_held.status == "on_hold"
    assert client.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == "ada5@example.org"

    assert client.release_hold(rec.subject_id, case_id="CV-2026-114") == 1
    assert client.release_hold(rec.subject_id, case_id="CV-2026-114") == 0
    (done,) = client.shred_subjects([rec.subject_id], reason="expired")
    assert done.status == "shredded"


def test_field_shred_keeps_the_other_fields(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(6)], purpose=PURPOSE, source="311")
    outcome = client.shred_fields(rec.subject_id, ["email", "ssn"], reason="correction")
    assert outcome.status == "shredded" and json.loads(outcome.receipt)["fields"] == ["email", "ssn"]
    assert client.detokenize([rec.tokens["email"]], purpose=PURPOSE)[0].code == 5
    assert client.lookup("email", "ada6@example.org", purpose=PURPOSE) == []
    assert client.detokenize_one(rec.tokens["full_name"], purpose=PURPOSE) == "Ada Lovelace"


def test_only_admin_principals_may_shred(stack: Stack) -> None:
    client = stack.client()
    (rec,) = client.tokenize([person(7)], purpose=PURPOSE, source="311")
    with pytest.raises(PermissionDenied, match="admin_principals"):
        client.shred_subjects([rec.subject_id], reason="x")
    with pytest.raises(PermissionDenied):
        client.place_hold(rec.subject_id, case_id="c", reason="x")
    assert client.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == "ada7@example.org"


def test_shred_on_one_replica_is_seen_at_once_by_another_with_a_warm_cache(
    openbao: OpenBaoServer, vault_token: str, database_url: str, admin_stack: Stack,
) -> None:
    replica = start_stack(openbao, database_url, vault_token, migrate_first=False)
    try:
        (rec,) = admin_stack.client().tokenize([person(8)], purpose=PURPOSE, source="311")
        b = replica.client()
        assert b.detokenize_one(rec.tokens["email"], purpose=PURPOSE) == "ada8@example.org"  # B's cache is warm
        admin_stack.client().shred_subjects([rec.subject_id], reason="expired")
        assert b.detokenize([rec.tokens["email"]], purpose=PURPOSE)[0].code == 5
    finally:
        replica.stop()


def test_no_plaintext_after_the_shred_commits(admin_stack: Stack) -> None:
    client = admin_stack.client()
    (rec,) = client.tokenize([person(9)], purpose=PURPOSE, source="311")
    shred_done = threading.Event()
    leaks: list[str] = []

    def reader() -> None:
        c = admin_stack.client()
        for _ in range(400):
            after = shred_done.is_set()
            result = c.detokenize([rec.tokens["email"]], purpose=PURPOSE)[0]
            if after and result.code == 0:
                leaks.append(result.field)
            if after and result.code != 0:
                return

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    client.shred_subjects([rec.subject_id], reason="expired")
    shred_done.set()
    for t in threads:
        t.join(60)
    assert leaks == []


def test_vault_that_cannot_sign_destroys_nothing(tmp_path: Path, database_url: str) -> None:
    from tests.support.stack import service_token

    bao = OpenBaoServer(tmp_path / "bao").start()
    try:
        stack = start_stack(bao, database_url, service_token(bao), admin_principals=[PRINCIPAL])
        try:
            client = stack.client()
            (rec,) = client.tokenize([person(10)], purpose=PURPOSE, source="311")
            bao.seal()
            with pytest.raises(Unavailable, match="vault"):
                client.shred_subjects([rec.subject_id], reason="expired")
            assert rows_mentioning(stack, rec.subject_id)["field_values"] == 3
            assert rows_mentioning(stack, rec.subject_id)["tombstones"] == 0
        finally:
            stack.stop()
    finally:
        bao.stop()


def test_restored_old_database_never_serves_a_shredded_subject(
    openbao: OpenBaoServer, vault_token: str, tmp_path: Path
) -> None:
    """Copy the database, shred, put the copy back, start: the ledger shreds the subject again."""
    db = tmp_path / "pdv.db"
    url, ledger = f"sqlite:///{db}", tmp_path / "tombstones.jsonl"
    stack = start_stack(openbao, url, vault_token, admin_principals=[PRINCIPAL], tombstone_ledger=ledger)
    (rec,) = stack.client().tokenize([person(11)], purpose=PURPOSE, source="311")
    stack.stop()
    backup = tmp_path / "backup.db"
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)

    stack = start_stack(openbao, url, vault_token, admin_principals=[PRINCIPAL], tombstone_ledger=ledger)
    stack.client().shred_subjects([rec.subject_id], reason="expired")
    stack.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, db)  # the restore

    restored = start_stack(openbao, url, vault_token, admin_principals=[PRINCIPAL], tombstone_ledger=ledger)
    try:
        assert restored.client().detokenize([rec.tokens["email"]], purpose=PURPOSE)[0].code == 5
        assert rows_mentioning(restored, rec.subject_id)["data_keys"] == 0
        assert rows_mentioning(restored, rec.subject_id)["tombstones"] == 1
    finally:
        restored.stop()


def test_receipts_a_crash_kept_out_of_the_ledger_are_added_at_start(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path
) -> None:
    """The ledger is appended after the shred commits; a process killed in between has
    committed shreds the ledger lacks. The next start appends them, so a later restore of
    an older copy is still caught."""
    ledger = tmp_path / "tombstones.jsonl"
    stack = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], tombstone_ledger=ledger)
    try:
        first, lost = stack.client().tokenize([person(12), person(13)], purpose=PURPOSE, source="311")
        stack.client().shred_subjects([first.subject_id], reason="expired")
        kept_lines = ledger.read_text()
        (outcome,) = stack.client().shred_subjects([lost.subject_id], reason="expired")
        ledger.write_text(kept_lines)  # as if killed between the commit and the append
    finally:
        stack.stop()

    for _ in range(2):  # the second start finds nothing missing
        restarted = start_stack(openbao, database_url, vault_token, migrate_first=False, admin_principals=[PRINCIPAL],
                                tombstone_ledger=ledger)
        restarted.stop()
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [json.loads(e["receipt"])["subject_id"] for e in lines] == [first.subject_id, lost.subject_id]
    assert lines[1] == {"receipt": outcome.receipt, "signature": outcome.signature}


def test_cli_shred_hold_and_verify_receipt(admin_stack: Stack, tmp_path: Path) -> None:
    client = admin_stack.client()
    a, b = client.tokenize([person(12), person(13)], purpose=PURPOSE, source="311")
    env = {**os.environ, "PDV_TARGET": admin_stack.target, "PDV_API_KEY": admin_stack.api_key}

    def pdv(*args: str, exit_code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "vault.cli.main", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == exit_code, done.stderr
        return done

    assert json.loads(pdv("hold", "place", "--subject", b.subject_id, "--case", "K-1", "--reason", "audit").stdout) == {"placed": True}
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{a.subject_id}\n{b.subject_id}\n")
    # A subject on hold is not shredded: the command exits 3 (answered, an item failed).
    lines = [json.loads(x) for x in pdv("shred", "--file", str(ids), "--reason", "retention", exit_code=3).stdout.splitlines()]
    assert [(x["subject_id"], x["status"]) for x in lines] == [(a.subject_id, "shredded"), (b.subject_id, "on_hold")]
    receipts = tmp_path / "receipts.jsonl"
    receipts.write_text(json.dumps(lines[0]) + "\n")
    assert [json.loads(x)["valid"] for x in pdv("shred", "verify-receipt", str(receipts)).stdout.splitlines()] == [True]
    # A receipt whose signature does not verify: exit 1.
    receipts.write_text(json.dumps(lines[0]) + "\n" + json.dumps({**lines[0], "receipt": lines[0]["receipt"].replace("retention", "Retention")}) + "\n")
    checked = [json.loads(x) for x in pdv("shred", "verify-receipt", str(receipts), exit_code=1).stdout.splitlines()]
    assert [c["valid"] for c in checked] == [True, False]
    receipts.write_text(json.dumps({"subject_id": a.subject_id, "receipt": lines[0]["receipt"]}) + "\n")  # no signature
    assert json.loads(pdv("shred", "verify-receipt", str(receipts), exit_code=1).stdout) == {"subject_id": a.subject_id, "valid": False}
    receipts.write_text("not json\n")
    assert "line 1: not a JSON object" in pdv("shred", "verify-receipt", str(receipts), exit_code=2).stderr
    pdv("shred", "--subject", a.subject_id, "--reason", "again")  # already shredded is no failure
