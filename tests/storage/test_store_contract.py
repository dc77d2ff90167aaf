"""The repository contract, run on SQLite and PostgreSQL: every Tx query behaves the same on both."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
from sqlalchemy import delete, insert, select

from tests.support.stack import migrate_url
from vault.errors import Conflict, StoreUnavailable
from vault.storage import migrate
from vault.storage import tables as t
from vault.storage.engine import create_store_engine
from vault.storage.rows import IndexMatch, KeyRow, ValueRow
from vault.storage.store import Store

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    migrate_url(database_url)
    s = Store(create_store_engine(database_url))
    try:
        yield s
    finally:
        s.close()


def _subject(n: int) -> str:
    return f"sub_{n:022d}"


def _key_row(subject_id: str, version: int, encryptions: int = 0) -> tuple:
    # KEY_COLUMNS order
    return (subject_id, version, f"vault:v1:wrapped-{subject_id}-{version}", 1, encryptions, NOW)


def _add_subjects(store: Store, *subject_ids: str, versions: int = 1) -> None:
    with store.transaction() as tx:
        tx.add_subjects([(s, NOW, "intake-311") for s in subject_ids])
        tx.add_keys([_key_row(s, v) for s in subject_ids for v in range(1, versions + 1)])


def _value(subject_id: str, field: str, token: str, key_version: int = 1, index: bytes | None = None) -> tuple:
    # VALUE_COLUMNS order.
    return (
        subject_id, field, token, key_version, b"\x01sealed-" + token.encode(), index,
        "service_delivery", "311", None, NOW, NOW + timedelta(days=365), False, "city", None, None,
    )


# --- secrets and requests ------------------------------------------------------------

def test_secrets(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.get_secret("index-root") is None
        tx.add_secret("index-root", "vault:v1:abc", NOW)
    with store.transaction() as tx:
        assert tx.get_secret("index-root") == "vault:v1:abc"
        assert tx.get_secret("other") is None


def test_requests(store: Store) -> None:
    fingerprint = os.urandom(32)
    with store.transaction() as tx:
        assert tx.get_request("intake-311", "batch-1") is None
        tx.save_request("intake-311", "batch-1", fingerprint, '{"records": 3}', NOW,
                        [(0, "sub_a", '{"email": "t1"}'), (2, "sub_b", "{}")])
    with store.transaction() as tx:
        assert tx.get_request("intake-311", "batch-1") == (
            fingerprint, '{"records": 3}', [(0, "sub_a", '{"email": "t1"}'), (2, "sub_b", "{}")])
        assert isinstance(tx.get_request("intake-311", "batch-1")[0], bytes)
        assert tx.get_request("billing", "batch-1") is None  # ids are per principal
        assert tx.get_request("intake-311", "batch-2") is None


# --- subjects and keys ---------------------------------------------------------------

def test_current_keys_returns_the_newest_version_per_subject(store: Store) -> None:
    a, b, unknown = _subject(1), _subject(2), _subject(3)
    _add_subjects(store, a, versions=3)
    _add_subjects(store, b)
    with store.transaction() as tx:
        assert tx.current_keys([]) == {}
        keys = tx.current_keys([a, b, unknown])
    assert keys == {
        a: KeyRow(a, 3, f"vault:v1:wrapped-{a}-3", 0),
        b: KeyRow(b, 1, f"vault:v1:wrapped-{b}-1", 0),
    }


def test_count_encryptions_adds_to_the_named_version_only(store: Store) -> None:
    a, b = _subject(1), _subject(2)
    _add_subjects(store, a, b, versions=2)
    with store.transaction() as tx:
        tx.count_encryptions([(a, 2, 5), (b, 2, 1)])
        tx.count_encryptions([])
    with store.transaction() as tx:
        tx.count_encryptions([(a, 2, 7)])
    with store.transaction() as tx:
        keys = tx.current_keys([a, b])
        assert (keys[a].encryptions, keys[b].encryptions) == (12, 1)
        old = tx.conn.execute(select(t.data_keys.c.encryptions).where(t.data_keys.c.version == 1)).scalars().all()
        assert old == [0, 0]


def test_empty_inserts_are_no_ops(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_subjects([])
        tx.add_keys([])
        tx.add_values([])
        tx.log_access([])
        assert tx.values_for_tokens([]) == []
        assert tx.find_by_index([]) == []
        assert tx.existing_values([]) == set()


# --- values --------------------------------------------------------------------------

def test_values_round_trip(store: Store) -> None:
    a, b = _subject(1), _subject(2)
    _add_subjects(store, a, b, versions=2)
    idx = os.urandom(16)
    with store.transaction() as tx:
        tx.add_values([
            _value(a, "email", "tok-shared", 2, idx),
            _value(b, "email", "tok-shared", 1, idx),  # deterministic: two subjects, one token
            _value(a, "ssn", "123450000", 2, os.urandom(16)),
            _value(a, "full_name", "tok-name", 1, None),
        ])
    with store.transaction() as tx:
        rows = tx.values_for_tokens(["tok-shared", "tok-name", "tok-missing"])
        assert rows == [
            ValueRow("tok-shared", "email", a, 2, b"\x01sealed-tok-shared", f"vault:v1:wrapped-{a}-2"),
            ValueRow("tok-shared", "email", b, 1, b"\x01sealed-tok-shared", f"vault:v1:wrapped-{b}-1"),
            ValueRow("tok-name", "full_name", a, 1, b"\x01sealed-tok-name", f"vault:v1:wrapped-{a}-1"),
        ]
        assert all(type(r.ciphertext) is bytes for r in rows)
        assert tx.existing_values([("tok-shared", "email", a), ("tok-shared", "email", _subject(9)),
                                   ("tok-name", "email", a)]) == {("tok-shared", "email", a)}
        matches = tx.find_by_index([("email", idx), ("full_name", idx), ("email", os.urandom(16))], "billing")
        assert matches == [IndexMatch("email", idx, a, "tok-shared"), IndexMatch("email", idx, b, "tok-shared")]
        assert all(type(m.blind_index) is bytes for m in matches)
        assert [(m.purpose, m.opted_out) for m in matches] == [("service_delivery", False)] * 2
        tx.conn.execute(insert(t.consent_optouts).values(subject_id=b, purpose="billing", set_by="x", set_at=NOW))
        matches = tx.find_by_index([("email", idx)], "billing")
        assert [(m.subject_id, m.opted_out) for m in matches] == [(a, False), (b, True)]
        # A shared token's rows each carry their own subject's opt-out (detokenize judges them row by row).
        shared = tx.values_for_tokens(["tok-shared"], "billing")
        assert [(r.subject_id, r.purpose, r.opted_out) for r in shared] == [(a, "service_delivery", False), (b, "service_delivery", True)]


def test_reserved_tokens(store: Store) -> None:
    with store.transaction() as tx:
        assert tx.taken_tokens("ssn", ["123450000", "999990000"]) == set()
        tx.reserve_tokens([("ssn", "123450000"), ("ssn", "123450001"), ("license_plate", "999990000")])
        tx.reserve_tokens([])
    with store.transaction() as tx:
        assert tx.taken_tokens("ssn", ["123450000", "999990000", "123450002"]) == {"123450000"}
        assert tx.taken_tokens("license_plate", ["999990000", "123450000"]) == {"999990000"}  # per field
    with pytest.raises(Conflict):  # reserved for good: a second reservation is a conflict
        with store.transaction() as tx:
            tx.reserve_tokens([("ssn", "123450009"), ("ssn", "123450001")])
    with store.transaction() as tx:
        assert tx.taken_tokens("ssn", ["123450009"]) == set()


def test_values_whose_key_row_is_gone_are_not_returned(store: Store) -> None:
    a, b = _subject(1), _subject(2)
    _add_subjects(store, a, b, versions=2)
    with store.transaction() as tx:
        tx.add_values([_value(a, "email", "tok-a1", 1), _value(a, "email", "tok-a2", 2), _value(b, "email", "tok-b", 1)])
    with store.transaction() as tx:
        k = t.data_keys.c
        tx.conn.execute(delete(t.data_keys).where(k.subject_id == a, k.version == 1))  # a's old key shredded
    with store.transaction() as tx:
        assert [r.token for r in tx.values_for_tokens(["tok-a1", "tok-a2", "tok-b"])] == ["tok-a2", "tok-b"]


def test_duplicate_value_is_a_conflict(store: Store) -> None:
    a = _subject(1)
    _add_subjects(store, a)
    with store.transaction() as tx:
        tx.add_values([_value(a, "email", "tok")])
    with pytest.raises(Conflict):
        with store.transaction() as tx:
            tx.add_values([_value(a, "email", "tok")])


def test_value_for_a_missing_key_is_a_conflict(store: Store) -> None:
    # What a tokenize racing a shred of the same subject runs into.
    _add_subjects(store, _subject(1))
    with pytest.raises(Conflict):
        with store.transaction() as tx:
            tx.add_values([_value(_subject(1), "email", "tok", key_version=2)])


# --- access log ----------------------------------------------------------------------

def _utc(value: datetime) -> datetime:
    # SQLite has no time zone type: SQLAlchemy hands back naive datetimes, which the store writes in UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def test_access_log_timestamps_are_instants(store: Store) -> None:
    new_york = timezone(timedelta(hours=-4))
    kolkata = timezone(timedelta(hours=5, minutes=30))
    times = [NOW, NOW.astimezone(new_york) + timedelta(microseconds=1), NOW.astimezone(kolkata) + timedelta(hours=1)]
    with store.transaction() as tx:
        tx.log_access([
            (at, f"req-{i}", "intake-311", "detokenize", "billing", _subject(i), "email", f"tok-{i}", "ok")
            for i, at in enumerate(times)
        ])
        tx.log_access([(NOW, "req-x", "intake-311", "lookup", "billing", None, None, None, "not_found")])
    with store.engine.connect() as conn:
        c = t.access_log.c
        rows = conn.execute(select(c.at, c.request_id, c.subject_id, c.field, c.token, c.outcome).order_by(c.id)).all()
    assert [_utc(r.at) for r in rows] == [*times, NOW]  # aware datetimes compare as instants
    assert [_utc(r.at).isoformat() for r in rows[:2]] == ["2024-05-06T07:08:09.123456+00:00",
                                                          "2024-05-06T07:08:09.123457+00:00"]
    assert [r.request_id for r in rows] == ["req-0", "req-1", "req-2", "req-x"]
    assert tuple(rows[3])[2:] == (None, None, None, "not_found")
    # The access log sorts by instant, whatever zone each row was written in.
    with store.engine.connect() as conn:
        ordered = conn.execute(select(t.access_log.c.request_id).order_by(t.access_log.c.at, t.access_log.c.id)).scalars().all()
    assert ordered == ["req-0", "req-x", "req-1", "req-2"]


# --- tokenizes queued for the commit --------------------------------------------------

def _queue_tokenize(tx, n: int, request_id: str, token: str) -> tuple[str, tuple]:  # type: ignore[no-untyped-def]
    subject, fingerprint = _subject(n), os.urandom(32)
    request = ("intake-311", request_id, fingerprint, '{"records": 1}', NOW)
    tx.queue_tokenized([(subject, NOW, "intake-311")], [_key_row(subject, 1)], [_value(subject, "email", token)],
                       request, [(0, subject, f'{{"email": "{token}"}}')])
    return subject, (fingerprint, '{"records": 1}', [(0, subject, f'{{"email": "{token}"}}')])


def test_queued_tokenizes_land_at_commit_and_later_units_see_them(store: Store) -> None:
    with store.transaction() as tx:
        a, answer_a = _queue_tokenize(tx, 1, "req-a", "tok-a")
        b, answer_b = _queue_tokenize(tx, 2, "req-b", "tok-b")
        # A later unit of the same transaction: a retry of req-a, a re-collection of a's value.
        assert tx.get_request("intake-311", "req-a") == answer_a
        assert tx.existing_values([("tok-a", "email", a), ("tok-a", "email", b)]) == {("tok-a", "email", a)}
        assert tx.values_for_tokens(["tok-a"]) == []  # not written yet: nothing reads a value before its commit
    with store.transaction() as tx:
        assert tx.get_request("intake-311", "req-b") == answer_b
        assert [(r.subject_id, r.token) for r in tx.values_for_tokens(["tok-a", "tok-b"])] == [(a, "tok-a"), (b, "tok-b")]
        assert tx.current_keys([a, b]) == {s: KeyRow(s, 1, f"vault:v1:wrapped-{s}-1", 0) for s in (a, b)}
        assert tx.existing_values([("tok-b", "email", b)]) == {("tok-b", "email", b)}


def test_a_queued_row_that_conflicts_fails_the_whole_transaction(store: Store) -> None:
    with store.transaction() as tx:
        _queue_tokenize(tx, 1, "req-a", "tok-a")
    with pytest.raises(Conflict):
        with store.transaction() as tx:
            tx.add_secret("index-root", "vault:v1:abc", NOW)
            tx.log_access([(NOW, "req-b", "intake-311", "tokenize", "billing", None, None, None, "ok")])
            _queue_tokenize(tx, 2, "req-b", "tok-b")
            _queue_tokenize(tx, 3, "req-a", "tok-c")  # req-a is taken: found only when the queue is written
    with store.transaction() as tx:
        assert tx.get_secret("index-root") is None
        assert tx.get_request("intake-311", "req-b") is None
        assert tx.values_for_tokens(["tok-b", "tok-c"]) == []
        assert tx.conn.execute(select(t.access_log)).all() == []


# --- transactions --------------------------------------------------------------------

class Boom(Exception):
    pass


def test_a_transaction_that_raises_rolls_back_everything(store: Store) -> None:
    a = _subject(1)
    with pytest.raises(Boom):
        with store.transaction() as tx:
            tx.add_secret("index-root", "vault:v1:abc", NOW)
            tx.add_subjects([(a, NOW, "intake-311")])
            tx.add_keys([_key_row(a, 1)])
            tx.add_values([_value(a, "email", "tok")])
            tx.log_access([(NOW, "req", "intake-311", "tokenize", "billing", a, "email", "tok", "ok")])
            tx.save_request("intake-311", "req", b"fp", "{}", NOW)
            tx.reserve_tokens([("ssn", "123450000")])
            tx.count_encryptions([(a, 1, 1)])
            raise Boom()
    with store.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            # The migration seeds the locator counter (0013): it is the one row there before any write.
            seeded = [("field_values", 1)] if table is t.locator_blocks else []
            assert [tuple(r) for r in conn.execute(select(table)).all()] == seeded, table.name


@pytest.mark.parametrize("what", ["subject", "key", "secret", "request"])
def test_duplicate_primary_key_is_a_conflict(store: Store, what: str) -> None:
    a = _subject(1)
    _add_subjects(store, a)
    with store.transaction() as tx:
        tx.add_secret("index-root", "vault:v1:abc", NOW)
        tx.save_request("intake-311", "req", b"fp", "{}", NOW)
    with pytest.raises(Conflict):
        with store.transaction() as tx:
            tx.log_access([(NOW, "req", "intake-311", "tokenize", "billing", a, None, None, "ok")])
            if what == "subject":
                tx.add_subjects([(a, NOW, "intake-311")])
            elif what == "key":
                tx.add_keys([_key_row(a, 1)])
            elif what == "secret":
                tx.add_secret("index-root", "vault:v1:other", NOW)
            else:
                tx.save_request("intake-311", "req", b"fp2", "{}", NOW)
    with store.transaction() as tx:  # the failed transaction left nothing behind
        assert tx.get_secret("index-root") == "vault:v1:abc"
        assert tx.conn.execute(select(t.access_log)).all() == []


def test_a_snapshot_sees_only_committed_data_and_does_not_wait_for_writers(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_secret("committed", "vault:v1:a", NOW)
    with store.transaction() as writer:
        writer.add_secret("pending", "vault:v1:b", NOW)
        with store.snapshot() as reader:  # would deadlock (SQLite) or block if it queued behind the writer
            assert reader.get_secret("committed") == "vault:v1:a"
            assert reader.get_secret("pending") is None
    with store.snapshot() as reader:
        assert reader.get_secret("pending") == "vault:v1:b"


# --- migrations ----------------------------------------------------------------------

def test_require_current_refuses_an_empty_database(empty_database_url: str) -> None:
    engine = create_store_engine(empty_database_url)
    try:
        with pytest.raises(StoreUnavailable, match="pdv db upgrade"):
            migrate.require_current(engine)
    finally:
        engine.dispose()


def test_migrations_upgrade_idempotently(empty_database_url: str) -> None:
    migrate_url(empty_database_url)
    migrate_url(empty_database_url)
    engine = create_store_engine(empty_database_url)
    try:
        migrate.require_current(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
