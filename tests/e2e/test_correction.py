"""Correcting a value end to end (SubjectService.CorrectValue, `pdv subject correct`): tokens,
read-back, lookups, grants, holds, shreds, retries, history and canaries, through the
generated client and the CLI against a real OpenBao, on both databases."""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
from pdv_client.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from sqlalchemy import select

from tests.conftest import DATABASES
from tests.e2e.test_canaries import Book
from tests.e2e.test_subject_access import audit_query
from tests.support.databases import database
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy, start_stack
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t

POLICY_FILE = Path(__file__).with_name("correction_policy.yaml")
PURPOSE, OTHER = "benefits_eligibility", "service_delivery"
NAMED = ("loader-svc", "privacy-office", "email-desk", "billing-desk", "records-office")
STRANGER = PRINCIPAL  # named nowhere in the policy
OK, NOT_FOUND = 0, 5
_n = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def vault(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, PdvClient], dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("correction")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, NAMED) as (
            stack, keys):
        keys = {p: keys[p] for p in NAMED}
        yield stack, {**{p: stack.client(k) for p, k in keys.items()}, STRANGER: stack.client()}, keys


def person() -> dict[str, str]:
    n = next(_n)
    return {"full_name": "Ada Lovelace", "email": f"ada{n}.{secrets.token_hex(4)}@example.org",
            "phone": f"212-555-{1000 + n:04d}", "ssn": f"123-45-{1000 + n:04d}"}


def load(clients: dict[str, PdvClient], fields: dict[str, str], purpose: str = PURPOSE,
         subject_id: str | None = None) -> tuple[str, dict[str, str]]:
    (result,) = clients["loader-svc"].tokenize([Record(fields, subject_id=subject_id)], purpose=purpose, source="test")
    return result.subject_id, dict(result.tokens)


def read(clients: dict[str, PdvClient], token: str, field: str, purpose: str = PURPOSE) -> tuple[int, str | None]:
    (r,) = clients["loader-svc"].detokenize([(token, field)], purpose=purpose)
    return r.code, r.value


def lookup(clients: dict[str, PdvClient], field: str, value: str, purpose: str = PURPOSE) -> list[tuple[str, str]]:
    return [(m.subject_id, m.token) for m in clients["loader-svc"].lookup(field, value, purpose=purpose)]


def history(stack: Stack, subject_id: str) -> list[tuple]:
    c = t.value_corrections.c
    with stack.app.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(c.field, c.purpose, c.token, c.request_id).where(c.subject_id == subject_id).order_by(c.id))]


def encryptions(stack: Stack, subject_id: str) -> int:
    c = t.data_keys.c
    with stack.app.store.engine.connect() as conn:
        return sum(conn.scalars(select(c.encryptions).where(c.subject_id == subject_id)))


def test_random_and_format_preserving_tokens_stay_and_the_new_value_reads_back(vault) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    fields = person()
    subject, tokens = load(clients, fields)
    officer = clients["privacy-office"]
    before = encryptions(stack, subject)

    phone = officer.correct_value(subject, "phone", "(646) 555-0199", reason="resident moved")
    ssn = officer.correct_value(subject, "ssn", "523-45-6780", reason="typo at intake")

    assert [(v.purpose, v.token, v.token_changed) for v in phone] == [(PURPOSE, tokens["phone"], False)]
    assert [(v.purpose, v.token, v.token_changed) for v in ssn] == [(PURPOSE, tokens["ssn"], False)]
    assert read(clients, tokens["phone"], "phone") == (OK, "6465550199")
    assert read(clients, tokens["ssn"], "ssn") == (OK, "523456780")
    # The blind index follows the value: the new value finds the subject under its old token, the old one nothing.
    assert lookup(clients, "phone", "646-555-0199") == [(subject, tokens["phone"])]
    assert lookup(clients, "ssn", "523456780") == [(subject, tokens["ssn"])]
    assert lookup(clients, "phone", fields["phone"]) == [] and lookup(clients, "ssn", fields["ssn"]) == []
    assert encryptions(stack, subject) == before + 2  # each re-encryption counts against the DEK


