"""Upgrading (and downgrading) a database that already holds data, on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from tests.storage.test_store_contract import _add_subjects, _subject, _value
from vault.storage import migrate
from vault.storage import requests as requests_db
from vault.storage.engine import create_store_engine
from vault.storage.rows import VALUE_COLUMNS
from vault.storage.store import Store

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
# field_values as it was before 0010 (no notice_given).
_OLD_VALUE_COLUMNS = VALUE_COLUMNS[:VALUE_COLUMNS.index("notice_given")]


def _add_old_values(tx, rows: list[tuple]) -> None:  # type: ignore[no-untyped-def]
    tx.insert_rows("field_values", _OLD_VALUE_COLUMNS, [r[:len(_OLD_VALUE_COLUMNS)] for r in rows], (9, 10))


def test_0006_moves_stored_answers_to_records_without_what_was_shredded(empty_database_url: str) -> None:
    """Before 0006 a shred left stored tokenize answers alone: the upgrade must not carry a
    shredded subject, or a shredded field's token, into the records a retry replays."""
    engine = create_store_engine(empty_database_url)
    live, gone = _subject(1), _subject(2)
    answers = {
        "r1": {"results": [[live, {"email": "pdv_x", "ssn": "123450001"}], ["", {}], [gone, {"email": "pdv_y"}]],
               "errors": [[1, "email", "InvalidInput", "records[1]: email: not an email address"]]},
        "r2": {"results": [[live, {"email": "pdv_x"}]], "errors": []},
    }
    try:
        migrate.upgrade(engine, "0005")
        store = Store(engine)
        _add_subjects(store, live)  # `gone` was shredded whole; `live` had its ssn shredded
        with store.transaction() as tx:
            _add_old_values(tx, [_value(live, "email", "pdv_x")])
        with engine.begin() as conn:
            for request_id, answer in answers.items():
                conn.execute(text("INSERT INTO tokenize_requests (principal, request_id, fingerprint, response, created_at) "
                                  "VALUES ('intake', :r, :fp, :response, :at)"),
                             {"r": request_id, "fp": b"fp-" + request_id.encode(), "response": json.dumps(answer), "at": AT})
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT request_id, position, subject_id, tokens FROM request_records "
                                     "ORDER BY request_id, position"))
            assert [tuple(r) for r in rows] == [("r1", 0, live, '{"email": "pdv_x"}'), ("r1", 2, "", "{}"),
                                                ("r2", 0, live, '{"email": "pdv_x"}')]
            stored = {r: (bytes(fp), json.loads(body)) for r, fp, body in
                      conn.execute(text("SELECT request_id, fingerprint, response FROM tokenize_requests"))}
        assert stored == {"r1": (b"", {"records": 3, "errors": answers["r1"]["errors"]}),
                          "r2": (b"fp-r2", {"records": 1, "errors": []})}

        migrate.downgrade(engine, "0005")  # and back: revision 0005's format, what was shredded left out
        with engine.connect() as conn:
            back = {r: json.loads(body) for r, body in conn.execute(text("SELECT request_id, response FROM tokenize_requests"))}
        assert back["r1"]["results"] == [[live, {"email": "pdv_x"}], ["", {}], ["", {}]]
        assert back["r2"] == answers["r2"]
    finally:
        engine.dispose()


