"""The policy file: parsing, line-numbered errors, decisions, partners, reload (SIGHUP)."""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from vault.bootstrap import access_policy
from vault.catalog import load_catalog, parse_catalog
from vault.cli.serve import reload_policy_on_sighup
from vault.config import load_settings
from vault.errors import ConfigError, RateLimited
from vault.policy import MASKED, PLAIN, PolicyHolder, load_policy, open_policy, parse_policy
from vault.services.access import AccessControl
from vault.services.rate_limit import RateLimiter

CATALOG = load_catalog()
TODAY = datetime.date(2026, 6, 1)

GOOD = textwrap.dedent("""\
    version: 1
    roles:
      clerk:
        grants:
          - fields: [email, phone]
            actions: [detokenize, lookup]
            purposes: [service_delivery]
          - fields: [ssn]
            actions: [detokenize_masked]
            purposes: [benefits_eligibility]
      officer:
        grants:
          - fields: "*"
            actions: [shred, admin]
            purposes: "*"
    principals:
      intake-311: [clerk]
      records: [officer]
    partners:
      acme:
        agreement: AGR-1
        expires: 2026-12-31
        roles: [clerk]
    """)


def test_grants_are_exactly_what_the_file_says() -> None:
    policy = parse_policy(GOOD, CATALOG, today=TODAY)
    assert policy.view("intake-311", "email", "service_delivery", TODAY) == PLAIN
    assert policy.view("intake-311", "ssn", "benefits_eligibility", TODAY) == MASKED
    assert policy.view("intake-311", "ssn", "service_delivery", TODAY) is None
    assert policy.view("intake-311", "email", "billing", TODAY) is None
    assert not policy.allows("intake-311", "tokenize", "email", "service_delivery", TODAY)
    assert policy.may_read_any("intake-311", "benefits_eligibility", TODAY)
    assert not policy.may_read_any("intake-311", "billing", TODAY)
    purposes, fields = sorted(CATALOG.purposes), CATALOG.names
    assert policy.covers("records", "shred", fields, purposes, TODAY)
    assert not policy.covers("intake-311", "shred", ["email"], purposes, TODAY)
    assert policy.covers("intake-311", "detokenize", ["email", "phone"], ["service_delivery"], TODAY)
    assert not policy.covers("intake-311", "detokenize", ["email", "ssn"], ["service_delivery"], TODAY)
    assert policy.view("nobody", "email", "service_delivery", TODAY) is None  # default deny


SCOPED = textwrap.dedent("""\
    version: 1
    roles:
      field_shredder:
        grants:
          - fields: [email, phone]
            actions: [shred]
            purposes: "*"
      purpose_shredder:
        grants:
          - fields: "*"
            actions: [shred]
            purposes: [service_delivery]
      consent_desk:
        grants:
          - fields: [email]
            actions: [admin]
            purposes: [benefits_eligibility]
          - fields: "*"
            actions: [admin]
            purposes: [billing]
    principals:
      a: [field_shredder]
      b: [purpose_shredder]
      c: [consent_desk]
    """)


def test_grants_subject_service_cannot_honour_are_warned_about_with_their_line() -> None:
    warnings = parse_policy(SCOPED, CATALOG, today=TODAY).warnings
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("<policy>, line 10: role 'purpose_shredder' grants shred on ")
    assert "for some purposes only" in warnings[0] and "these grant nothing" in warnings[0]
    assert warnings[1].startswith("<policy>, line 15: role 'consent_desk' grants admin for benefits_eligibility on "
                                  "some fields only")
    assert not parse_policy(GOOD, CATALOG, today=TODAY).warnings  # shred and admin on "*" for "*": honoured


def test_a_partner_loses_every_grant_the_day_after_its_agreement_expires() -> None:
    policy = parse_policy(GOOD, CATALOG, today=TODAY)
    assert policy.view("acme", "email", "service_delivery", datetime.date(2026, 12, 31)) == PLAIN
    assert policy.view("acme", "email", "service_delivery", datetime.date(2027, 1, 1)) is None