def test_a_deterministic_field_gets_the_new_values_token_and_the_old_token_stops_reaching_it(vault) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    fields = person()
    subject, tokens = load(clients, fields)
    neighbour, theirs = load(clients, {"email": fields["email"]})  # shares the old email, so the old token
    assert theirs["email"] == tokens["email"]
    new_email = f"new.{secrets.token_hex(4)}@Example.org"

    (done,) = clients["email-desk"].correct_value(subject, "email", new_email, reason="resident request")

    assert done.token_changed and done.token != tokens["email"] and done.purpose == PURPOSE
    assert read(clients, done.token, "email") == (OK, new_email.lower())
    # The old token now reaches only the neighbour's value, whose row it still is.
    assert read(clients, tokens["email"], "email") == (OK, fields["email"])
    assert lookup(clients, "email", new_email) == [(subject, done.token)]
    assert lookup(clients, "email", fields["email"]) == [(neighbour, tokens["email"])]
    # With the neighbour shredded too, the old token answers as any unknown token does.
    clients["records-office"].shred_subjects([neighbour], reason="test")
    assert read(clients, tokens["email"], "email") == read(clients, "pdv_" + "A" * 22, "email")
    assert read(clients, tokens["email"], "email")[0] == NOT_FOUND
    # Tokenizing the new value for another subject joins on the new token, as for any value.
    assert load(clients, {"email": new_email})[1]["email"] == done.token


def test_every_value_of_the_field_is_corrected_and_deterministic_ones_merge(vault) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    fields = person()
    subject, first = load(clients, fields)
    _, second = load(clients, {"phone": "718-555-0100", "email": f"other.{secrets.token_hex(4)}@example.org"},
                     purpose=OTHER, subject_id=subject)
    officer = clients["privacy-office"]

    phones = officer.correct_value(subject, "phone", "917-555-0142", reason="both numbers were wrong")
    right = read(clients, second["email"], "email", OTHER)[1] or ""
    emails = officer.correct_value(subject, "email", right.upper(), reason="the second one was right")

    assert [(v.purpose, v.token) for v in phones] == [(PURPOSE, first["phone"]), (OTHER, second["phone"])]
    assert read(clients, first["phone"], "phone") == (OK, "9175550142")
    assert read(clients, second["phone"], "phone", OTHER) == (OK, "9175550142")
    # Two emails that are now one value share its token; the subject holds it once, in the oldest row.
    assert [(v.purpose, v.token, v.token_changed) for v in emails] == [(PURPOSE, second["email"], True),
                                                                        (OTHER, second["email"], False)]
    assert lookup(clients, "email", right) == [(subject, second["email"])]
    assert lookup(clients, "email", fields["email"]) == []
    assert read(clients, first["email"], "email")[0] == NOT_FOUND
    assert read(clients, second["email"], "email") == (OK, right)  # the oldest row's purpose, PURPOSE, kept
    listed = officer.list_corrections(subject)
    assert [(c.field, c.purpose) for c in listed] == [("phone", PURPOSE), ("phone", OTHER), ("email", PURPOSE),
                                                      ("email", OTHER)]
    assert all(c.corrected_by == "privacy-office" and len(c.old_value_fingerprint) == 64 for c in listed)
    assert listed[0].old_value_fingerprint != listed[1].old_value_fingerprint  # two different old values
    # A field-scoped corrector sees only the history of the fields it may correct.
    assert [c.field for c in clients["email-desk"].list_corrections(subject)] == ["email", "email"]