def test_0007_adds_privacy_requests_and_its_downgrade_takes_their_keys_too(empty_database_url: str) -> None:
    """0007's tables hold requests, their history and links; downgrading drops them and the
    requests' wrapped DEKs, and leaves every other wrapped secret (the index root) alone."""
    engine = create_store_engine(empty_database_url)
    try:
        migrate.upgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO wrapped_secrets (name, wrapped, created_at) VALUES ('index-root', 'vault:v1:r', :at)"),
                         {"at": AT})
        migrate.upgrade(engine)
        store = Store(engine)
        row = requests_db.RequestRow("req_" + "a" * 24, "complaint", None, "received", AT, AT, None, "officer",
                                     b"sealed", None, None)
        with store.transaction() as tx:
            requests_db.add_request(tx, row, "vault:v1:k")
            requests_db.link_actions(tx, [(row.id, AT, "clerk", "shred", None, None, "shredded")])
        with store.snapshot() as tx:
            assert requests_db.get_request(tx, row.id) == row
            assert [h.to_status for h in requests_db.history(tx, row.id)] == ["received"]
            assert [a.outcome for a in requests_db.actions(tx, row.id)] == ["shredded"]
        migrate.downgrade(engine, "0006")
        with engine.connect() as conn:
            assert [n for (n,) in conn.execute(text("SELECT name FROM wrapped_secrets"))] == ["index-root"]
        migrate.upgrade(engine)  # and up again, empty
        with store.snapshot() as tx:
            assert requests_db.get_request(tx, row.id) is None
    finally:
        engine.dispose()