def test_an_expired_agreement_is_an_error_for_check_and_a_warning_when_serving() -> None:
    later = datetime.date(2027, 3, 1)
    with pytest.raises(ConfigError, match=r"<policy>, line 22: partner 'acme': agreement 'AGR-1' expired"):
        parse_policy(GOOD, CATALOG, today=later, strict=True)
    policy = parse_policy(GOOD, CATALOG, today=later)
    assert "expired" in policy.warnings[0] and "line 22" in policy.warnings[0]


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("fields: [email, phone]", "fields: [email, fone]", 5, "unknown field 'fone'"),
        ("actions: [detokenize, lookup]", "actions: [detokenize, peek]", 6, "unknown action 'peek'"),
        ("purposes: [service_delivery]", "purposes: [marketing]", 7, "unknown purpose 'marketing'"),
        ("intake-311: [clerk]", "intake-311: [clerck]", 17, "unknown role 'clerck'"),
        ("    roles: [clerk]", "    roles: [clerk]\n    region: east", 24, "unknown key 'region'"),
        ("expires: 2026-12-31", "expires: soon", 22, "expires must be a date"),
        ("version: 1", "version: 2", 1, "unsupported policy version"),
    ],
)
def test_errors_name_the_line(old: str, new: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"^policy.yaml, line {line}: .*{message}"):
        parse_policy(GOOD.replace(old, new, 1), CATALOG, "policy.yaml", today=TODAY)


