"""SubjectService authorization end to end: each call is allowed only as far as the scope of
the caller's grants reaches (tests/e2e/subject_policy.yaml), `admin_principals` overrides,
and every refusal leaves one access-log entry, seen through `pdv audit query`; through the
generated client against a real OpenBao, on both databases."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pdv_client import PdvClient, Record
from pdv_client.errors import PermissionDenied

from tests.conftest import DATABASES
from tests.support.access_log import logged_items
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer

POLICY_FILE = Path(__file__).with_name("subject_policy.yaml")
PURPOSE = "benefits_eligibility"
NAMED = ("loader-svc", "field-shredder", "purpose-shredder", "records-office", "benefits-desk", "override-admin")
STRANGER = PRINCIPAL  # the stack's own principal: named nowhere in the policy, so granted nothing
OK, NOT_FOUND = 0, 5
_n = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def scoped(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, PdvClient]]]:
    with stack_with_policy(openbao, vault_token, request.param, tmp_path_factory.mktemp("subject-access"), POLICY_FILE, NAMED,
                      admin_principals=["override-admin"]) as (stack, keys):
        yield stack, {**{p: stack.client(keys[p]) for p in NAMED}, STRANGER: stack.client()}


def load(clients: dict[str, PdvClient]) -> tuple[str, dict[str, str]]:
    n = next(_n)
    record = Record({"full_name": "Ada Lovelace", "email": f"scope{n}@example.org", "phone": f"212-555-{1000 + n:04d}",
                     "ssn": f"123-45-{1000 + n:04d}"})
    (result,) = clients["loader-svc"].tokenize([record], purpose=PURPOSE, source="test")
    return result.subject_id, result.tokens


def readable(clients: dict[str, PdvClient], tokens: dict[str, str]) -> dict[str, bool]:
    results = clients["loader-svc"].detokenize([(t, f) for f, t in tokens.items()], purpose=PURPOSE)
    return {field: r.code == OK for field, r in zip(tokens, results)}


def test_a_field_scoped_shred_grant_shreds_those_fields_and_nothing_else(scoped: tuple[Stack, dict]) -> None:
    _, clients = scoped
    subject, tokens = load(clients)
    shredder = clients["field-shredder"]
    done = shredder.shred_fields(subject, ["email"], reason="resident request")
    assert done.status == "shredded"
    assert shredder.verify_receipt(done.receipt, done.signature) is True  # a receipt of fields it may shred
    with pytest.raises(PermissionDenied, match="not permitted to shred field 'ssn'"):
        shredder.shred_fields(subject, ["phone", "ssn"], reason="x")
    with pytest.raises(PermissionDenied, match="not permitted to shred whole subjects"):
        shredder.shred_subjects([subject], reason="x")
    with pytest.raises(PermissionDenied, match="legal holds"):
        shredder.place_hold(subject, case_id="CV-1", reason="x")
    with pytest.raises(PermissionDenied, match="legal holds"):
        shredder.release_hold(subject, case_id="CV-1")
    assert readable(clients, tokens) == {"full_name": True, "email": False, "phone": True, "ssn": True}


def test_a_purpose_scoped_shred_grant_shreds_nothing(scoped: tuple[Stack, dict]) -> None:
    _, clients = scoped
    subject, tokens = load(clients)
    shredder = clients["purpose-shredder"]
    with pytest.raises(PermissionDenied, match="not permitted to shred field 'email'"):
        shredder.shred_fields(subject, ["email"], reason="x")
    with pytest.raises(PermissionDenied, match="not permitted to shred whole subjects"):
        shredder.shred_subjects([subject], reason="x")
    assert all(readable(clients, tokens).values())


def test_whole_subjects_need_shred_on_every_field_and_their_receipts_too(scoped: tuple[Stack, dict]) -> None:
    _, clients = scoped
    subject, tokens = load(clients)
    officer = clients["records-office"]
    assert officer.place_hold(subject, case_id="CV-2", reason="litigation") is True
    (held,) = officer.shred_subjects([subject], reason="expired")
    assert held.status == "on_hold"
    assert officer.release_hold(subject, case_id="CV-2") == 1
    (done,) = officer.shred_subjects([subject], reason="expired")
    assert done.status == "shredded"
    assert officer.verify_receipt(done.receipt, done.signature) is True
    with pytest.raises(PermissionDenied, match="not permitted to verify this receipt"):
        clients["field-shredder"].verify_receipt(done.receipt, done.signature)  # a whole subject's receipt
    with pytest.raises(PermissionDenied, match="not permitted to verify this receipt"):
        clients["field-shredder"].verify_receipt("not a receipt", done.signature)  # judged as a whole subject's
    assert officer.verify_receipt("not a receipt", done.signature) is False
    assert not any(readable(clients, tokens).values())


def test_admin_principals_is_an_unscoped_override(scoped: tuple[Stack, dict]) -> None:
    _, clients = scoped
    subject, tokens = load(clients)
    admin = clients["override-admin"]  # listed in admin_principals, granted nothing by the policy
    assert admin.set_consent(subject, "billing", opted_out=True) is True
    assert admin.get_consent(subject) == ["billing"]
    assert admin.shred_fields(subject, ["ssn"], reason="x").status == "shredded"
    (done,) = admin.shred_subjects([subject], reason="x")
    assert done.status == "shredded" and admin.verify_receipt(done.receipt, done.signature)
    assert not any(readable(clients, tokens).values())


def test_consent_is_scoped_by_purpose(scoped: tuple[Stack, dict]) -> None:
    _, clients = scoped
    subject, _ = load(clients)
    desk, officer = clients["benefits-desk"], clients["records-office"]
    assert desk.set_consent(subject, PURPOSE, opted_out=True) is True
    with pytest.raises(PermissionDenied, match="not permitted to change consent for purpose 'billing'"):
        desk.set_consent(subject, "billing", opted_out=True)
    assert officer.set_consent(subject, "billing", opted_out=True) is True
    assert officer.get_consent(subject) == ["benefits_eligibility", "billing"]
    assert desk.get_consent(subject) == [PURPOSE]  # only the purposes it holds admin for
    with pytest.raises(PermissionDenied, match="not permitted to read consent"):
        clients["field-shredder"].get_consent(subject)
    with pytest.raises(PermissionDenied):
        clients["field-shredder"].set_consent(subject, PURPOSE, opted_out=False)
    assert officer.get_consent(subject) == ["benefits_eligibility", "billing"]


# --- every refusal is logged -----------------------------------------------------------

CALLS: dict[str, tuple[str, str, Callable[[PdvClient, str, dict], object]]] = {
    # method: (logged action, logged purpose, the call)
    "ShredSubjects": ("shred", "disposal", lambda c, s, r: c.shred_subjects([s], reason="x")),
    "ShredFields": ("shred", "disposal", lambda c, s, r: c.shred_fields(s, ["email"], reason="x")),
    "PlaceHold": ("hold", "legal_hold", lambda c, s, r: c.place_hold(s, case_id="CV-9", reason="x")),
    "ReleaseHold": ("release_hold", "legal_hold", lambda c, s, r: c.release_hold(s, case_id="CV-9")),
    "VerifyReceipt": ("verify_receipt", "disposal", lambda c, s, r: c.verify_receipt(r["receipt"], r["signature"])),
    "SetConsent": ("consent", PURPOSE, lambda c, s, r: c.set_consent(s, PURPOSE, opted_out=True)),
    "GetConsent": ("consent", "consent_report", lambda c, s, r: c.get_consent(s)),
    "CorrectValue": ("correct", "correction", lambda c, s, r: c.correct_value(s, "email", "a@example.org", reason="x")),
    "ListCorrections": ("correct", "correction_report", lambda c, s, r: c.list_corrections(s)),
    "GetAccessReport": ("access_report", "subject_access", lambda c, s, r: c.access_report(s, include_values=True)),
}


def test_every_subject_service_call_is_in_the_refusal_table() -> None:
    from pdv.v1 import subject_pb2

    assert set(CALLS) == set(subject_pb2.DESCRIPTOR.services_by_name["SubjectService"].methods_by_name)


def audit_query(stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                *filters: str) -> list[dict]:
    settings = stack.settings
    for name, value in (("DATABASE_URL", settings.database_url), ("VAULT_ADDR", settings.vault_addr),
                        ("VAULT_TOKEN", settings.vault_token_value())):
        monkeypatch.setenv(f"PDV_{name}", value)
    capsys.readouterr()
    assert pdv_main(["audit", "query", *filters]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("method", sorted(CALLS))
def test_a_refused_call_leaves_one_refusal_entry(
    scoped: tuple[Stack, dict], method: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, clients = scoped
    subject, _ = load(clients)
    receipt = {}
    if method == "VerifyReceipt":
        done = clients["field-shredder"].shred_fields(subject, ["phone"], reason="x")
        receipt = {"receipt": done.receipt, "signature": done.signature}
    action, purpose, call = CALLS[method]
    with pytest.raises(PermissionDenied):
        call(clients[STRANGER], subject, receipt)
    entries = audit_query(stack, monkeypatch, capsys, "--subject", subject, "--principal", STRANGER)
    assert [(e["principal"], e["action"], e["purpose"], e["outcome"]) for e in entries] == [
        (STRANGER, action, purpose, "denied")
    ]
    assert all(readable(clients, load(clients)[1]).values())  # the server still serves


def test_pdv_policy_check_warns_about_a_shred_grant_it_cannot_honour() -> None:
    done = subprocess.run([Path(sys.executable).with_name("pdv"), "policy", "check", str(POLICY_FILE)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (warning,) = [line for line in done.stdout.splitlines() if line.startswith("warning:")]
    assert "line 18: role 'purpose_shredder' grants shred on" in warning and "for some purposes only" in warning


def test_a_refused_shred_of_several_subjects_logs_each_subject_once(scoped: tuple[Stack, dict]) -> None:
    stack, clients = scoped
    (a, _), (b, _) = load(clients), load(clients)
    with pytest.raises(PermissionDenied):
        clients["purpose-shredder"].shred_subjects([a, b, a, "not-a-subject-id"], reason="x")
    items = logged_items(stack.app.store, principal="purpose-shredder")
    rows = [(r["subject_id"], r["action"], r["outcome"]) for r in items if r["subject_id"] in (a, b)]
    malformed = [r for r in logged_items(stack.app.store) if r["subject_id"] == "not-a-subject-id"]
    assert malformed == []  # only well-formed ids reach the log
    assert sorted(map(tuple, rows)) == sorted([(a, "shred", "denied"), (b, "shred", "denied")])