def test_without_the_grant_a_correction_is_refused_and_logged(vault, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    fields = person()
    subject, tokens = load(clients, fields)
    for who, field in ((STRANGER, "phone"), ("email-desk", "phone"), ("billing-desk", "email")):
        with pytest.raises(PermissionDenied, match=f"not permitted to correct field '{field}'"):
            clients[who].correct_value(subject, field, "212-555-0000" if field == "phone" else "a@example.org",
                                       reason="x")
        entries = audit_query(stack, monkeypatch, capsys, "--subject", subject, "--principal", who)
        assert [(e["action"], e["purpose"], e["field"], e["outcome"]) for e in entries] == [
            ("correct", "correction", field, "denied")]
    with pytest.raises(PermissionDenied):
        clients[STRANGER].list_corrections(subject)
    # The same answer whether or not the subject exists: decided before any read.
    with pytest.raises(PermissionDenied, match="not permitted to correct field 'phone'"):
        clients[STRANGER].correct_value("sub_" + "A" * 22, "phone", "212-555-0000", reason="x")
    assert read(clients, tokens["phone"], "phone") == (OK, fields["phone"].replace("-", ""))
    assert history(stack, subject) == []


def test_pdv_policy_check_warns_about_a_correct_grant_it_cannot_honour() -> None:
    done = subprocess.run([Path(sys.executable).with_name("pdv"), "policy", "check", str(POLICY_FILE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (warning,) = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert "role 'billing_corrector' grants correct on email for some of the field's purposes only" in warning


def test_a_legal_hold_does_not_block_a_correction_made_under_a_privacy_request(vault) -> None:  # type: ignore[no-untyped-def]
    _, clients, _ = vault
    subject, tokens = load(clients, person())
    officer = clients["privacy-office"]
    case = officer.requests.open("correction", subject_id=subject, description="my name changed")
    assert clients["records-office"].place_hold(subject, case_id="CV-7", reason="litigation")
    (done,) = officer.correct_value(subject, "full_name", "Ada King", reason="name change", case_id=case.case_id)
    assert done.token == tokens["full_name"]
    assert read(clients, tokens["full_name"], "full_name") == (OK, "Ada King")
    assert officer.list_corrections(subject)[0].case_id == case.case_id
    # Linked to the request in the correction's transaction, as shreds and consent changes are.
    assert [(a.action, a.subject_id, a.detail, a.outcome, a.principal) for a in officer.requests.show(case.case_id).actions] \
        == [("correction", subject, "full_name", "corrected", "privacy-office")]


def test_a_case_id_must_name_an_open_privacy_request(vault) -> None:  # type: ignore[no-untyped-def]
    _, clients, _ = vault
    subject, tokens = load(clients, person())
    officer = clients["privacy-office"]
    with pytest.raises(InvalidArgument, match="case_id: malformed"):
        officer.correct_value(subject, "full_name", "Ada King", reason="x", case_id="CV-7")
    case = officer.requests.open("correction", subject_id=subject, description="x")
    officer.requests.update(case.case_id, status="withdrawn")
    with pytest.raises(NotFound, match="case_id: no open privacy request"):
        officer.correct_value(subject, "full_name", "Ada King", reason="x", case_id=case.case_id)
    assert read(clients, tokens["full_name"], "full_name") == (OK, "Ada Lovelace")  # nothing changed


def test_shredded_and_unknown_values_answer_not_found_alike(vault, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    subject, _ = load(clients, person())
    officer = clients["privacy-office"]
    officer.correct_value(subject, "email", "before.shred@example.org", reason="x")
    assert history(stack, subject) != []
    assert clients["records-office"].shred_fields(subject, ["email"], reason="resident request").status == "shredded"
    assert [h[0] for h in history(stack, subject)] == []  # the history went with the value

    messages = set()
    for target, field in ((subject, "email"), (subject, "device_id"), ("sub_" + "A" * 22, "email")):
        with pytest.raises(NotFound) as info:
            officer.correct_value(target, field, "a@example.org" if field == "email" else "DEVICE0001", reason="x")
        messages.add(str(info.value).replace("'device_id'", "'email'"))
    officer.correct_value(subject, "phone", "212-555-7777", reason="x")
    assert clients["records-office"].shred_subjects([subject], reason="resident request")[0].status == "shredded"
    with pytest.raises(NotFound) as info:
        officer.correct_value(subject, "phone", "212-555-8888", reason="x")
    messages.add(str(info.value).replace("'phone'", "'email'"))
    assert len(messages) == 1
    assert history(stack, subject) == []
    entries = audit_query(stack, monkeypatch, capsys, "--subject", subject, "--action", "correct")
    assert [e["outcome"] for e in entries][-1] == "not_found"


def test_a_retry_with_the_same_request_id_answers_as_the_first_time(vault) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    subject, _ = load(clients, person())
    officer = clients["privacy-office"]
    first = officer.correct_value(subject, "email", "Retry@Example.org", reason="x", request_id="fix-1")
    count = encryptions(stack, subject)
    again = officer.correct_value(subject, "email", "retry@example.org", reason="x", request_id="fix-1")
    assert again == first  # the same normalized value: the same request
    assert encryptions(stack, subject) == count and len(history(stack, subject)) == 1
    with pytest.raises(AlreadyExists):
        officer.correct_value(subject, "email", "other@example.org", reason="x", request_id="fix-1")
    with pytest.raises(AlreadyExists):
        officer.correct_value(subject, "email", "retry@example.org", reason="another reason", request_id="fix-1")


def test_a_value_the_field_refuses_is_named_not_echoed(vault) -> None:  # type: ignore[no-untyped-def]
    stack, clients, _ = vault
    subject, tokens = load(clients, person())
    with pytest.raises(InvalidArgument, match="phone") as info:
        clients["privacy-office"].correct_value(subject, "phone", "CANARYxyz", reason="x")
    assert "CANARY" not in str(info.value)
    with pytest.raises(InvalidArgument, match="unknown field 'shoe_size'"):
        clients["privacy-office"].correct_value(subject, "shoe_size", "42", reason="x")
    with pytest.raises(InvalidArgument, match="reason is required"):
        clients["privacy-office"].correct_value(subject, "phone", "212-555-0101", reason="")
    assert read(clients, tokens["phone"], "phone")[1] != "2125550101"


def test_pdv_subject_correct_reads_the_value_from_stdin_or_a_file(vault, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack, clients, keys = vault
    subject, tokens = load(clients, person())
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": keys["privacy-office"]}
    pdv = [sys.executable, "-m", "vault.cli.main", "subject"]
    done = subprocess.run([*pdv, "correct", "--subject", subject, "--field", "phone", "--reason", "call centre"],
                          input="347-555-0123\n", env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["values"] == [{"purpose": PURPOSE, "token": tokens["phone"], "token_changed": False}]
    assert read(clients, tokens["phone"], "phone") == (OK, "3475550123")

    (tmp_path / "value").write_text("ada.cli@example.org\n")
    done = subprocess.run([*pdv, "correct", "--subject", subject, "--field", "email", "--reason", "letter",
                           "--value-file", str(tmp_path / "value")], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (value,) = json.loads(done.stdout)["values"]
    assert value["token_changed"] and read(clients, value["token"], "email") == (OK, "ada.cli@example.org")

    listed = subprocess.run([*pdv, "corrections", "--subject", subject], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["field"], r["reason"]) for r in rows] == [("phone", "call centre"), ("email", "letter")]
    # the new values, in every form they were sent or stored (not a fragment such as "347",
    # which a random request id or fingerprint in hex may hold)
    assert [v for v in ("347-555-0123", "3475550123", "ada.cli") if v in listed.stdout] == []

    refused = subprocess.run([*pdv, "correct", "--subject", subject, "--field", "phone", "--reason", "x"],
                             input="212-555-0000", env={**env, "PDV_API_KEY": keys["email-desk"]}, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "PermissionDenied" in refused.stderr


def test_the_old_value_is_nowhere_after_a_correction(vault) -> None:  # type: ignore[no-untyped-def]
    from tests.e2e.test_canaries import _access_log, _database_contents

    stack, clients, _ = vault
    book = Book()
    old = {"full_name": book.name(), "email": book.email(), "phone": book.phone(), "ssn": book.ssn()}
    subject, tokens = load(clients, {f: c.sent for f, c in old.items()})
    officer = clients["privacy-office"]
    new = {"full_name": "Ada King", "email": f"new.{secrets.token_hex(4)}@example.org", "phone": "212-555-0188",
           "ssn": "123-45-6780"}
    for field, value in new.items():
        officer.correct_value(subject, field, value, reason="canary test")
    book.look_in("corrections listed", repr(officer.list_corrections(subject)))
    book.look_in("server log", stack.log.getvalue())
    _access_log(stack, book)
    _database_contents(stack, book)
    hits = book.hits()
    assert hits == [], "\n".join(hits[:20])


@pytest.mark.parametrize("db", DATABASES)
def test_a_worn_data_key_is_rotated_by_the_correction(
    db: str, openbao: OpenBaoServer, vault_token: str, tmp_path: Path
) -> None:
    """A correction counts its encryptions like tokenize: past the DEK's limit it seals under a fresh version."""
    with database(db, tmp_path) as url:
        stack = start_stack(openbao, url, vault_token, dev_policy=True, admin_principals=[PRINCIPAL],
                            dek_max_encryptions=2)
        try:
            client = stack.client()
            (result,) = client.tokenize([Record({"phone": "212-555-0101", "email": "worn@example.org"})],
                                        purpose=PURPOSE, source="test")
            subject, tokens = result.subject_id, result.tokens
            client.correct_value(subject, "phone", "212-555-0102", reason="x")
            c = t.data_keys.c
            with stack.app.store.engine.connect() as conn:
                keys = [tuple(r) for r in conn.execute(
                    select(c.version, c.encryptions).where(c.subject_id == subject).order_by(c.version))]
            assert keys == [(1, 2), (2, 1)]
            got = client.detokenize([tokens["phone"], tokens["email"]], purpose=PURPOSE)
            assert [r.value for r in got] == ["2125550102", "worn@example.org"]
        finally:
            stack.stop()


@pytest.mark.parametrize("db", DATABASES)
def test_disposal_of_an_expired_corrected_value_takes_its_history(
    db: str, openbao: OpenBaoServer, vault_token: str, tmp_path: Path
) -> None:
    """A correction keeps the value's expiry; when retention disposes of the value, its history goes too."""
    from datetime import datetime, timedelta, timezone

    from vault.bootstrap import disposal_service

    with database(db, tmp_path) as url:
        stack = start_stack(openbao, url, vault_token, admin_principals=[PRINCIPAL],
                            tombstone_ledger=tmp_path / "tombstones.jsonl")
        try:
            client = stack.client()
            # benefits_eligibility keeps email 3 years, full_name 7.
            (rec,) = client.tokenize([Record({"email": "old.expiry@example.org", "full_name": "Grace Hopper"})],
                                     purpose=PURPOSE, source="test")
            client.correct_value(rec.subject_id, "email", "new.expiry@example.org", reason="x")
            client.correct_value(rec.subject_id, "full_name", "Grace B. Hopper", reason="x")
            four_years = datetime.now(timezone.utc) + timedelta(days=4 * 366)
            report = disposal_service(stack.app).dispose(now=four_years).to_json()
            assert report["values_disposed"] == {"email": 1}
            assert [h[0] for h in history(stack, rec.subject_id)] == ["full_name"]
            assert client.lookup("email", "new.expiry@example.org", purpose=PURPOSE) == []
        finally:
            stack.stop()