def test_pdv_policy_check_names_the_file_and_line(tmp_path: Path) -> None:
    pdv = Path(sys.executable).with_name("pdv")
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.replace("expires: 2026-12-31", "expires: 2099-12-31"))
    done = subprocess.run([pdv, "policy", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, "ok (3 principals") == (0, done.stdout[len(str(path)) + 2:][:16])
    path.write_text(GOOD.replace("fields: [ssn]", "fields: [sn]"))
    done = subprocess.run([pdv, "policy", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"{path}, line 8: unknown field 'sn'" in done.stderr


def test_the_catalog_validates_compatible_purposes() -> None:
    assert CATALOG.compatible("billing", "service_delivery")
    assert CATALOG.compatible("billing", "billing")
    assert not CATALOG.compatible("billing", "public_safety")
    text = Path(__file__).parents[2].joinpath("vault/catalog.yaml").read_text()
    bad = text.replace("  billing: [service_delivery]", "  billing: [servce_delivery]")
    line = text[: text.index("  billing: [service_delivery]")].count("\n") + 1
    with pytest.raises(ConfigError, match=rf"line {line}: unknown purpose 'servce_delivery'"):
        parse_catalog(bad, "catalog.yaml")


def test_serving_needs_a_policy_unless_dev_policy_is_chosen(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no access policy: set policy_path"):
        access_policy(load_settings(), CATALOG)
    assert access_policy(load_settings(dev_policy=True), CATALOG).view("anyone", "ssn", "court_proceedings", TODAY) == PLAIN
    dev = open_policy(CATALOG)
    for action in ("shred", "admin"):  # subject-wide actions stay with admin_principals
        assert not any(dev.allows("anyone", action, f, p, TODAY) for f in CATALOG.names for p in CATALOG.purposes)
    assert dev.allows("anyone", "append", "email", "service_delivery", TODAY)  # the dev principal may add to subjects
    assert dev.may_disclose_any("anyone", "public_disclosure", TODAY)  # `pdv disclose` works under `pdv dev`


def test_sighup_reloads_the_policy_and_a_bad_file_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD.replace("expires: 2026-12-31", "expires: 2099-12-31"))
    holder = PolicyHolder(load_policy(path, CATALOG), path, CATALOG)
    app = SimpleNamespace(access=SimpleNamespace(holder=holder))
    previous = reload_policy_on_sighup(app)
    try:
        assert holder.current.view("intake-311", "phone", "service_delivery", TODAY) == PLAIN
        path.write_text(path.read_text().replace("fields: [email, phone]", "fields: [email]"))
        os.kill(os.getpid(), signal.SIGHUP)
        assert holder.current.view("intake-311", "phone", "service_delivery", TODAY) is None
        path.write_text("version: 1\nroles: [")
        os.kill(os.getpid(), signal.SIGHUP)
        assert holder.current.view("intake-311", "email", "service_delivery", TODAY) == PLAIN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_the_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_second=2, burst=4, clock=lambda: now[0])
    limiter.spend("a", 4)
    with pytest.raises(RateLimited):
        limiter.spend("a", 1)
    limiter.spend("b", 4)  # per principal
    now[0] = 1.0
    limiter.spend("a", 2)
    with pytest.raises(RateLimited):
        limiter.spend("a", 1)
    RateLimiter(0, 1).spend("a", 10**6)  # 0 turns it off


def test_export_and_reads_for_subject_access_count_only_where_the_grant_names_it() -> None:
    narrow = GOOD.replace("actions: [detokenize, lookup]", "actions: [detokenize, lookup, export]", 1)
    wide = GOOD.replace("actions: [shred, admin]", "actions: [shred, admin, export, detokenize]", 1)
    named = GOOD.replace("principals:\n", """  office:
    grants:
      - fields: "*"
        actions: [export, detokenize_masked]
        purposes: [subject_access]
principals:
  office-1: [office]
""", 1)
    assert narrow != GOOD and wide != GOOD and named != GOOD
    assert any("export without naming purpose subject_access" in w
               for w in parse_policy(narrow, CATALOG, today=TODAY).warnings)  # service_delivery only
    # "*" does not reach subject_access for reads and exports (it does for every other action).
    wide_policy = parse_policy(wide, CATALOG, today=TODAY)
    assert not wide_policy.allows("records", "export", "email", "subject_access", TODAY)
    assert wide_policy.view("records", "email", "subject_access", TODAY) is None
    assert wide_policy.view("records", "email", "billing", TODAY) == PLAIN
    assert wide_policy.allows("records", "shred", "email", "subject_access", TODAY)
    named_policy = parse_policy(named, CATALOG, today=TODAY)
    assert named_policy.allows("office-1", "export", "ssn", "subject_access", TODAY)
    assert named_policy.view("office-1", "ssn", "subject_access", TODAY) == MASKED
    assert not any("export" in w for w in named_policy.warnings + parse_policy(GOOD, CATALOG, today=TODAY).warnings)


def test_a_requests_grant_counts_only_on_every_field_for_every_purpose() -> None:
    whole = GOOD.replace("actions: [shred, admin]", "actions: [shred, admin, requests]", 1)
    assert whole != GOOD
    assert not any("requests" in w for w in parse_policy(whole, CATALOG, today=TODAY).warnings)
    narrow = textwrap.dedent("""\
        version: 1
        roles:
          officer:
            grants:
              - fields: [email]
                actions: [requests]
                purposes: "*"
        principals:
          someone: [officer]
        """)
    policy = parse_policy(narrow, CATALOG, today=TODAY)
    assert any("grants requests on some fields or purposes only" in w for w in policy.warnings)
    clock = lambda: datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)  # noqa: E731
    assert not AccessControl(PolicyHolder(policy), CATALOG, clock).may_handle_requests("someone")
    granted = AccessControl(PolicyHolder(parse_policy(whole, CATALOG, today=TODAY)), CATALOG, clock)
    assert granted.may_handle_requests("records") and not granted.may_handle_requests("intake-311")


def test_request_deadlines_are_per_kind_and_checked() -> None:
    settings = load_settings(request_deadline_days=20, request_deadline_days_by_kind={"complaint": 5})
    assert (settings.request_deadline("complaint"), settings.request_deadline("access")) == (5, 20)
    assert load_settings().request_deadline("deletion") == 30
    with pytest.raises(ConfigError, match="unknown request kind 'complaints'"):
        load_settings(request_deadline_days_by_kind={"complaints": 5})
    with pytest.raises(ConfigError, match="request_deadline_days"):
        load_settings(request_deadline_days=0)


DOMAINS = textwrap.dedent("""\
    version: 1
    roles:
      clerk:
        grants:
          - fields: [email]
            actions: [detokenize, lookup]
            purposes: [service_delivery]
      hub:
        grants:
          - fields: "*"
            actions: [translate]
            purposes: "*"
    principals:
      intake-311: [clerk]
      case-hub:
        roles: [hub]
      lab:
        roles: [clerk]
        domain: research
    partners:
      acme:
        agreement: AGR-1
        expires: 2026-12-31
        roles: [clerk]
      initech:
        agreement: AGR-2
        expires: 2026-12-31
        roles: [clerk]
        domain: vendors
      umbrella:
        agreement: AGR-3
        expires: 2026-12-31
        roles: [clerk]
        domain: vendors
    """)


def test_every_principal_has_a_token_domain_and_each_partner_its_own_unless_joined() -> None:
    policy = parse_policy(DOMAINS, CATALOG, today=TODAY)
    assert {p: policy.domain_of(p) for p in ("intake-311", "case-hub", "lab", "acme", "initech", "umbrella", "nobody")} \
        == {"intake-311": "city", "case-hub": "city", "lab": "research", "acme": "partner:acme",
            "initech": "vendors", "umbrella": "vendors", "nobody": "city"}
    assert policy.known_domains() == {"city", "research", "partner:acme", "vendors"}
    assert policy.allows("case-hub", "translate", "ssn", "court_proceedings", TODAY)
    assert not policy.warnings
    # The old form (a list of roles) and the new (roles and a domain) grant the same.
    assert policy.allows("lab", "lookup", "email", "service_delivery", TODAY)


def test_a_partner_granted_translate_is_warned_about() -> None:
    old = "    roles: [clerk]\n    domain: vendors\n  umbrella"
    assert old in DOMAINS
    text = DOMAINS.replace(old, old.replace("[clerk]", "[hub]"), 1)
    warnings = parse_policy(text, CATALOG, today=TODAY).warnings
    assert len(warnings) == 1 and "partner 'initech' is granted translate" in warnings[0], warnings
    assert warnings[0].startswith("<policy>, line 25:")  # the partner's entry


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("domain: research", "domain: Research Lab", 19, "domain 'Research Lab' must be lower_snake_case"),
        ("    domain: research", "    domain: research\n    region: east", 20, "unknown key 'region'"),
        ("  case-hub:\n    roles: [hub]", "  \"*\":\n    roles: [hub]\n    domain: hubs", 17,
         "\"\\*\" grants to every principal and has no domain of its own"),
    ],
)
def test_domain_errors_name_the_line(old: str, new: str, line: int, message: str) -> None:
    assert old in DOMAINS
    with pytest.raises(ConfigError, match=rf"^policy.yaml, line {line}: .*{message}"):
        parse_policy(DOMAINS.replace(old, new, 1), CATALOG, "policy.yaml", today=TODAY)