def test_0008_correction_history_goes_with_its_value_and_downgrades(empty_database_url: str) -> None:
    """The history of a value cascades from it: whatever deletes the value (a shred, a field
    shred, disposal) deletes its history in the same statement, on both databases."""
    from vault.storage import corrections

    engine = create_store_engine(empty_database_url)
    kept, dropped = _subject(1), _subject(2)
    try:
        migrate.upgrade(engine)
        store = Store(engine)
        _add_subjects(store, kept, dropped)
        with store.transaction() as tx:
            tx.add_values([_value(kept, "email", "pdv_k"), _value(dropped, "email", "pdv_d")])
        with store.transaction() as tx:
            rows = [corrections.CorrectionRow(v.id, s, "email", v.purpose, v.token, False, b"\x01" * 32, AT, "office",
                                              "typo", None, f"r-{s}", b"\x02" * 32)
                    for s in (kept, dropped) for v in corrections.values_of(tx, s, "email")]
            corrections.add_history(tx, rows)
        with store.transaction() as tx:
            tx.execute(f"DELETE FROM field_values WHERE subject_id = {tx.marks(1)}", (dropped,))
        with store.snapshot() as tx:
            assert [r.subject_id for r in corrections.history_of_subject(tx, kept)] == [kept]
            assert corrections.history_of_subject(tx, dropped) == []
            assert [r.request_id for r in corrections.history_of_request(tx, "office", f"r-{kept}")] == [f"r-{kept}"]
        migrate.downgrade(engine, "0007")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM field_values")).scalar() == 1
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_0010_records_a_notice_for_values_collected_with_a_notice_id(empty_database_url: str) -> None:
    """Values collected before 0010 get notice_given true when they name a notice, else
    NULL ("not recorded"), never false: nothing said no notice was given."""
    engine = create_store_engine(empty_database_url)
    subject = _subject(1)
    try:
        migrate.upgrade(engine, "0008")
        store = Store(engine)
        _add_subjects(store, subject)
        with_notice = list(_value(subject, "email", "pdv_n"))
        with_notice[VALUE_COLUMNS.index("notice_id")] = "notice-2025-04"
        with store.transaction() as tx:
            _add_old_values(tx, [tuple(with_notice), _value(subject, "phone", "pdv_p")])
        migrate.upgrade(engine)
        with engine.connect() as conn:
            rows = dict(conn.execute(text("SELECT token, notice_given FROM field_values")).all())
        assert {t: (None if v is None else bool(v)) for t, v in rows.items()} == {"pdv_n": True, "pdv_p": None}
        migrate.downgrade(engine, "0008")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM field_values")).scalar() == 2
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_0009_keeps_per_item_rows_readable_and_verify_follows_a_chain_across_the_upgrade(
        empty_database_url: str) -> None:
    """Rows written before 0009 (one per item, chained) stay as they are: entries of one item,
    found through the per-subject index the upgrade fills, and verified as before — also when
    the same chain goes on after the upgrade with entries of several items."""
    from tests.unit.test_audit_chain import KEY, FakeSigner
    from vault.crypto.audit import GENESIS, chain_mac, encode_entry
    from vault.services.audit import AuditChain, CheckpointFile, micros
    from vault.services.audit_verify import verify_log
    from vault.storage.audit_log import AuditRepository
    from vault.storage.rows import ChainHead

    engine = create_store_engine(empty_database_url)
    alice, bob, chain_id = _subject(1), _subject(2), "c" * 32
    old = [(AT, "old-1", "intake", "detokenize", "billing", alice, "email", "pdv_a", "ok"),
           (AT, "old-1", "intake", "detokenize", "billing", bob, "email", "pdv_b", "denied"),
           (AT, "old-2", "intake", "lookup", "billing", None, "email", None, "not_found")]
    try:
        migrate.upgrade(engine, "0008")
        mac = GENESIS
        with engine.begin() as conn:  # what revision 0008's server wrote: a chained row per item
            for seq, row in enumerate(old, 1):
                mac = chain_mac(KEY, mac, encode_entry(chain_id, seq, micros(row[0]), row[1:]))
                conn.execute(text("INSERT INTO access_log (at, request_id, principal, action, purpose, subject_id, field, "
                                  "token, outcome, chain_id, seq, mac) VALUES (:at, :r, :p, :a, :pu, :s, :f, :t, :o, :c, "
                                  ":seq, :mac)"), dict(zip(("at", "r", "p", "a", "pu", "s", "f", "t", "o"), row),
                                                       c=chain_id, seq=seq, mac=mac))
            conn.execute(text("INSERT INTO audit_chains (chain_id, started_at, seq, mac) VALUES (:c, :at, 3, :mac)"),
                         {"c": chain_id, "at": AT, "mac": mac})
        migrate.upgrade(engine)
        store = Store(engine)
        repo = AuditRepository(store)
        assert [(e.fields[0], e.fields[4], e.item) for e in repo.subject_entries(bob)] == [("old-1", bob, 0)]
        sink = CheckpointFile(None)  # no external record: the chain predates it here
        # The same chain goes on after the upgrade (as if its process had lived through it).
        chain = AuditChain(KEY, repo, FakeSigner(), sink, lambda: AT, 10_000, 3600)
        chain._head = ChainHead(chain_id, 3, mac)
        store.attach_chain(chain)
        with store.transaction() as tx:
            tx.log_access([(AT, "new-1", "intake", "detokenize", "billing", bob, f, f"pdv_{f}", "ok") for f in ("email", "phone")])
        report = verify_log(repo, KEY, FakeSigner(), sink)
        assert report.ok, report.problem
        assert (report.entries, report.items) == (4, 5)
        assert [(e.fields[0], e.seq, e.item) for e in repo.subject_entries(bob)] == [("old-1", 2, 0), ("new-1", 4, 0),
                                                                                      ("new-1", 4, 1)]
        with engine.begin() as conn:  # an old row edited after the upgrade is caught as before
            conn.execute(text("UPDATE access_log SET outcome = 'ok' WHERE request_id = 'old-1' AND subject_id = :s"),
                         {"s": bob})
        assert [p.seq for p in verify_log(repo, KEY, FakeSigner(), sink).problems] == [2]
        with pytest.raises(RuntimeError, match="several items"):  # revision 0008 could not read new-1
            migrate.downgrade(engine, "0008")
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM access_log WHERE request_id = 'new-1'"))
        migrate.downgrade(engine, "0008")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM access_log")).scalar() == 3
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def test_0011_puts_every_earlier_value_in_the_default_domain_and_downgrades(empty_database_url: str) -> None:
    """Values stored before 0011 were issued in the default domain: the upgrade says so without
    touching them. Downgrading drops the ledger and the translation records, and the values of
    other domains (the older schema would make their tokens valid everywhere)."""
    from vault.storage import holders

    engine = create_store_engine(empty_database_url)
    subject = _subject(1)
    try:
        migrate.upgrade(engine, "0008")
        store = Store(engine)
        _add_subjects(store, subject)
        with store.transaction() as tx:
            _add_old_values(tx, [_value(subject, "email", "pdv_old"), _value(subject, "phone", "pdv_old2")])
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert dict(conn.execute(text("SELECT token, domain FROM field_values")).all()) == {
                "pdv_old": "city", "pdv_old2": "city"}
        partner_row = list(_value(subject, "email", "pdv_acme"))
        partner_row[VALUE_COLUMNS.index("domain")] = "partner:acme"
        with store.transaction() as tx:
            tx.add_values([tuple(partner_row)])
            tx.record_holders([(subject, "partner:acme", "acme"), (subject, "city", "intake-311")], AT)
            tx.record_holders([(_subject(9), "city", "intake-311")], AT)  # no such subject: not recorded
        with store.snapshot() as tx:
            assert sorted((h.principal, h.domain) for h in holders.holders_of(tx, subject)) == [
                ("acme", "partner:acme"), ("intake-311", "city")]
            assert holders.holders_of(tx, _subject(9)) == []
            assert {r.token for r in tx.values_for_tokens(["pdv_old", "pdv_acme"], "", "city")} == {"pdv_old"}
            assert {r.token for r in tx.values_for_tokens(["pdv_old", "pdv_acme"], "", "partner:acme")} == {"pdv_acme"}
        migrate.downgrade(engine, "0008")
        with engine.connect() as conn:
            assert sorted(r[0] for r in conn.execute(text("SELECT token FROM field_values"))) == ["pdv_old", "pdv_old2"]
        migrate.upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM token_holders")).scalar() == 0
    finally:
        engine.dispose()


