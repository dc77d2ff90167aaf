"""A resident's whole journey, and what the access report says at each step: collected by two
city systems, read by a partner, opted out of a purpose, corrected, one field shredded under a
deletion request, a report requested under an access request, and the cases closed — through
the generated client against a real OpenBao, on both databases (the policy of
tests/e2e/test_access_report.py)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from pdv.v1 import subject_pb2 as pb
from pdv_client import Record
from pdv_client.errors import NotFound

from tests.conftest import DATABASES
from tests.e2e.test_access_report import NAMED, POLICY_FILE, Env
from tests.support.stack import stack_with_policy
from vault.keys.openbao import OpenBaoServer


@pytest.fixture(params=DATABASES)
def env(request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("journey")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, NAMED) as (stack, keys):
        yield Env(stack, keys, tmp)


def accesses(report: pb.AccessReport) -> list[tuple[str, str, str, str]]:
    """(principal, action, field, outcome) of every access the report lists, oldest first."""
    return [(a.principal, a.action, a.field, a.outcome) for a in report.accesses]


def test_a_residents_journey_as_the_report_tells_it(env: Env) -> None:
    c, office = env.c, env.c["privacy-office"]
    report = lambda **kw: c["full-reader"].access_report(subject, **kw)  # noqa: E731

    # 1. Billing collects three fields with a collection notice; the 311 desk adds a phone without one.
    email = f"ada.{secrets.token_hex(4)}@example.org"
    (billing,) = c["loader-svc"].tokenize([Record({"email": email, "phone": "212-555-0142", "full_name": "Ada Lovelace"})],
                                          purpose="billing", source="utility-billing", notice_id="NOTICE-2026-04")
    subject = billing.subject_id
    c["loader-svc"].tokenize([Record({"phone": "212-555-0199"}, subject_id=subject)], purpose="service_delivery",
                             source="311", notice_given=False)
    r = report()
    assert sorted((v.field, v.purpose, v.source, v.notice_given, v.notice_id) for v in r.values) == [
        ("email", "billing", "utility-billing", True, "NOTICE-2026-04"),
        ("full_name", "billing", "utility-billing", True, "NOTICE-2026-04"),
        ("phone", "billing", "utility-billing", True, "NOTICE-2026-04"),
        ("phone", "service_delivery", "311", False, ""),
    ]
    assert {v.view for v in r.values} == {pb.VALUE_VIEW_UNSPECIFIED} and not any(v.value for v in r.values)
    assert sorted(accesses(r)) == sorted([("loader-svc", "tokenize", f, "ok") for f in ("email", "phone", "full_name")]
                                         + [("loader-svc", "tokenize", "phone", "ok")])
    assert r.entries_failed == 0 and r.destroyed == [] and not any(s.opted_out for s in r.consent)

    # 2. The water company, a partner, reads the email under its agreement.
    (read,) = c["water-co"].detokenize([(billing.tokens["email"], "email")], purpose="billing")
    assert read.value == email
    partner = [a for a in report().accesses if a.principal == "water-co"]
    assert [(a.action, a.field, a.outcome, a.partner_agreement) for a in partner] == [
        ("detokenize", "email", "ok", "AGR-77")]

    # 3. The resident opts out of research.
    office.set_consent(subject, "research_deidentified", opted_out=True)
    assert {s.purpose for s in report().consent if s.opted_out} == {"research_deidentified"}

    # 4. The resident's name is corrected; the report shows when, by whom and why, and the new value.
    office.correct_value(subject, "full_name", "Ada King", reason="name changed at marriage")
    (name,) = [v for v in report(include_values=True).values if v.field == "full_name"]
    assert name.value == "Ada King"
    assert [(x.corrected_by, x.reason) for x in name.corrections] == [("privacy-office", "name changed at marriage")]

    # 5. A deletion request: both phone numbers are shredded under the case.
    deletion = office.requests.open("deletion", subject_id=subject, description="Delete my phone numbers")
    office.shred_fields(subject, ["phone"], reason="resident's deletion request", case_id=deletion.case_id)
    r = report()
    assert sorted(v.field for v in r.values) == ["email", "full_name"]
    assert [(d.kind, list(d.fields)) for d in r.destroyed] == [("shred", ["phone"])]
    assert r.destroyed[0].receipt and r.destroyed[0].signature
    assert ("privacy-office", "shred") in {(a.principal, a.action) for a in r.accesses}
    assert [a.action for a in office.requests.show(deletion.case_id).actions] == ["shred_fields"]
    (gone,) = c["loader-svc"].detokenize([(billing.tokens["phone"], "phone")], purpose="billing")
    assert gone.code != 0

    # 6. An access request, answered with a report with values, linked to the case.
    access = office.requests.open("access", subject_id=subject, description="What do you hold about me?")
    answer = report(case_id=access.case_id, include_values=True)
    assert sorted((v.field, v.value) for v in answer.values) == [("email", email), ("full_name", "Ada King")]
    assert answer.entries_cited == len(answer.accesses) and answer.entries_failed == 0
    assert [(a.action, a.outcome, a.principal) for a in office.requests.show(access.case_id).actions] == [
        ("access_report", "with_values", "full-reader")]
    # ... and the next report lists that report as an access, under the case.
    made = [a for a in report().accesses if a.action == "access_report" and a.principal == "full-reader"]
    assert {a.outcome for a in made} >= {"ok", "plain"}

    # 7. Both cases are closed; a report can no longer be filed under the closed one.
    for case in (deletion, access):
        office.requests.update(case.case_id, status="in_progress")
        closed = office.requests.update(case.case_id, status="answered", response_text="Done; see the enclosed report.")
        assert closed.status == "answered" and closed.closed_at is not None
    shown = office.requests.show(access.case_id)
    assert [h.to_status for h in shown.history] == ["received", "in_progress", "answered"]
    with pytest.raises(NotFound):
        report(case_id=access.case_id)
    # Every entry the final report cites still verifies.
    final = report()
    assert final.entries_failed == 0 and final.entries_cited == len(final.accesses)
