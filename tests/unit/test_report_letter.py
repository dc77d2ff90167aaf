"""The access report's letter and plain words: autoescaped, ids masked, periods in words."""

from __future__ import annotations

import math
from datetime import timedelta

from vault.services.rights.report_html import render
from vault.services.rights.report_words import action_text, mask_token, outcome_text, period_text

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def _report(**values: object) -> dict:
    value = {"field": "email", "field_label": "Email address", "category": "contact", "purpose": "billing",
             "purpose_label": "billing", "source": HOSTILE, "collected_at": "2026-01-02T03:04:05Z",
             "notice_id": "", "expires_at": "2033-01-02T03:04:05Z", "retention_rule": "7 years",
             "on_expiry": "destroyed", "token_masked": "…abcd", "view": "VALUE_VIEW_PLAIN", "value": HOSTILE,
             "on_hold": False, "corrections": [], **values}
    return {"subject_id": "sub_AAAAAAAAAAAAAAAAAAAAAA", "generated_at": "2026-02-03T10:00:00Z",
            "generated_by": "office", "case_id": "req_0123456789abcdef01234567", "values_requested": True,
            "values": [value], "accesses": [{"entry_id": "7", "at": "2026-01-05T09:30:00Z", "principal": HOSTILE,
                                             "action": "detokenize", "action_text": "read", "field": "email",
                                             "field_label": "Email address", "purpose": "billing",
                                             "purpose_label": "billing", "outcome": "ok", "outcome_text": "allowed",
                                             "verification": "VERIFICATION_VERIFIED", "partner_agreement": ""}],
            "destroyed": [], "consent": [], "holds": [], "entries_cited": 1, "entries_verified": 1,
            "entries_failed": 0, "verification_method": ""}


def test_every_text_from_the_report_is_escaped() -> None:
    page = render(_report())
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_ids_appear_only_masked_and_an_unrecorded_notice_is_not_a_no() -> None:
    page = render(_report())  # notice_given left out, as JSON leaves an unset optional field
    assert "sub_AAAAAAAAAAAAAAAAAAAAAA" not in page and "req_0123456789abcdef01234567" not in page
    assert "…AAAA" in page and "…4567" in page
    assert "Not recorded" in page
    assert "Yes" in render(_report(notice_given=True, notice_id="N-1"))
    assert ">No<" in render(_report(notice_given=False))


def test_a_failed_entry_is_announced() -> None:
    report = _report()
    report.update(entries_failed=1, entries_verified=0)
    report["accesses"][0]["verification"] = "VERIFICATION_FAILED"
    page = render(report)
    assert "Warning: 1 of the 1 access-log entries below failed our tamper check" in page
    assert "failed the tamper check" in page


def test_periods_read_as_the_catalog_wrote_them() -> None:
    assert [period_text(timedelta(days=math.ceil(n * 365.25))) for n in (1, 3, 7, 10)] == [
        "1 year", "3 years", "7 years", "10 years"]
    assert (period_text(timedelta(days=62)), period_text(timedelta(days=14)), period_text(timedelta(days=90))) == (
        "2 months", "2 weeks", "90 days")


def test_words_for_the_log_and_masked_tokens() -> None:
    assert (action_text("detokenize"), outcome_text("denied_consent")) == ("read", "refused: you opted out of that purpose")
    assert (action_text("some_new_action"), outcome_text("some_new_outcome")) == ("some new action", "some new outcome")
    assert mask_token("pdv_0123456789abcdefghijkl") == "…ijkl" and mask_token("abc") == "…"


def test_the_holders_section_says_who_holds_references_in_the_policys_words() -> None:
    report = _report()
    assert "No system has been given references to your information." in render(report)
    report["holders"] = [
        {"principal": "acme", "domain": "partner:acme", "description": "Acme Benefits Ltd, " + HOSTILE,
         "partner_agreement": "DSA-2026-01", "first_issued_at": "2026-01-05T09:30:00Z",
         "last_issued_at": "2026-01-20T12:00:00Z"},
        {"principal": "intake-311", "domain": "city", "description": "", "partner_agreement": "",
         "first_issued_at": "2026-01-02T03:04:05Z", "last_issued_at": "2026-01-02T03:04:05Z"},
    ]
    page = render(report)
    assert "Acme Benefits Ltd, &lt;script&gt;" in page and "<script>alert" not in page
    assert "partner, agreement DSA-2026-01" in page and "system acme" in page
    assert "5 January 2026" in page and "20 January 2026" in page
    assert "intake-311" in page and "No system has been given" not in page
    assert "partner:acme" not in page  # the domain is the JSON form's, not the letter's