def test_0013_keeps_issued_tokens_found_and_its_downgrade_keeps_every_value(database_url: str) -> None:
    """Random tokens issued before 0013 stay in the token index and are found by it after the
    upgrade, beside the sequential tokens issued after it (found by locator). Downgrading puts
    every row back in the token index: no value is lost, and each keeps its token."""
    import os

    from vault.crypto import tokens as tk
    from vault.crypto.locators import LocatorCipher
    from vault.storage import locators

    engine = create_store_engine(database_url)
    subject = _subject(1)
    old_token = tk.random_token()
    cipher = LocatorCipher(os.urandom(32))
    try:
        migrate.upgrade(engine, "0011")
        store = Store(engine)
        _add_subjects(store, subject)
        with store.transaction() as tx:
            tx.insert_rows("field_values", VALUE_COLUMNS[:-2], [_value(subject, "email", old_token)[:-2]], (9, 10))
        migrate.upgrade(engine)
        first = locators.reserve_block(store, 10)
        assert locators.reserve_block(store, 10) == first + 10  # blocks never overlap
        ((new_token, check),) = cipher.seal([first])
        new_row = list(_value(subject, "phone", new_token))
        new_row[-2:] = [first, check]
        with store.transaction() as tx:
            tx.add_values([tuple(new_row)])
        asked = [old_token, new_token]
        with store.snapshot() as tx:
            found = tx.values_for_tokens(asked, "", "city", cipher.open(asked))
            assert sorted((r.token, r.field) for r in found) == sorted([(old_token, "email"), (new_token, "phone")])
            # A token opening to the new row's locator with any other check finds nothing.
            assert tx.values_for_tokens([new_token], "", "city", [(first, bytes(8))]) == []
        migrate.downgrade(engine, "0011")
        with engine.connect() as conn:
            kept = {r[0]: bytes(r[1]) for r in conn.execute(text("SELECT token, ciphertext FROM field_values"))}
        assert kept == {old_token: b"\x01sealed-" + old_token.encode(), new_token: b"\x01sealed-" + new_token.encode()}
        migrate.upgrade(engine)
    finally:
        engine.dispose()
