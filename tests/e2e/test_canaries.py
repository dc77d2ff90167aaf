"""Canary values planted through every path must surface only where they belong.

Each run plants a few hundred fresh, distinctive values (letters where the field allows
them, random digit strings where it does not) through valid and invalid tokenize calls
(atomic and partial), detokenize, lookups that hit and miss, and failing calls. Then it
searches for each value — raw, hex and base64, in every case — in the server log, every
client exception and result repr, the database's bytes (SQLite file, WAL and shared
memory) or every table's text (PostgreSQL), and the access log. The one place a value
may appear is the value field of a detokenize result.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from pdv_client import Record
from pdv_client.errors import AlreadyExists, InvalidArgument, PdvError, Unauthenticated
from sqlalchemy import select
from sqlalchemy.engine import make_url

from tests.support.observe import http_get, scrape, value
from tests.support.stack import PRINCIPAL, Stack, start_stack
from vault.keys.openbao import OpenBaoServer
from vault.storage import tables as t
from vault.storage.audit_log import AuditRepository

PURPOSE = "benefits_eligibility"


def _letters(n: int = 12) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def _digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


@dataclass(frozen=True)
class Canary:
    sent: str  # exactly as the client sent it
    stored: str  # the normalized form the vault keeps

    def texts(self) -> set[str]:
        forms = {self.sent, self.stored}
        return {v for f in forms for v in (f, f.lower(), f.upper())}


def _encodings(text: str) -> set[bytes]:
    """The canary as it could appear in a log or a dump: raw, hex, and base64 at every alignment."""
    raw = text.encode()
    out = {raw, raw.hex().encode(), raw.hex().upper().encode()}
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(bytes(shift) + raw)
            # Drop the characters that depend on the neighbouring bytes.
            out.add(encoded[(8 * shift + 5) // 6: -4])
    return {o for o in out if len(o) >= 6}


@dataclass
class Book:
    """Every canary planted, and every place searched."""

    canaries: list[Canary] = field(default_factory=list)
    haystacks: list[tuple[str, bytes]] = field(default_factory=list)

    def name(self) -> Canary:
        return self._add(Canary(f"Cnry{_letters()}", ""), stored_as=lambda s: s)

    def email(self) -> Canary:
        local = f"cnry{_letters()}"
        return self._add(Canary(f"{local.upper()}@Example.org", f"{local}@example.org"))

    def phone(self) -> Canary:
        digits = secrets.choice("23456789") + _digits(9)
        return self._add(Canary(f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", digits))

    def ssn(self) -> Canary:
        area = f"{secrets.choice([n for n in range(1, 900) if n != 666]):03d}"
        digits = area + f"{secrets.randbelow(99) + 1:02d}" + f"{secrets.randbelow(9999) + 1:04d}"
        return self._add(Canary(f"{digits[:3]}-{digits[3:5]}-{digits[5:]}", digits))

    def address(self) -> Canary:
        street = f"Cnry{_letters()}"
        return self._add(Canary(f"12 {street} Street", f"12 {street.upper()} STREET"))

    def text(self, sent: str) -> Canary:
        """Any other planted text; searched for as sent."""
        return self._add(Canary(sent, sent))

    def letters(self) -> Canary:
        return self.text(f"cnry{_letters()}")

    def digits(self, n: int) -> Canary:
        return self.text(secrets.choice("123456789") + _digits(n - 1))

    def _add(self, canary: Canary, stored_as: Callable[[str], str] | None = None) -> Canary:
        if stored_as is not None:
            canary = Canary(canary.sent, stored_as(canary.sent))
        self.canaries.append(canary)
        return canary

    # --- where to look ---------------------------------------------------------------
    def look_in(self, label: str, content: str | bytes) -> None:
        self.haystacks.append((label, content.encode() if isinstance(content, str) else content))

    def look_in_error(self, label: str, error: BaseException) -> None:
        self.look_in(label, f"{error}\n{error!r}\n{getattr(error, 'message', '')}")
        if error.__cause__ is not None:  # the grpc.RpcError: details and debug string
            self.look_in(label + " (cause)", f"{error.__cause__}\n{error.__cause__!r}")

    def expect(self, label: str, error: type[PdvError], call: Callable[[], object]) -> PdvError:
        with pytest.raises(error) as info:
            call()
        self.look_in_error(label, info.value)
        return info.value

    def hits(self) -> list[str]:
        found = []
        for canary in self.canaries:
            needles = {e for text in canary.texts() for e in _encodings(text)}
            for label, hay in self.haystacks:
                low = hay.lower()
                found += [f"{canary.sent!r} in {label} as {n[:24]!r}" for n in needles if n in hay or n.lower() in low]
        return found


# --- the planting ------------------------------------------------------------------------

def _person(book: Book) -> dict[str, Canary]:
    return {"full_name": book.name(), "email": book.email(), "phone": book.phone(), "ssn": book.ssn(),
            "street_address": book.address()}


def _record(values: dict[str, Canary], subject_id: str | None = None) -> Record:
    return Record({f: c.sent for f, c in values.items()}, subject_id=subject_id)


def _invalid_records(book: Book) -> list[Record]:
    """One record per way a value can be refused, each value carrying a canary."""
    return [
        Record({"email": f"{book.letters().sent}-at-example.org"}),
        Record({"email": book.text(f"cnry{_letters()}@@example.org").sent}),
        Record({"phone": book.letters().sent}),
        Record({"phone": book.digits(14).sent}),  # too many digits
        Record({"ssn": book.text("9" + _digits(8)).sent}),  # area 9xx is never issued
        Record({"ssn": book.letters().sent}),
        Record({"full_name": book.text(f"Cnry{_letters()} 4{_digits(6)}").sent}),
        Record({"date_of_birth": book.letters().sent}),
        Record({"drivers_license": book.text(f"CNRY{_letters(10).upper()}").sent}),  # not for this purpose
        Record({"shoe_size": book.letters().sent}),  # unknown field
        Record({"full_name": book.text("Cnry" + _letters(12) * 400).sent}),  # over the size limit
        Record({"email": book.email().sent}, subject_id="sub_" + book.letters().sent),  # malformed subject id
    ]


def _plant(stack: Stack, book: Book) -> list[tuple[str, str, Canary]]:
    """Drive every path; return (token, field, canary) for each stored value."""
    client = stack.client()
    stored: list[tuple[str, str, Canary]] = []

    def tokenize(people: list[dict[str, Canary]], **kwargs: object) -> list:
        results = client.tokenize([_record(p) for p in people], purpose=PURPOSE, source="311", **kwargs)
        book.look_in("tokenize results", f"{results!r}\n{[str(r) for r in results]}")
        for person, result in zip(people, results):
            if result.ok:
                stored.extend((result.tokens[f], f, c) for f, c in person.items())
        return results

    # Valid tokenize, in one batch and in small ones.
    tokenize([_person(book) for _ in range(200)])
    for _ in range(3):
        tokenize([_person(book)], request_id=f"single-{_letters(6)}")

    # Invalid tokenize, atomic: each bad record alongside a good one; nothing may be stored.
    for bad in _invalid_records(book):
        book.expect("atomic tokenize error", InvalidArgument,
                    lambda: client.tokenize([_record(_person(book)), bad], purpose=PURPOSE, source="311"))
    book.expect("atomic tokenize error (many)", InvalidArgument,
                lambda: client.tokenize(_invalid_records(book), purpose=PURPOSE, source="311"))

    # Invalid tokenize, partial: the good records are stored, the bad ones come back as item errors.
    bad = _invalid_records(book)
    people = [_person(book) for _ in range(len(bad))]
    results = client.tokenize([r for pair in zip((_record(p) for p in people), bad) for r in pair],
                              purpose=PURPOSE, source="311", mode="partial")
    book.look_in("partial results", f"{results!r}\n" + "\n".join(f"{e!r} {e.message}" for r in results for e in r.errors))
    assert [r.ok for r in results] == [True, False] * len(bad)
    for person, result in zip(people, results[::2]):
        stored.extend((result.tokens[f], f, c) for f, c in person.items())

    # Failing calls: unknown API key, a request id reused for other content, a purpose not allowed.
    outsider = stack.client(api_key="pdvk_" + secrets.token_urlsafe(24))
    book.expect("unauthenticated", Unauthenticated,
                lambda: outsider.tokenize([_record(_person(book))], purpose=PURPOSE, source="311"))
    client.tokenize([_record(_person(book))], purpose=PURPOSE, source="311", request_id="reused")
    book.expect("request id reused", AlreadyExists,
                lambda: client.tokenize([_record(_person(book))], purpose=PURPOSE, source="311", request_id="reused"))
    book.expect("purpose not allowed", InvalidArgument,
                lambda: client.tokenize([_record({"ssn": book.ssn(), "email": book.email()})], purpose="billing", source="311"))
    return stored


def _detokenize(stack: Stack, book: Book, stored: list[tuple[str, str, Canary]]) -> None:
    client = stack.client()
    results = client.detokenize([(token, f) for token, f, _ in stored], purpose=PURPOSE)
    # The one place values belong.
    assert [(r.code, r.field, r.value) for r in results] == [(0, f, c.stored) for _, f, c in stored]
    book.look_in("detokenize results repr", f"{results!r}\n{[str(r) for r in results]}")
    # Canaries where a token should be: refused as malformed, never looked up or logged.
    for ref in (f"pdv_{book.letters().sent}", (book.letters().sent, "ssn"), (book.letters().sent, "email"),
                book.email().sent, (book.digits(10).sent, "phone")):
        book.expect("detokenize of a non-token", InvalidArgument, lambda: client.detokenize([ref], purpose=PURPOSE))


def _lookup(stack: Stack, book: Book, stored: list[tuple[str, str, Canary]]) -> None:
    client = stack.client()
    searchable = [(token, f, c) for token, f, c in stored if f in ("email", "phone", "ssn")]
    hits = client.lookup_many([(f, c.sent) for _, f, c in searchable], purpose=PURPOSE)
    assert [[m.token for m in found] for found in hits] == [[token] for token, _, _ in searchable]
    misses = client.lookup_many([("email", book.email().sent), ("phone", book.phone().sent), ("ssn", book.ssn().sent)] * 5,
                                purpose=PURPOSE)
    assert misses == [[]] * 15
    book.look_in("lookup results", f"{hits!r}\n{misses!r}")
    for query in (("full_name", book.name().sent), ("email", book.letters().sent), ("phone", book.letters().sent),
                  ("shoe_size", book.letters().sent), ("ssn", book.text("666" + _digits(6)).sent)):
        book.expect("lookup error", InvalidArgument, lambda: client.lookup(*query, purpose=PURPOSE))


# --- the searching -----------------------------------------------------------------------

def _database_contents(stack: Stack, book: Book) -> None:
    url = make_url(stack.settings.database_url)
    if url.get_backend_name() == "sqlite":
        db = Path(url.database)
        files = [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]
        assert db in files
        for path in files:
            book.look_in(f"database file {path.name}", path.read_bytes())
        return
    with psycopg.connect(host=url.host, port=url.port, dbname=url.database) as conn:
        tables = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()
        assert {"field_values", "access_log", "tokenize_requests"} <= {name for (name,) in tables}
        for (name,) in tables:
            # Each cell as the server keeps it, bytea as its bytes (as in the SQLite file): as hex
            # text (`t::text`) random bytes now and then held a 9-digit canary by chance (a failed run).
            rows = conn.execute(f'SELECT * FROM "{name}"').fetchall()
            book.look_in(f"table {name}", b"\n".join(_cell(v) for row in rows for v in row))


def _cell(value: object) -> bytes:
    return bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()


def _access_log(stack: Stack, book: Book) -> None:
    """The log as stored, its items column decoded, and the per-subject index."""
    with stack.app.store.engine.connect() as conn:
        rows = conn.execute(select(t.access_log)).all()
        index = conn.execute(select(t.access_subjects)).all()
    assert rows and index
    assert any(r.items is not None for r in rows)  # batched calls: entries of several items are searched too
    book.look_in("access_log", "\n".join(repr(tuple(r)) for r in rows))
    book.look_in("access_log items, decoded", "\n".join(repr(e) for e in AuditRepository(stack.app.store).entries()))
    book.look_in("access_subjects", "\n".join(repr(tuple(r)) for r in index))


@pytest.fixture
def watched_stack(openbao: OpenBaoServer, vault_token: str, database_url: str) -> Iterator[Stack]:
    """A stack serving its metrics and readiness over HTTP, so the scrape is searched too."""
    s = start_stack(openbao, database_url, vault_token, metrics_address="127.0.0.1:0")
    try:
        yield s
    finally:
        s.stop()


def test_canaries_appear_only_in_detokenize_values(watched_stack: Stack) -> None:
    stack = watched_stack
    book = Book()
    stored = _plant(stack, book)
    _detokenize(stack, book, stored)
    _lookup(stack, book, stored)
    assert len(book.canaries) >= 1000 and len(stored) >= 1000

    book.look_in("server log", stack.log.getvalue())
    json_log = stack.json_log.getvalue()
    assert '"logger": "pdv.rpc"' in json_log, "the JSON log has no call records: the search would prove less"
    book.look_in("server log (JSON lines)", json_log)
    scraped, samples = scrape(stack)
    assert value(samples, "pdv_rpc_calls_total", method="TokenService/Tokenize", code="OK") >= 1
    book.look_in("metrics scrape", scraped)
    book.look_in("readiness", http_get(stack, "/ready")[1])
    _access_log(stack, book)
    _database_contents(stack, book)
    assert stack.log.getvalue(), "the server log captured nothing: the search would prove nothing"

    hits = book.hits()
    assert hits == [], f"{len(hits)} canary hits, e.g.:\n" + "\n".join(hits[:20])


@pytest.fixture
def admin_stack(openbao, vault_token: str, database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = start_stack(openbao, database_url, vault_token, admin_principals=[PRINCIPAL],
                    tombstone_ledger=tmp_path / "tombstones.jsonl", metrics_address="127.0.0.1:0")
    try:
        yield s
    finally:
        s.stop()


def test_canaries_stay_out_of_admin_calls(admin_stack: Stack) -> None:
    """AdminService re-encrypts (DEK rotation), rewraps, surveys for disposal, lists holds and
    verifies the log: none of its results, logs or stored rows may hold a value, and every
    value still reads back afterwards."""
    book = Book()
    client = admin_stack.client()
    people = [_person(book) for _ in range(40)]  # fewer than the test above: the searching is what costs
    results = client.tokenize([_record(p) for p in people], purpose=PURPOSE, source="311")
    stored = [(r.tokens[f], f, c) for p, r in zip(people, results) for f, c in p.items()]
    emails = [c for _, f, c in stored if f == "email"][:20]
    subjects = sorted({m.subject_id for c in emails for m in client.lookup("email", c.sent, purpose=PURPOSE)})
    assert len(subjects) == 20
    results: list[object] = [client.admin.rotate_dek(s) for s in subjects]
    client.place_hold(subjects[0], case_id="CV-CANARY", reason="litigation")
    results += [
        client.admin.rewrap(), client.admin.key_status(), client.admin.list_holds(),
        client.admin.dispose(dry_run=True, now=datetime.now(timezone.utc) + timedelta(days=4000)),
        client.admin.verify_audit_log(),
    ]
    book.look_in("admin results", "\n".join(repr(r) for r in results))
    admin_stack.app.keyring.clear()
    _detokenize(admin_stack, book, stored)  # every value reads back, under the new DEKs too

    book.look_in("server log", admin_stack.log.getvalue())
    book.look_in("server log (JSON lines)", admin_stack.json_log.getvalue())
    book.look_in("metrics scrape", scrape(admin_stack)[0])
    _access_log(admin_stack, book)
    _database_contents(admin_stack, book)
    assert "DEK rotated" in admin_stack.log.getvalue()
    hits = book.hits()
    assert hits == [], f"{len(hits)} canary hits, e.g.:\n" + "\n".join(hits[:20])


def test_the_search_finds_a_planted_canary() -> None:
    # The searcher itself: a value written raw, as hex or as base64 (at any offset) is found.
    book = Book()
    canary = book.email()
    for i, content in enumerate([
        f"log line {canary.stored} end", canary.stored.encode().hex(),
        base64.b64encode(b"xy" + canary.sent.encode() + b"z").decode(), b"\x00\x01" + canary.stored.upper().encode(),
    ]):
        book.look_in(f"sample {i}", content)
    assert {h.split(" in ")[1].split(" as ")[0] for h in book.hits()} == {f"sample {i}" for i in range(4)}
    assert Book(canaries=[canary], haystacks=[("clean", b"nothing to see")]).hits() == []
