"""One access-log entry per request (issue 12, item 1), on both databases: the entries a
transaction writes, the per-subject index, verify of the items column and of the index, and
verify_cited. The chain is signed by a stand-in signer, as in tests/unit/test_audit_chain.py:
what is under test is the log's storage, not Vault (the e2e audit tests run the real one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest
from sqlalchemy import text

from tests.unit.test_audit_chain import KEY, FakeSigner
from vault.services.audit import AuditChain, CheckpointFile
from vault.services.audit_cited import verify_cited
from vault.services.audit_verify import verify_log
from vault.storage import migrate
from vault.storage.access_items import MIXED
from vault.storage.audit_log import AuditRepository, Entry
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
ALICE, BOB, CAROL = "a" * 32, "b" * 32, "c" * 32


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    engine = create_store_engine(database_url)
    migrate.upgrade(engine)
    s = Store(engine)
    yield s
    s.close()


def _chain(store: Store, tmp_path: Path, every: int = 10_000) -> AuditChain:
    chain = AuditChain(KEY, AuditRepository(store), FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"), lambda: NOW,
                       every, 3600)
    chain.start()
    store.attach_chain(chain)
    return chain


def _verify(store: Store, tmp_path: Path):  # type: ignore[no-untyped-def]
    return verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))


def _row(request: str, subject: str | None, field: str | None, token: str | None, outcome: str = "ok",
         at: datetime = NOW, action: str = "detokenize") -> tuple:
    return (at, request, "intake-311", action, "billing", subject, field, token, outcome)


def _group_commit(store: Store) -> None:
    """Three requests in one transaction, as group commit joins them: two of several items, one of one."""
    with store.transaction() as tx:
        tx.log_access([_row("r1", ALICE, "email", "tok-1"), _row("r1", ALICE, "phone", "tok-2"),
                       _row("r1", BOB, "email", "tok-3", "denied")])
        tx.log_access([_row("r2", CAROL, "email", "tok-4")])
        tx.log_access([_row("r3", BOB, "ssn", "tok-5"), _row("r3", None, None, "tok-6", "not_found")])


def _fields(e: Entry) -> tuple:
    return (e.fields[0], *e.fields[4:], e.item)


def test_a_transaction_writes_one_entry_per_request_and_an_index_row_per_subject(store: Store, tmp_path: Path) -> None:
    _chain(store, tmp_path)
    _group_commit(store)
    with store.engine.connect() as conn:
        entries = conn.execute(text("SELECT request_id, subject_id, outcome, items IS NOT NULL, seq FROM access_log "
                                    "ORDER BY id")).all()
        index = conn.execute(text("SELECT l.request_id, s.subject_id FROM access_subjects s "
                                  "JOIN access_log l ON l.id = s.entry_id ORDER BY l.id, s.subject_id")).all()
    assert [tuple(r) for r in entries] == [("r1", None, MIXED, True, 1), ("r2", CAROL, "ok", False, 2),
                                           ("r3", None, MIXED, True, 3)]
    assert [tuple(r) for r in index] == [("r1", ALICE), ("r1", BOB), ("r2", CAROL), ("r3", BOB)]
    repo = AuditRepository(store)
    assert [_fields(e) for e in repo.entries()] == [
        ("r1", ALICE, "email", "tok-1", "ok", 0), ("r1", ALICE, "phone", "tok-2", "ok", 1),
        ("r1", BOB, "email", "tok-3", "denied", 2), ("r2", CAROL, "email", "tok-4", "ok", 0),
        ("r3", BOB, "ssn", "tok-5", "ok", 0), ("r3", None, None, "tok-6", "not_found", 1),
    ]
    # Through the index: only the items that name the person, with their entry's chain position.
    bob = list(repo.subject_entries(BOB))
    assert [_fields(e) for e in bob] == [("r1", BOB, "email", "tok-3", "denied", 2), ("r3", BOB, "ssn", "tok-5", "ok", 0)]
    assert [e.seq for e in bob] == [1, 3] and all(e.mac is not None and e.chain_id for e in bob)
    assert list(repo.subject_entries(BOB, since=NOW + timedelta(seconds=1))) == []
    assert len(list(repo.subject_entries(BOB, since=NOW, until=NOW + timedelta(seconds=1)))) == 2
    assert list(repo.subject_entries("d" * 32)) == []
    report = _verify(store, tmp_path)
    assert report.ok, report.problem
    assert (report.entries, report.items) == (3, 6)


def test_the_subject_query_reads_the_index_not_the_log(store: Store, tmp_path: Path) -> None:
    _chain(store, tmp_path)
    _group_commit(store)
    statements: list[str] = []
    from sqlalchemy import event

    def seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        assert len(list(AuditRepository(store).subject_entries(ALICE))) == 2
    finally:
        event.remove(store.engine, "before_cursor_execute", seen)
    (query,) = [s for s in statements if "access_log" in s]
    assert "access_subjects" in query and "WHERE access_subjects.subject_id" in query


def _edit_item(store: Store, request: str, change) -> None:  # type: ignore[no-untyped-def]
    """Decode an entry's items, change one, encode them back (as one with database access could)."""
    with store.engine.begin() as conn:
        (entry_id, blob), = conn.execute(text("SELECT id, items FROM access_log WHERE request_id = :r"), {"r": request})
        value = msgpack.unpackb(bytes(blob))
        change(value)
        conn.execute(text("UPDATE access_log SET items = :b WHERE id = :i"), {"b": msgpack.packb(value), "i": entry_id})


