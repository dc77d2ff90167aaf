"""The server's operational log carries ids of requests and outcomes, never subject ids or tokens.

Every path that handles a subject id or a token — tokenize (new and existing subjects,
idempotent retries), detokenize (hits, misses, refusals, consent), lookup, legal holds,
shreds of subjects and fields, consent, and failing calls — runs through a real server
with the root logger at DEBUG and SQL statement logging on. Then each
subject id and token that crossed the wire is searched for in the log: raw, hex and
base64 at every alignment. The admin path that used to name subjects in a warning (a
failed rewrap) is checked the same way.
"""

from __future__ import annotations

import base64
import logging
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pdv_client import Record
from sqlalchemy import text
from pdv_client.errors import AlreadyExists, InvalidArgument, NotFound, PdvError, Unauthenticated

from tests.support.observe import scrape
from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.bootstrap import rotation_service
from vault.config import load_settings
from vault.crypto.tokens import random_token
from vault.keys.openbao import OpenBaoServer, create_admin_token, create_service_token, provision_transit

PURPOSE = "benefits_eligibility"
OPTED_OUT = "research_deidentified"


def encodings(text: str) -> set[str]:
    """`text` as a log line could carry it: raw, hex, and base64 / base64url at every alignment."""
    raw = text.encode()
    out = {text, raw.hex(), raw.hex().upper()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(bytes(shift) + raw).decode()
            out.add(encoded[(8 * shift + 5) // 6: -4])  # without the characters the neighbours decide
    return {o for o in out if len(o) >= 8}


def test_the_encodings_are_found_where_they_are_written() -> None:
    token = random_token()
    for written in (token, token.encode().hex(), base64.b64encode(b"x" + token.encode()).decode()):
        assert any(e in f"log line {written} end" for e in encodings(token))
    assert not any(e in "log line with nothing" for e in encodings(token))


@pytest.fixture
def admin_stack(openbao: OpenBaoServer, vault_token: str, database_url: str):  # type: ignore[no-untyped-def]
    # SQL logging is off by default (SQLAlchemy's own loggers start at WARNING); an operator
    # who turns statement logging on must still not get the bound parameters.
    sql_log = logging.getLogger("sqlalchemy.engine")
    level = sql_log.level
    sql_log.setLevel(logging.INFO)
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL], metrics_address="127.0.0.1:0")
    try:
        yield s
    finally:
        s.stop()
        sql_log.setLevel(level)


ISSUED_AREAS = [area for area in range(100, 700) if area != 666]  # 666 is never issued: the validator refuses it


def _person(n: int) -> dict[str, str]:
    tag = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
    return {"full_name": f"Log Hygiene {tag.title()}", "email": f"lh{tag}{n}@example.org",
            "phone": f"212555{secrets.randbelow(10_000):04d}", "ssn": f"{secrets.choice(ISSUED_AREAS):03d}"
            f"{secrets.randbelow(99) + 1:02d}{secrets.randbelow(9999) + 1:04d}"}


def _exercise(stack: Stack) -> set[str]:
    """Drive every path; return every subject id and token that went over the wire."""
    client = stack.client()
    seen: set[str] = set()

    def keep(*values: str) -> None:
        seen.update(v for v in values if v)

    people = [Record(_person(n)) for n in range(6)]
    records = client.tokenize(people, purpose=PURPOSE, source="311", request_id="lh-1")
    again = client.tokenize(people, purpose=PURPOSE, source="311", request_id="lh-1")  # a retry: the same answer
    for r in (*records, *again):
        keep(r.subject_id, *r.tokens.values())
    a, b, c, d, e, f = records
    # An existing subject gets another field.
    (more,) = client.tokenize([Record({"drivers_license": "D1234567"}, subject_id=a.subject_id)],
                              purpose="identity_verification", source="dmv")
    keep(more.subject_id, *more.tokens.values())

    # Detokenize: hits, never-issued tokens, a refused purpose, per-item results.
    refs = [(t, field) for r in records for field, t in r.tokens.items()]
    client.detokenize(refs, purpose=PURPOSE)
    unknown = [random_token() for _ in range(3)]
    keep(*unknown)
    client.detokenize(unknown, purpose=PURPOSE)
    client.detokenize([a.tokens["email"]], purpose="court_proceedings")

    # Lookup: hits and a miss.
    for match in client.lookup("email", "lh-miss@example.org", purpose=PURPOSE):
        keep(match.subject_id, match.token)
    for r in records[:3]:
        for match in client.lookup("email", _email_of(client, r), purpose=PURPOSE):
            keep(match.subject_id, match.token)

    # Consent, enforced on the next read.
    client.set_consent(c.subject_id, OPTED_OUT, opted_out=True)
    client.get_consent(c.subject_id)
    client.detokenize([c.tokens["email"]], purpose=OPTED_OUT)

    # Holds and shreds: blocked, released, done, repeated; some fields only; an unknown subject.
    client.place_hold(b.subject_id, case_id="CV-LH-1", reason="litigation")
    # AdminService (the stack's principal is in admin_principals): holds listed, a dry disposal
    # naming the held subject, a DEK rotation, key status, rewrap and audit verify, refused and
    # malformed calls; none may name a subject or token in the server log either.
    client.admin.list_holds(b.subject_id)
    client.admin.list_holds()
    client.admin.dispose(dry_run=True, now=datetime.now(timezone.utc) + timedelta(days=4000))
    client.admin.rotate_dek(a.subject_id)
    client.admin.key_status()
    client.admin.rewrap()
    client.admin.verify_audit_log()
    with pytest.raises(PdvError):
        client.admin.rotate_dek("sub_" + secrets.token_urlsafe(16))
    with pytest.raises(PdvError):
        client.admin.trim_kek()
    client.shred_subjects([b.subject_id], reason="resident request")
    client.release_hold(b.subject_id, case_id="CV-LH-1")
    outcomes = client.shred_subjects([b.subject_id, d.subject_id], reason="resident request")
    client.shred_subjects([b.subject_id], reason="resident request")
    client.shred_fields(e.subject_id, ["email", "phone"], reason="resident request")
    stranger = "sub_" + secrets.token_urlsafe(16)
    keep(stranger)
    client.shred_subjects([stranger], reason="resident request")
    for o in outcomes:
        keep(o.subject_id)
        client.verify_receipt(o.receipt, o.signature)
    client.detokenize([b.tokens["email"], e.tokens["email"]], purpose=PURPOSE)  # shredded: not found

    # Failing calls.
    with pytest.raises(Unauthenticated):
        stack.client(api_key="pdvk_" + secrets.token_urlsafe(24)).detokenize([f.tokens["email"]], purpose=PURPOSE)
    with pytest.raises(AlreadyExists):
        client.tokenize([Record(_person(9))], purpose=PURPOSE, source="311", request_id="lh-1")
    with pytest.raises(NotFound):
        client.tokenize([Record({"email": "x@example.org"}, subject_id=stranger)], purpose=PURPOSE, source="311")
    with pytest.raises(PdvError):
        client.tokenize([Record({"email": "y@example.org"}, subject_id=b.subject_id)], purpose=PURPOSE, source="311")
    with pytest.raises(InvalidArgument):
        client.detokenize([f.tokens["email"]], purpose="")
    with pytest.raises(PdvError):
        client.place_hold("sub_" + secrets.token_urlsafe(16), case_id="", reason="")
    with pytest.raises(PdvError):
        client.shred_fields(f.subject_id, ["shoe_size"], reason="resident request")
    return seen


def _email_of(client, record) -> str:  # type: ignore[no-untyped-def]
    (result,) = client.detokenize([record.tokens["email"]], purpose=PURPOSE)
    return result.value


def test_no_subject_id_or_token_reaches_the_operational_log(admin_stack: Stack) -> None:
    seen = _exercise(admin_stack)
    assert len(seen) >= 30 and any(s.startswith("sub_") for s in seen)
    log = admin_stack.log.getvalue()
    for expected in ("pdv.shred shred:", "pdv.api Tokenize -> ALREADY_EXISTS", "sqlalchemy.engine", "urllib3"):
        assert expected in log, f"the log has no {expected!r} line: the search would prove less than it claims"
    json_log = admin_stack.json_log.getvalue()
    assert '"logger": "pdv.rpc"' in json_log and '"principal": "intake-311"' in json_log
    scraped, _ = scrape(admin_stack)
    assert "pdv_rpc_calls_total" in scraped
    for name, text in (("server log", log), ("JSON log", json_log), ("metrics scrape", scraped)):
        hits = sorted({f"{value[:12]}… as {form[:16]}…" for value in seen for form in encodings(value) if form in text})
        assert hits == [], f"{len(hits)} subject ids / tokens in the {name}, e.g. {hits[:5]}"


def test_a_failed_rewrap_names_no_subject_in_the_log(openbao: OpenBaoServer, tmp_path: Path) -> None:
    root = openbao.client()
    kek = f"pdv-kek-{uuid.uuid4().hex[:8]}"
    provision_transit(root, "transit", kek)
    url = f"sqlite:///{tmp_path / 'pdv.db'}"
    stack = start_stack(openbao, url, create_service_token(root, "transit", kek), kek_name=kek, dek_spare_keys=0)
    try:
        records = stack.client().tokenize([Record({"email": f"rw{n}@example.org"}) for n in range(3)],
                                          purpose=PURPOSE, source="311")
        victim = records[0].subject_id
        with stack.app.store.engine.begin() as conn:  # a wrapped key Vault will refuse to rewrap
            conn.execute(text("UPDATE data_keys SET wrapped = :w WHERE subject_id = :s"),
                         {"w": "vault:v1:" + base64.b64encode(secrets.token_bytes(60)).decode(), "s": victim})
        admin = load_settings(database_url=url, vault_addr=openbao.addr, kek_name=kek,
                              vault_admin_token=create_admin_token(root, "transit", kek))
        with rotation_service(admin) as service:
            service.rotate()
            report = service.rewrap()
        assert report.failed >= 1 and report.remaining == 1
        log = stack.log.getvalue()
        assert "could not rewrap 1 data key(s) wrapped under KEK version(s) v1" in log
        assert [form for form in encodings(victim) if form in log] == []
    finally:
        stack.stop()
