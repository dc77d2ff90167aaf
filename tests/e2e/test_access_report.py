"""The resident's access report end to end (SubjectService.GetAccessReport, `pdv subject
report`): what a full, a masked and a refused reader get, values only with include_values and
an export grant, the report logged and linked to its case, collection notices, tamper-checked
log entries, canaries, and the HTML letter as headless Chromium shows it — through the
generated client and the CLI against a real OpenBao, on both databases."""

from __future__ import annotations

import html as html_lib
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv.v1 import subject_pb2 as pb
from pdv_client import Record
from pdv_client.errors import InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from sqlalchemy import update

from tests.conftest import DATABASES
from tests.e2e.test_canaries import Book
from tests.support.access_log import logged_items
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t

POLICY_FILE = Path(__file__).with_name("report_policy.yaml")
NAMED = ("loader-svc", "privacy-office", "full-reader", "masked-reader", "half-reader", "water-co", "parks-co")
STRANGER = PRINCIPAL  # named nowhere in the policy
PDV = [sys.executable, "-m", "vault.cli.main"]


class Env:
    def __init__(self, stack: Stack, keys: dict[str, str], tmp: Path) -> None:
        self.stack, self.keys, self.tmp = stack, keys, tmp
        self.c = {p: stack.client(k) for p, k in keys.items()}

    def person(self, book: Book | None = None) -> tuple[str, dict[str, str], dict[str, str]]:
        """A resident collected by billing (with a notice), then by 311 (without one)."""
        if book is not None:
            sent = {"email": book.email().sent, "phone": book.phone().sent, "full_name": book.name().sent}
        else:
            sent = {"email": f"ada.{secrets.token_hex(4)}@example.org", "phone": "212-555-0142",
                    "full_name": "Ada Lovelace"}
        (first,) = self.c["loader-svc"].tokenize([Record(sent)], purpose="billing", source="utility-billing",
                                                 notice_id="NOTICE-2026-04")
        (second,) = self.c["loader-svc"].tokenize(
            [Record({"phone": sent["phone"]}, subject_id=first.subject_id)], purpose="service_delivery", source="311",
            notice_given=False)
        return first.subject_id, dict(first.tokens), {"311-phone": second.tokens["phone"]}

    def log(self, **where: object) -> list[dict]:
        return logged_items(self.stack.app.store, **where)

    def pdv(self, principal: str, *args: str) -> subprocess.CompletedProcess:
        key = self.tmp / f"{principal}.key"
        key.write_text(self.keys[principal])
        return subprocess.run([*PDV, *args, "--target", self.stack.target, "--api-key-file", str(key)],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module", params=DATABASES)
def env(request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("report")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, NAMED) as (stack, keys):
        yield Env(stack, keys, tmp)


def test_a_full_reader_sees_everything_held_every_access_and_what_was_destroyed(env: Env) -> None:
    subject, tokens, more = env.person()
    c = env.c
    # A partner reads the email under its agreement, and is refused the phone (a token named
    # without its field is judged on its stored row, so the refusal is logged against the subject).
    (read,) = c["water-co"].detokenize([(tokens["email"], "email")], purpose="billing")
    assert read.code == 0
    (refused,) = c["water-co"].detokenize([tokens["phone"]], purpose="billing")
    assert refused.code != 0
    c["privacy-office"].set_consent(subject, "research_deidentified", opted_out=True)
    c["privacy-office"].correct_value(subject, "full_name", "Ada King", reason="name changed at marriage")
    case = c["privacy-office"].requests.open("access", subject_id=subject, description="What do you hold?")
    c["privacy-office"].place_hold(subject, case_id="LIT-2026-9", reason="pending litigation")
    c["privacy-office"].release_hold(subject, case_id="LIT-2026-9")

    report = c["full-reader"].access_report(subject, case_id=case.case_id, include_values=True)

    assert (report.subject_id, report.case_id, report.generated_by, report.values_requested) == (
        subject, case.case_id, "full-reader", True)
    held = {(v.field, v.purpose): v for v in report.values}
    assert sorted(held) == [("email", "billing"), ("full_name", "billing"), ("phone", "billing"),
                            ("phone", "service_delivery")]
    email = held[("email", "billing")]
    assert (email.field_label, email.category, email.source) == ("Email address", "contact", "utility-billing")
    assert email.purpose_label == "utility and service billing, payments and collections"
    assert (email.HasField("notice_given"), email.notice_given, email.notice_id) == (True, True, "NOTICE-2026-04")
    assert email.retention_rule == ("7 years after collection, the rule for utility and service billing, "
                                    "payments and collections")
    assert email.view == pb.VALUE_VIEW_PLAIN and email.value.endswith("@example.org")
    assert email.token_masked == "…" + tokens["email"][-4:] and tokens["email"] not in str(report)
    assert not email.on_hold  # the hold was released
    desk = held[("phone", "service_delivery")]
    assert (desk.source, desk.notice_given, desk.notice_id, desk.value) == ("311", False, "", "2125550142")
    assert held[("phone", "service_delivery")].retention_rule == "3 years after collection, the rule for this field"
    name = held[("full_name", "billing")]
    assert name.value == "Ada King"
    assert [(x.corrected_by, x.reason) for x in name.corrections] == [("privacy-office", "name changed at marriage")]
    assert {(s.purpose, s.opted_out) for s in report.consent if s.opted_out} == {("research_deidentified", True)}
    assert "subject_access" not in {s.purpose for s in report.consent}
    assert [(h.case_id, h.reason, h.HasField("released_at")) for h in report.holds] == [
        ("LIT-2026-9", "pending litigation", True)]

    partner = [a for a in report.accesses if a.principal == "water-co"]
    assert [(a.action, a.field, a.outcome, a.partner_agreement) for a in partner] == [
        ("detokenize", "email", "ok", "AGR-77"), ("detokenize", "phone", "denied", "AGR-77")]
    assert [a.outcome_text for a in partner] == ["allowed", "refused: not permitted"]
    assert partner[0].action_text == "read" and partner[0].field_label == "Email address"
    collected = [a for a in report.accesses if a.action == "tokenize"]
    assert {a.field for a in collected} == {"email", "phone", "full_name"} and len(collected) == 4
    # Every entry the report cites verifies against the chain.
    assert report.entries_cited == len(report.accesses) > 0
    assert (report.entries_verified, report.entries_failed) == (report.entries_cited, 0)
    assert {a.verification for a in report.accesses} == {pb.VERIFICATION_VERIFIED}

    # The report is an access: one entry tied to the case, one per value shown; linked to the case.
    rows = env.log(action="access_report", subject_id=subject)
    assert [(r["principal"], r["field"], r["token"], r["outcome"]) for r in rows if r["field"] is None] == [
        ("full-reader", None, case.case_id, "ok")]
    assert sorted((r["field"], r["outcome"]) for r in rows if r["field"]) == [
        ("email", "plain"), ("full_name", "plain"), ("phone", "plain"), ("phone", "plain")]
    shown = env.c["privacy-office"].requests.show(case.case_id)
    assert [(a.action, a.subject_id, a.outcome, a.principal) for a in shown.actions] == [
        ("access_report", subject, "with_values", "full-reader")]

    # A field shred shows up under what was destroyed, with its receipt; its values are gone.
    outcome = c["privacy-office"].shred_fields(subject, ["phone"], reason="resident asked")
    again = c["full-reader"].access_report(subject)
    assert {v.field for v in again.values} == {"email", "full_name"}
    assert [(d.kind, list(d.fields), list(d.field_labels), d.reason, d.actor, d.values_destroyed) for d in
            again.destroyed] == [("shred", ["phone"], ["Phone number"], "resident asked", "privacy-office", 2)]
    assert (again.destroyed[0].receipt, again.destroyed[0].signature) == (outcome.receipt, outcome.signature)
    assert c["privacy-office"].verify_receipt(again.destroyed[0].receipt, again.destroyed[0].signature)
    # The earlier report is itself among the accesses now.
    assert ("access_report", "ok") in {(a.action, a.outcome) for a in again.accesses if a.principal == "full-reader"}


def test_a_masked_reader_sees_masks_and_never_a_value(env: Env) -> None:
    subject, tokens, _ = env.person()
    (plain,) = env.c["loader-svc"].detokenize([(tokens["email"], "email")], purpose="billing")
    report = env.c["masked-reader"].access_report(subject, include_values=True)
    email = next(v for v in report.values if v.field == "email")
    assert email.view == pb.VALUE_VIEW_MASKED and email.value != plain.value
    assert email.value.endswith("@example.org") and "***" in email.value
    assert plain.value not in str(report)
    assert {v.view for v in report.values} == {pb.VALUE_VIEW_MASKED}
    rows = env.log(action="access_report", subject_id=subject, principal="masked-reader")
    assert {r["outcome"] for r in rows if r["field"]} == {"masked"}


# loader-svc reads every field for purposes "*", which does not reach subject_access.
@pytest.mark.parametrize("principal", ["half-reader", STRANGER, "water-co", "loader-svc"])
def test_a_reader_without_grants_on_every_field_is_refused_and_the_refusal_logged(env: Env, principal: str) -> None:
    subject, _, _ = env.person()
    before = len(env.log(action="access_report", subject_id=subject))
    with pytest.raises(PermissionDenied, match="subject_access"):
        env.c[principal].access_report(subject, include_values=True)
    rows = env.log(action="access_report", subject_id=subject)[before:]
    assert [(r["principal"], r["purpose"], r["outcome"]) for r in rows] == [(principal, "subject_access", "denied")]


def test_values_only_with_include_values_and_no_value_in_the_json_or_the_html_without(env: Env) -> None:
    book = Book()
    subject, _, _ = env.person(book)
    bare = env.c["full-reader"].access_report(subject)
    assert bare.values and {(v.view, v.value) for v in bare.values} == {(pb.VALUE_VIEW_UNSPECIFIED, "")}
    assert all(r["field"] is None for r in env.log(action="access_report", subject_id=subject))
    for fmt in ("json", "html"):
        out = env.tmp / f"report-{subject}.{fmt}"
        done = env.pdv("full-reader", "subject", "report", subject, "--format", fmt, "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert os.stat(out).st_mode & 0o777 == 0o600
        book.look_in(f"report {fmt}", out.read_bytes())
        book.look_in(f"stdout {fmt}", done.stdout + done.stderr)
    assert book.hits() == []
    data = json.loads((env.tmp / f"report-{subject}.json").read_text())
    assert {v["field"] for v in data["values"]} == {"email", "phone", "full_name"}
    # With --values the same command does include them: the canary scan above can fail.
    done = env.pdv("full-reader", "subject", "report", subject, "--values")
    assert done.returncode == 0, done.stderr
    assert book.canaries[0].stored in done.stdout


def test_an_unknown_subject_or_case_is_not_found_and_logged(env: Env) -> None:
    unknown = "sub_" + secrets.token_urlsafe(16)
    subject, _, _ = env.person()
    with pytest.raises(NotFound):
        env.c["full-reader"].access_report(unknown)
    assert [r["outcome"] for r in env.log(action="access_report", subject_id=unknown)] == ["not_found"]
    with pytest.raises(NotFound):
        env.c["full-reader"].access_report(subject, case_id="req_" + "0" * 24)
    assert [r["outcome"] for r in env.log(action="access_report", subject_id=subject)] == ["no_open_case"]
    with pytest.raises(InvalidArgument):
        env.c["full-reader"].access_report(subject, case_id="not-a-case")


def test_a_whole_shredded_subject_still_has_its_accesses_and_destruction_reported(env: Env) -> None:
    subject, _, _ = env.person()
    (shred,) = env.c["privacy-office"].shred_subjects([subject], reason="deletion request")
    report = env.c["full-reader"].access_report(subject, include_values=True)
    assert list(report.values) == []
    assert [(d.kind, list(d.fields), d.receipt) for d in report.destroyed] == [("shred", [], shred.receipt)]
    assert ("shred", "shredded") in {(a.action, a.outcome) for a in report.accesses}


def test_notice_given_false_with_a_notice_id_is_refused_and_logged(env: Env) -> None:
    before = len(env.log(action="tokenize", principal="loader-svc", outcome="invalid"))
    with pytest.raises(InvalidArgument, match="notice_given"):
        env.c["loader-svc"].tokenize([Record({"email": "x@example.org"})], purpose="billing", source="t",
                                     notice_id="N-1", notice_given=False)
    after = env.log(action="tokenize", principal="loader-svc", outcome="invalid")
    assert [r["field"] for r in after[before:]] == ["notice_given"]


def test_an_edited_log_entry_is_reported_as_failing_its_check(env: Env) -> None:
    subject, tokens, _ = env.person()
    env.c["water-co"].detokenize([(tokens["email"], "email")], purpose="billing")
    (entry,) = env.log(action="detokenize", subject_id=subject, principal="water-co")
    with env.stack.app.store.engine.begin() as conn:  # someone with database access hides a read
        conn.execute(update(t.access_log).where(t.access_log.c.id == entry["id"]).values(outcome="not_found"))
    report = env.c["full-reader"].access_report(subject)
    failed = [a for a in report.accesses if a.verification == pb.VERIFICATION_FAILED]
    assert [(a.entry_id, a.outcome) for a in failed] == [(entry["id"], "not_found")]
    assert (report.entries_failed, report.entries_verified) == (1, report.entries_cited - 1)
    html = env.tmp / f"tampered-{subject}.html"
    assert env.pdv("full-reader", "subject", "report", subject, "--format", "html", "--out", str(html)).returncode == 0
    assert "failed our tamper check" in seen_by_a_reader(html, env.tmp)


def test_the_letter_reads_plainly_in_chromium(env: Env) -> None:
    subject, tokens, _ = env.person()
    env.c["water-co"].detokenize([(tokens["email"], "email")], purpose="billing")
    case = env.c["privacy-office"].requests.open("access", subject_id=subject, description="Access please")
    html = env.tmp / f"letter-{subject}.html"
    done = env.pdv("full-reader", "subject", "report", subject, "--case", case.case_id, "--values",
                   "--format", "html", "--out", str(html))
    assert done.returncode == 0, done.stderr
    shown = env.pdv("privacy-office", "requests", "show", case.case_id)
    assert shown.returncode == 0, shown.stderr
    assert [(a["action"], a["outcome"], a["by"]) for a in json.loads(shown.stdout)["actions"]] == [
        ("access_report", "with_values", "full-reader")]
    text = seen_by_a_reader(html, env.tmp)
    assert "What the City holds about you" in text
    assert "Who holds references to your information" in text
    assert "the City's billing and 311 intake system\nsystem loader-svc" in text.replace("\t", "\n"), text
    for words in ("Email address", "Phone number", "utility and service billing, payments and collections",
                  "delivering a city service the resident asked for", "utility-billing", "Yes, notice NOTICE-2026-04",
                  "water-co", "partner, agreement AGR-77", "Read: Email address", "Allowed", "passed our tamper check",
                  "2125550142"):
        assert words in text, words
    # No token and no internal id whole: the subject and case only by their last four characters.
    assert not [tok for tok in tokens.values() if tok in text]
    assert subject not in text and case.case_id not in text
    assert "…" + subject[-4:] in text and "…" + case.case_id[-4:] in text


def test_the_report_lists_every_system_handed_the_residents_tokens_and_no_other(env: Env) -> None:
    email = f"grace.{secrets.token_hex(4)}@example.org"
    (rec,) = env.c["loader-svc"].tokenize([Record({"email": email})], purpose="billing", source="utility-billing")
    subject = rec.subject_id
    assert {m.subject_id for m in env.c["parks-co"].lookup("email", email, purpose="billing")} == {subject}
    env.c["water-co"].detokenize([(rec.tokens["email"], "email")], purpose="billing")  # a reader, not a holder
    report = env.c["full-reader"].access_report(subject)
    assert [(h.principal, h.domain, h.description, h.partner_agreement) for h in report.holders] == [
        ("loader-svc", "city", "the City's billing and 311 intake system", ""),
        ("parks-co", "city", "Greenway Parks, the parks registration contractor", "AGR-88")]
    loader, parks = report.holders
    assert loader.first_issued_at.ToDatetime() <= parks.first_issued_at.ToDatetime() <= report.generated_at.ToDatetime()
    assert all(h.first_issued_at.ToDatetime() <= h.last_issued_at.ToDatetime() for h in report.holders)
    # The JSON form says the same; another resident's report names neither of this one's holders.
    done = env.pdv("full-reader", "subject", "report", subject)
    assert done.returncode == 0, done.stderr
    assert [(h["principal"], h["partner_agreement"]) for h in json.loads(done.stdout)["holders"]] == [
        ("loader-svc", ""), ("parks-co", "AGR-88")]
    other, _, _ = env.person()
    assert [h.principal for h in env.c["full-reader"].access_report(other).holders] == ["loader-svc"]


@pytest.mark.parametrize("kind", DATABASES)
def test_a_report_too_large_to_send_is_refused_before_it_is_logged_as_made(
        openbao: OpenBaoServer, vault_token: str, kind: str, tmp_path: Path) -> None:
    limit = 64 * 1024
    with stack_with_policy(openbao, vault_token, kind, tmp_path, POLICY_FILE, NAMED,
                           max_message_bytes=limit) as (stack, keys):
        small = Env(stack, keys, tmp_path)
        subject, tokens, _ = small.person()
        for _ in range(4):  # 800 reads: far more than 64 KiB of report
            small.c["loader-svc"].detokenize([tokens["email"]] * 200, purpose="billing")
        with pytest.raises(ResourceExhausted, match="max_message_bytes"):
            small.c["full-reader"].access_report(subject, include_values=True)
        rows = small.log(action="access_report", subject_id=subject)
        assert [(r["field"], r["outcome"]) for r in rows] == [(None, "too_large")]
        other, _, _ = small.person()  # a small report still goes through
        assert small.c["full-reader"].access_report(other).subject_id == other


def seen_by_a_reader(page: Path, tmp: Path) -> str:
    """The text headless Chromium renders for `page` (innerText: what is laid out and visible),
    read by a wrapper page that loads it in a frame and writes the text into its own DOM."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: `make test` installs it (Debian package chromium)"
    wrapper = page.with_suffix(".view.html")
    wrapper.write_text(
        f'<!DOCTYPE html><html><body><iframe id="f" src="{page.name}"></iframe><pre id="seen"></pre><script>'
        'window.addEventListener("load", () => { document.getElementById("seen").textContent = '
        'document.getElementById("f").contentDocument.body.innerText; });</script></body></html>')
    profile = tmp / f"chromium-{secrets.token_hex(4)}"
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--allow-file-access-from-files", f"--user-data-dir={profile}", "--virtual-time-budget=10000",
         "--dump-dom", wrapper.as_uri()],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    start, end = done.stdout.find('<pre id="seen">'), done.stdout.find("</pre>")
    assert 0 <= start < end, done.stdout[:2000]
    return html_lib.unescape(done.stdout[start + len('<pre id="seen">'):end])