def test_an_edited_item_inside_an_entry_fails_its_mac(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, tmp_path)
    _group_commit(store)
    chain.close()

    def deny_to_ok(value: list) -> None:  # r1's third item: denied -> ok (outcome index 1 -> 0)
        value[4][2 * 4 + 2] = 0

    _edit_item(store, "r1", deny_to_ok)
    assert [_fields(e)[-2] for e in AuditRepository(store).entries()][:3] == ["ok", "ok", "ok"]  # what an edit shows
    report = _verify(store, tmp_path)
    assert [(p.seq, p.what) for p in report.problems] == [(1, "MAC mismatch (entry edited, forged or moved)")]


def test_a_removed_index_row_is_a_problem_and_an_added_one_a_note(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, tmp_path)
    _group_commit(store)
    chain.close()
    with store.engine.begin() as conn:
        (r1,), = conn.execute(text("SELECT id FROM access_log WHERE request_id = 'r1'"))
        conn.execute(text("DELETE FROM access_subjects WHERE entry_id = :i AND subject_id = :s"), {"i": r1, "s": BOB})
    report = _verify(store, tmp_path)
    assert [(p.seq, p.entry_id) for p in report.problems] == [(1, r1)]
    assert f"index lacks (subject {BOB})" in report.problems[0].what
    assert [e.fields[0] for e in AuditRepository(store).subject_entries(BOB)] == ["r3"]  # what it hid
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO access_subjects (subject_id, entry_id) VALUES (:s, :i)"), {"i": r1, "s": BOB})
        conn.execute(text("INSERT INTO access_subjects (subject_id, entry_id) VALUES (:s, :i)"), {"i": r1, "s": CAROL})
        conn.execute(text("INSERT INTO access_subjects (subject_id, entry_id) VALUES (:s, 999)"), {"s": CAROL})
    report = _verify(store, tmp_path)
    assert report.ok, report.problem
    assert any("2 per-subject index row(s) name a subject their entry does not" in n for n in report.notes)
    # An added row shows nothing: reads keep only the items that name the subject.
    assert [e.fields[0] for e in AuditRepository(store).subject_entries(CAROL)] == ["r2"]