def test_principals_and_partners_may_say_who_they_are_in_plain_words() -> None:
    text = DOMAINS.replace("  case-hub:\n    roles: [hub]\n",
                           "  case-hub:\n    roles: [hub]\n    description: the City's case-management hub\n", 1)
    text = text.replace("    agreement: AGR-1\n", "    agreement: AGR-1\n    description: Acme Benefits Ltd\n", 1)
    policy = parse_policy(text, CATALOG, today=TODAY)
    assert policy.descriptions == {"case-hub": "the City's case-management hub", "acme": "Acme Benefits Ltd"}
    assert policy.partners["acme"].description == "Acme Benefits Ltd" and policy.partners["initech"].description == ""
    assert policy.domain_of("case-hub") == "city"  # a description changes nothing else


@pytest.mark.parametrize(("bad", "message"), [
    ('""', "partner 'acme': description must be one line of 1 to 200 printable characters"),
    ('"two\\nlines"', "partner 'acme': description must be one line"),
    ('"' + "x" * 201 + '"', "partner 'acme': description must be one line"),
    ("[a, list]", "expected"),
])
def test_a_description_that_is_not_one_short_line_is_refused_with_its_line(bad: str, message: str) -> None:
    text = DOMAINS.replace("    agreement: AGR-1\n", f"    agreement: AGR-1\n    description: {bad}\n", 1)
    with pytest.raises(ConfigError, match=rf"^<policy>, line 23: {message}"):
        parse_policy(text, CATALOG, today=TODAY)
