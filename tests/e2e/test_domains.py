"""Token domains, translation and the issuance ledger (issue #14 items 1 and 2), on a real
OpenBao and gRPC server through the generated client, on both databases.

acme and globex are partners in domains of their own; initech and umbrella are partners the
policy joins in one domain (`vendors`); intake-311 and case-hub are city-internal (the
default domain, `city`); case-hub may translate, email-hub only email for service_delivery.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pdv_client import InvalidArgument, Record
from sqlalchemy import select, text

from tests.conftest import DATABASES
from tests.e2e.test_canaries import Book, _access_log, _database_contents
from tests.support.access_log import logged_items
from tests.test_cli import pdv
from tests.support.stack import PRINCIPAL, Stack, stack_with_policy, start_stack
from vault.crypto import tokens as tk
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t

POLICY_FILE = Path(__file__).with_name("domains_policy.yaml")
PRINCIPALS = ("case-hub", "email-hub", "privacy-officer", "acme", "globex", "initech", "umbrella", "courier")
PURPOSE = "benefits_eligibility"
OK, NOT_FOUND, PERMISSION_DENIED = 0, 5, 7
_people = itertools.count(1)
_requests = itertools.count(1)


@pytest.fixture(scope="module", params=DATABASES)
def domains(
    request: pytest.FixtureRequest, openbao: OpenBaoServer, vault_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("domains")
    with stack_with_policy(openbao, vault_token, request.param, tmp, POLICY_FILE, PRINCIPALS) as s:
        yield s


def person() -> dict[str, str]:
    n = next(_people)
    return {"email": f"Resident{n}@Example.org", "phone": f"(312) 555-{n:04d}", "ssn": f"219-09-{n:04d}"}


def collect(stack: Stack, keys: dict[str, str], principal: str, fields: dict[str, str]) -> tuple[str, dict[str, str]]:
    (rec,) = stack.client(keys[principal]).tokenize([Record(fields)], purpose=PURPOSE, source="intake")
    return rec.subject_id, dict(rec.tokens)


def refs(tokens: dict[str, str]) -> list[tuple[str, str]]:
    return [(tokens[f], f) for f in sorted(tokens)]


def unknown_answer(stack: Stack, key: str) -> list[tuple[int, str]]:
    """What a reader gets for tokens nobody issued, of each kind."""
    results = stack.client(key).detokenize(
        [(tk.random_token(), "email"), (tk.random_token(), "phone"), ("000000001", "ssn")], purpose=PURPOSE)
    return [(r.code, r.message) for r in results]


def test_two_partners_get_unrelated_tokens_and_cannot_find_each_others_subject(domains) -> None:  # type: ignore[no-untyped-def]
    stack, keys = domains
    fields = person()
    acme_subject, acme_tokens = collect(stack, keys, "acme", fields)
    globex_subject, globex_tokens = collect(stack, keys, "globex", fields)
    city_subject, city_tokens = collect(stack, keys, PRINCIPAL, fields)
    # The same email is deterministic within a domain, and unrelated across domains.
    _, acme_again = collect(stack, keys, "acme", {"email": fields["email"]})
    assert acme_again["email"] == acme_tokens["email"]
    for f in fields:
        assert len({acme_tokens[f], globex_tokens[f], city_tokens[f]}) == 3, f

    for principal, own in (("acme", acme_subject), ("globex", globex_subject), (PRINCIPAL, city_subject)):
        client = stack.client(keys[principal])
        for f in ("email", "phone", "ssn"):
            found = {m.subject_id for m in client.lookup(f, fields[f], purpose=PURPOSE)}
            assert own in found, (principal, f)
            assert not found & ({acme_subject, globex_subject, city_subject} - {own}), (principal, f)


def test_a_token_of_another_domain_answers_exactly_like_an_unknown_one(domains) -> None:  # type: ignore[no-untyped-def]
    stack, keys = domains
    fields = person()
    _, acme_tokens = collect(stack, keys, "acme", fields)
    for reader in ("globex", PRINCIPAL, "initech"):
        results = stack.client(keys[reader]).detokenize(refs(acme_tokens), purpose=PURPOSE)
        unknown = unknown_answer(stack, keys[reader])
        assert unknown == [(NOT_FOUND, "token not found")] * 3
        assert [(r.code, r.message) for r in results] == unknown, reader
    own = stack.client(keys["acme"]).detokenize(refs(acme_tokens), purpose=PURPOSE)
    assert [r.code for r in own] == [OK] * 3

    # Partners the policy joins in one domain read each other's tokens and find each other's subjects.
    vendor_subject, vendor_tokens = collect(stack, keys, "initech", fields)
    shared = stack.client(keys["umbrella"]).detokenize(refs(vendor_tokens), purpose=PURPOSE)
    assert [r.code for r in shared] == [OK] * 3
    assert {m.subject_id for m in stack.client(keys["umbrella"]).lookup("email", fields["email"], purpose=PURPOSE)} \
        == {vendor_subject}


def test_translation_needs_the_grant_and_is_logged_with_both_domains(domains) -> None:  # type: ignore[no-untyped-def]
    stack, keys = domains
    fields = person()
    subject, acme_tokens = collect(stack, keys, "acme", fields)
    hub = stack.client(keys["case-hub"])
    request_id = f"translate-{next(_requests)}"
    translated = hub.translate(refs(acme_tokens), from_domain="partner:acme", purpose=PURPOSE, request_id=request_id)
    assert [r.code for r in translated] == [OK] * 3
    city_tokens = {r.field: r.translated_token for r in translated}
    assert set(city_tokens) == set(fields) and not set(city_tokens.values()) & set(acme_tokens.values())
    # The translated tokens are the city's own: the hub reads them and finds the subject through them.
    read = hub.detokenize([(city_tokens[f], f) for f in sorted(fields)], purpose=PURPOSE)
    catalog = stack.app.catalog
    assert [r.value for r in read] == [catalog.field(f).normalize(fields[f]) for f in sorted(fields)]
    assert {m.subject_id for m in hub.lookup("email", fields["email"], purpose=PURPOSE)} == {subject}
    # A deterministic field translates to the city's own token of the value.
    _, city_collected = collect(stack, keys, PRINCIPAL, {"email": fields["email"]})
    assert city_collected["email"] == city_tokens["email"]

    with stack.app.store.engine.connect() as conn:
        values_before = conn.execute(text("SELECT COUNT(*) FROM field_values WHERE subject_id = :s"), {"s": subject}).scalar()
        recorded = conn.execute(text(
            "SELECT subject_id, field, from_domain, to_domain, outcome FROM token_translations "
            "WHERE principal = 'case-hub' AND request_id = :r ORDER BY id"), {"r": f"{request_id}/0"}).all()
    log = [(i["action"], i["subject_id"], i["field"], i["token"], i["outcome"])
           for i in logged_items(stack.app.store, request_id=f"{request_id}/0")]
    assert sorted(tuple(r) for r in recorded) == [(subject, f, "partner:acme", "city", "ok") for f in sorted(fields)]
    assert sorted(tuple(r) for r in log) == sorted(("translate", subject, f, acme_tokens[f], "ok") for f in fields)

    # Translating again hands back the same tokens and stores nothing new.
    again = hub.translate(refs(acme_tokens), from_domain="partner:acme", purpose=PURPOSE)
    assert {r.field: r.translated_token for r in again} == city_tokens
    with stack.app.store.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM field_values WHERE subject_id = :s"), {"s": subject}).scalar() \
            == values_before

    # Without the grant: refused whatever the token; a grant on another field: like an unknown token.
    denied = stack.client(keys[PRINCIPAL]).translate(refs(acme_tokens), from_domain="partner:acme", purpose=PURPOSE)
    assert [r.code for r in denied] == [PERMISSION_DENIED] * 3
    narrow = stack.client(keys["email-hub"]).translate(refs(acme_tokens), from_domain="partner:acme", purpose=PURPOSE)
    assert [r.code for r in narrow] == [PERMISSION_DENIED] * 3  # email-hub translates only for service_delivery
    # The wrong source domain, a token nobody issued: the same miss.
    misses = hub.translate(refs(acme_tokens) + [(tk.random_token(), "phone")], from_domain="partner:globex",
                           purpose=PURPOSE)
    assert {(r.code, r.message) for r in misses} == {(NOT_FOUND, "token not found")}
    with pytest.raises(InvalidArgument, match="from_domain: not a token domain"):
        hub.translate(refs(acme_tokens), from_domain="partner:nobody", purpose=PURPOSE)
    with pytest.raises(InvalidArgument, match="from_domain: is the caller's own domain"):
        hub.translate(refs(acme_tokens), from_domain="city", purpose=PURPOSE)
    outcomes = {i["outcome"] for p in ("intake-311", "case-hub")
                for i in logged_items(stack.app.store, action="translate", principal=p)}
    assert {"denied", "not_found", "invalid"} <= outcomes  # every refusal is in the access log


def test_a_partner_reads_a_city_value_only_through_a_translate_grant_of_its_own(domains) -> None:  # type: ignore[no-untyped-def]
    """The other direction: a value collected in the city's domain reaches a partner only as a
    token of the partner's own domain, which the partner gets by translating the city's token
    under a grant its agreement provides for (courier: email, for benefits_eligibility)."""
    stack, keys = domains
    fields = person()
    city_subject, city_tokens = collect(stack, keys, PRINCIPAL, fields)
    acme = stack.client(keys["acme"])
    assert [r.code for r in acme.detokenize(refs(city_tokens), purpose=PURPOSE)] == [NOT_FOUND] * 3
    assert acme.lookup("email", fields["email"], purpose=PURPOSE) == []
    # acme has no translate grant: it cannot pull the city's tokens into its domain itself.
    assert [r.code for r in acme.translate(refs(city_tokens), from_domain="city", purpose=PURPOSE)] == [PERMISSION_DENIED] * 3

    courier = stack.client(keys["courier"])
    assert [r.code for r in courier.detokenize([(city_tokens["email"], "email")], purpose=PURPOSE)] == [NOT_FOUND]
    (email,) = courier.translate([(city_tokens["email"], "email")], from_domain="city", purpose=PURPOSE)
    assert email.ok and email.translated_token != city_tokens["email"]
    (read,) = courier.detokenize([(email.translated_token, "email")], purpose=PURPOSE)
    assert read.value == stack.app.catalog.field("email").normalize(fields["email"])
    # Beyond the grant: a field it may not translate is refused (named) or unknown (not named).
    (phone,) = courier.translate([(city_tokens["phone"], "phone")], from_domain="city", purpose=PURPOSE)
    (unnamed,) = courier.translate([city_tokens["phone"]], from_domain="city", purpose=PURPOSE)
    assert (phone.code, unnamed.code, unnamed.message) == (PERMISSION_DENIED, NOT_FOUND, "token not found")
    assert ("courier", "partner:courier") in {(h.principal, h.domain) for h in stack.app.ledger.holders(city_subject)}


def test_the_ledger_names_every_holder_and_a_shred_takes_it(domains) -> None:  # type: ignore[no-untyped-def]
    stack, keys = domains
    fields = person()
    subject, acme_tokens = collect(stack, keys, "acme", fields)
    ledger = stack.app.ledger
    assert [(h.principal, h.domain) for h in ledger.holders(subject)] == [("acme", "partner:acme")]
    # Reading a token one already holds hands out no token: no new holder.
    stack.client(keys["acme"]).detokenize(refs(acme_tokens), purpose=PURPOSE)
    stack.client(keys["globex"]).lookup("email", fields["email"], purpose=PURPOSE)  # finds nothing: no holder
    stack.client(keys["case-hub"]).translate(refs(acme_tokens), from_domain="partner:acme", purpose=PURPOSE)
    stack.client(keys[PRINCIPAL]).lookup("phone", fields["phone"], purpose=PURPOSE)  # through the hub's city row
    # Appending to a subject it names (a subject id is no secret) hands the caller tokens of it too.
    stack.client(keys["umbrella"]).tokenize([Record({"phone": fields["phone"]}, subject_id=subject)], purpose=PURPOSE,
                                            source="umbrella")
    holders = ledger.holders(subject)
    assert sorted((h.principal, h.domain) for h in holders) == [
        ("acme", "partner:acme"), ("case-hub", "city"), ("intake-311", "city"), ("umbrella", "vendors")]
    assert all(h.first_issued_at <= h.last_issued_at for h in holders)
    first = {h.principal: h.first_issued_at for h in holders}
    stack.client(keys["acme"]).lookup("email", fields["email"], purpose=PURPOSE)  # again: still one row, same first
    again = ledger.holders(subject)
    assert len(again) == 4 and {h.principal: h.first_issued_at for h in again} == first

    (outcome,) = stack.client(keys["privacy-officer"]).shred_subjects([subject], reason="resident request")
    assert outcome.status == "shredded"
    assert ledger.holders(subject) == []


def test_canaries_translated_and_looked_up_appear_only_in_detokenize_values(domains) -> None:  # type: ignore[no-untyped-def]
    """Values tokenized by a partner, translated into the city's domain, read and looked up there:
    searched for (raw, hex, base64, any case) in the server log, every answer's repr, the
    access log, the issuance ledger, the translation records and the whole database."""
    stack, keys = domains
    book = Book()
    people = [{"email": book.email(), "phone": book.phone(), "ssn": book.ssn()} for _ in range(20)]
    acme, hub = stack.client(keys["acme"]), stack.client(keys["case-hub"])
    records = acme.tokenize([Record({f: c.sent for f, c in p.items()}) for p in people], purpose=PURPOSE, source="acme")
    sent = [(rec.tokens[f], f) for rec in records for f in sorted(rec.tokens)]
    translated = hub.translate(sent, from_domain="partner:acme", purpose=PURPOSE)
    assert [r.code for r in translated] == [OK] * len(sent)
    misses = hub.translate([(tk.random_token(), "email")], from_domain="partner:globex", purpose=PURPOSE)
    read = hub.detokenize([(r.translated_token, r.field) for r in translated], purpose=PURPOSE)
    assert [r.value for r in read] == [p[f].stored for p in people for f in sorted(p)]
    found = hub.lookup_many([(f, c.sent) for p in people for f, c in p.items()], purpose=PURPOSE)
    assert all(len(m) == 1 for m in found)
    book.look_in("translate results", f"{translated!r}\n{misses!r}\n{found!r}\n{records!r}")
    with stack.app.store.engine.connect() as conn:
        for table in (t.token_holders, t.token_translations):
            rows = conn.execute(select(table)).all()
            assert rows
            book.look_in(table.name, "\n".join(repr(tuple(r)) for r in rows))
    book.look_in("server log", stack.log.getvalue())
    _access_log(stack, book)
    _database_contents(stack, book)
    hits = book.hits()
    assert hits == [], f"{len(hits)} canary hits, e.g.:\n" + "\n".join(hits[:20])


def test_default_domain_tokens_keep_working_across_the_upgrade(
    openbao: OpenBaoServer, vault_token: str, database_url: str
) -> None:
    """Data stored before token domains: tokens made, the database taken back to the schema
    before 0011 (revision 0010: no domain column, no ledger), then upgraded and served again. Every token
    still reads, lookups still find the subject, and the same email tokenizes to the same
    deterministic token: nothing was re-issued. (That the default domain's keys are the
    pre-domain ones is the known-answer test in tests/unit/test_tokens.py.)"""
    from vault.storage import migrate
    from vault.storage.engine import create_store_engine

    fields = person()
    first = start_stack(openbao, database_url, vault_token)
    try:
        (rec,) = first.client().tokenize([Record(fields)], purpose=PURPOSE, source="intake")
    finally:
        first.stop()
    engine = create_store_engine(database_url)
    try:
        migrate.downgrade(engine, "0010")  # the schema just before token domains
        with engine.connect() as conn:
            columns = set(conn.execute(text("SELECT * FROM field_values")).keys())
        assert "domain" not in columns
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    second = start_stack(openbao, database_url, vault_token, migrate_first=False)
    try:
        client = second.client()
        read = client.detokenize(refs(dict(rec.tokens)), purpose=PURPOSE)
        assert [r.value for r in read] == [second.app.catalog.field(f).normalize(fields[f]) for f in sorted(fields)]
        for f in fields:
            assert [(m.subject_id, m.token) for m in client.lookup(f, fields[f], purpose=PURPOSE)] == [
                (rec.subject_id, rec.tokens[f])]
        (again,) = client.tokenize([Record({"email": fields["email"]})], purpose=PURPOSE, source="intake")
        assert again.tokens["email"] == rec.tokens["email"]
    finally:
        second.stop()


def test_pdv_translate_converts_a_partners_tokens_on_the_command_line(domains, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`pdv translate` against the running server, as the hub's operator runs it."""
    stack, keys = domains
    fields = person()
    subject, acme_tokens = collect(stack, keys, "acme", fields)
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": keys["case-hub"]}
    out = pdv("translate", "--purpose", PURPOSE, "--from-domain", "partner:acme", "--request-id", "cli-translate-1",
              acme_tokens["email"], acme_tokens["phone"], cwd=tmp_path, env=env)
    got = json.loads(out.stdout)
    assert [(g["token"], g["code"], g["field"]) for g in got] == [
        (acme_tokens["email"], "OK", "email"), (acme_tokens["phone"], "OK", "phone")]
    # The translated tokens are the hub's own: it reads the values through them.
    read = stack.client(keys["case-hub"]).detokenize([(g["translated_token"], g["field"]) for g in got], purpose=PURPOSE)
    acme_reads = stack.client(keys["acme"]).detokenize([(acme_tokens[f], f) for f in ("email", "phone")], purpose=PURPOSE)
    assert [r.value for r in read] == [r.value for r in acme_reads] and read[0].value == fields["email"].lower()
    logged = logged_items(stack.app.store, action="translate", principal="case-hub",
                          request_id="cli-translate-1/0")  # the client numbers its batches
    assert sorted((i["token"], i["outcome"]) for i in logged) == sorted(
        [(acme_tokens["email"], "ok"), (acme_tokens["phone"], "ok")])
    # A format-preserving token needs its field; a token acme never issued is NOT_FOUND (exit 3).
    ssn = json.loads(pdv("translate", "--purpose", PURPOSE, "--from-domain", "partner:acme", "--field", "ssn",
                         acme_tokens["ssn"], cwd=tmp_path, env=env).stdout)
    assert ssn[0]["code"] == "OK" and ssn[0]["translated_token"] != acme_tokens["ssn"]
    miss = pdv("translate", "--purpose", PURPOSE, "--from-domain", "partner:acme", tk.random_token(),
               cwd=tmp_path, env=env, check=False)
    assert miss.returncode == 3 and json.loads(miss.stdout)[0]["code"] == "NOT_FOUND"
    # A domain nobody is in fails the call: exit 1, the status on stderr, nothing on stdout.
    bad = pdv("translate", "--purpose", PURPOSE, "--from-domain", "partner:nobody", acme_tokens["email"],
              cwd=tmp_path, env=env, check=False)
    assert bad.returncode == 1 and bad.stdout == "" and "InvalidArgument" in bad.stderr
    # Without the translate grant, each item is refused.
    denied = pdv("translate", "--purpose", PURPOSE, "--from-domain", "partner:acme", acme_tokens["email"],
                 cwd=tmp_path, env={**env, "PDV_API_KEY": keys[PRINCIPAL]}, check=False)
    assert denied.returncode == 3 and json.loads(denied.stdout)[0]["code"] == "PERMISSION_DENIED"
    assert subject  # acme's subject, never printed by translate
    assert subject not in out.stdout