def test_verify_cited_checks_the_mac_and_the_checkpoint_after_it(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, tmp_path, every=10_000)
    _group_commit(store)
    repo = AuditRepository(store)
    ids = [e.id for e in repo.entries() if e.item == 0]
    cite = lambda: verify_cited(repo, KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"), [*ids, 999])  # noqa: E731
    before = cite()
    assert [bool(before[i]) for i in ids] == [False, False, False]  # only the chain's start is signed yet
    assert "no signed checkpoint" in before[ids[0]].why and before[999].why == "no such entry"
    chain.close()  # the final checkpoint covers seq 3
    assert {i: bool(c) for i, c in cite().items()} == {ids[0]: True, ids[1]: True, ids[2]: True, 999: False}

    def bob_reads_ssn_as_email(value: list) -> None:
        value[2].append("email")
        value[4][1] = len(value[2]) - 1

    _edit_item(store, "r3", bob_reads_ssn_as_email)
    after = cite()
    # r3 no longer recomputes; r1 and r2 still do (the walk past them is `pdv audit verify`'s).
    assert not after[ids[2]] and "does not recompute from its predecessor" in after[ids[2]].why
    assert after[ids[0]] and after[ids[1]]
    with store.engine.begin() as conn:  # the entry before r2 deleted: r2 can no longer be checked
        conn.execute(text("DELETE FROM access_log WHERE id = :i"), {"i": ids[0]})
    assert "the entry before it on its chain is missing" in cite()[ids[1]].why


def test_verify_cited_fails_only_the_edited_entry(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, tmp_path, every=2)
    for n in range(6):
        with store.transaction() as tx:
            tx.log_access([_row(f"q{n}", ALICE, "email", f"t{n}")])
        chain.checkpoint()  # one at each seq: the walk from an entry is one entry long
    chain.close()
    repo = AuditRepository(store)
    ids = [e.id for e in repo.entries()]
    with store.engine.begin() as conn:  # an entry past the checkpoint after the cited one is edited
        conn.execute(text("UPDATE access_log SET outcome = 'denied' WHERE id = :i"), {"i": ids[4]})
    got = verify_cited(repo, KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"), ids)
    # Only q4 fails: q5 recomputes from q4's stored MAC (the edit changed q4's fields, not its MAC).
    assert [bool(got[i]) for i in ids] == [True, True, True, True, False, True]


def test_verify_cited_takes_the_newest_signed_checkpoint_from_the_database_or_the_file_end(
    store: Store, tmp_path: Path,
) -> None:
    """The newest checkpoint is read newest-first from the database's (chain, seq) index and from
    the end of the file: a forged newest one falls back to the one before it, one only the file
    holds counts, and a torn last line (a crash mid-write) hides nothing before it."""
    chain = _chain(store, tmp_path, every=10_000)
    for n in range(4):
        with store.transaction() as tx:
            tx.log_access([_row(f"q{n}", ALICE, "email", f"t{n}")])
        if n in (1, 3):
            chain.checkpoint()  # at seq 2 and seq 4
    repo = AuditRepository(store)
    ids = [e.id for e in repo.entries()]
    sink = CheckpointFile(tmp_path / "cp.jsonl")
    cite = lambda: {i: bool(c) for i, c in verify_cited(repo, KEY, FakeSigner(), sink, ids).items()}  # noqa: E731
    assert cite() == dict.fromkeys(ids, True)
    with store.engine.begin() as conn:  # the newest checkpoint gone from the database: the file has it
        conn.execute(text("DELETE FROM audit_checkpoints WHERE seq = 4"))
    assert cite() == dict.fromkeys(ids, True)
    lines = sink.path.read_text().splitlines()
    forged = [line.replace('"signature": "sig:', '"signature": "sig:00') if '"seq": 4' in line else line
              for line in lines]
    sink.path.write_text("\n".join(forged) + "\n" + '{"kind": "checkpoint", "chain": "torn')
    # Seq 4's only signature is forged now: entries after seq 2 are not covered, those up to it are.
    assert cite() == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False}
    with store.engine.begin() as conn:  # a forged newest checkpoint in the database is passed over too
        conn.execute(text("UPDATE audit_checkpoints SET signature = 'sig:00' WHERE seq = 2"))
    assert cite() == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False}  # the file's seq 2 holds
    sink.path.write_text("")
    assert cite() == dict.fromkeys(ids, False)
