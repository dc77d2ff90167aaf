"""The access-log chain without Vault: encoding, rollback safety, checkpoint failures."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.stack import migrate_url
from vault.crypto.audit import GENESIS, encode_entry
from vault.errors import KeyUnavailable
from vault.services.audit import AuditChain, CheckpointFile
from vault.services.audit_verify import verify_log
from vault.storage.audit_log import AuditRepository
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
KEY = bytes(range(32))


def test_the_entry_encoding_is_injective() -> None:
    base = encode_entry("c", 1, 0, ["ab", "c", None])
    assert base != encode_entry("c", 1, 0, ["a", "bc", None])
    assert base != encode_entry("c", 1, 0, ["ab", "c", ""])
    assert base != encode_entry("c", 2, 0, ["ab", "c", None])
    assert base != encode_entry("d", 1, 0, ["ab", "c", None])
    assert base != encode_entry("c", 1, 1, ["ab", "c", None])


def test_a_shared_memo_changes_no_encoding() -> None:
    entries = [("c", 1, 5, ["req", "alice", "sub", None, "tok1"]), ("c", 2, 5, ["req", "alice", "sub", "", "tok2"]),
               ("c", 3, 6, ["alice", "req", "sub", "sub", "req"])]
    memo: dict[str, bytes] = {}
    assert [encode_entry(*e, memo) for e in entries] == [encode_entry(*e) for e in entries]


class FakeSigner:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls = 0

    def sign(self, payloads: list[bytes]) -> list[str]:
        self.calls += 1
        if self.fail:
            raise KeyUnavailable("vault sealed or unreachable")
        return [f"sig:{p.hex()}" for p in payloads]

    def verify(self, payload: bytes, signature: str) -> bool:
        return signature == f"sig:{payload.hex()}"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    migrate_url(url)
    s = Store(create_store_engine(url))
    yield s
    s.close()


def _row(n: int) -> tuple:
    return (NOW, f"req-{n}", "intake-311", "detokenize", "billing", "sub_x", "email", f"tok-{n}", "ok")


def _chain(store: Store, signer: FakeSigner, tmp_path: Path, every: int = 3) -> AuditChain:
    chain = AuditChain(KEY, AuditRepository(store), signer, CheckpointFile(tmp_path / "cp.jsonl"), lambda: NOW, every, 3600)
    chain.start()
    store.attach_chain(chain)
    return chain


def test_a_rolled_back_transaction_does_not_move_the_chain(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, FakeSigner(), tmp_path)
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.log_access([_row(2), _row(3)])
            raise RuntimeError("boom")
    with store.transaction() as tx:
        tx.log_access([_row(4)])
    chain.close()
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))
    assert report.ok, report.problem
    assert report.entries == 2 and report.checkpoints == 2  # the chain's start (seq 0) and its close
    assert chain.lock.acquire(blocking=False)  # released after the rollback too


def test_a_failed_checkpoint_fails_no_request_and_is_retried_at_the_next_threshold(
    store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    signer = FakeSigner()
    chain = _chain(store, signer, tmp_path, every=2)
    signer.fail = True
    with caplog.at_level(logging.ERROR, "pdv.audit"):
        with store.transaction() as tx:
            tx.log_access([_row(1), _row(2)])
        assert chain.checkpoint() is False
        assert "failed" in caplog.text
    calls = signer.calls
    with store.transaction() as tx:  # below the next threshold: no new attempt is triggered
        tx.log_access([_row(3)])
    signer.fail = False
    with store.transaction() as tx:
        tx.log_access([_row(4)])
    assert chain.checkpoint() is True
    assert signer.calls >= calls + 1
    chain.close()
    report = verify_log(AuditRepository(store), KEY, signer, CheckpointFile(tmp_path / "cp.jsonl"))
    assert report.ok, report.problem


def test_rows_written_without_a_chain_are_reported(store: Store, tmp_path: Path) -> None:
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(None))
    assert not report.ok and "not chained" in (report.problem or "")
    assert GENESIS == b"\0" * 32


def test_a_failed_log_write_moves_on_to_a_fresh_chain_that_still_verifies(store: Store, tmp_path: Path) -> None:
    chain = _chain(store, FakeSigner(), tmp_path)
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    first = chain.chain_id
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TRIGGER no_log BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(Exception):
        with store.transaction() as tx:
            tx.log_access([_row(2)])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER no_log")
    with store.transaction() as tx:
        tx.log_access([_row(3), _row(4)])
    assert chain.chain_id != first
    chain.close()
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))
    assert report.ok, report.problem
    assert (report.entries, report.chains) == (3, 2)


def test_a_commit_that_landed_but_reported_failure_leaves_no_fork(store: Store, tmp_path: Path) -> None:
    # The rows of a "failed" transaction did commit: the chain cannot know, so it abandons
    # the old chain rather than reuse its sequence numbers.
    chain = _chain(store, FakeSigner(), tmp_path)
    with chain.lock:
        rows, head = chain.seal([(*_row(1), None), (*_row(2), None)])  # two requests: an entry each
        with store.engine.begin() as conn:  # what the store would have written
            marks = ", ".join("?" * 13)
            conn.exec_driver_sql(
                "INSERT INTO access_log (at, request_id, principal, action, purpose, subject_id, field, token, outcome,"
                f" items, chain_id, seq, mac) VALUES ({marks})",
                [(r[0].strftime("%Y-%m-%d %H:%M:%S.%f"), *r[1:]) for r in rows],
            )
            conn.exec_driver_sql("INSERT INTO access_subjects (subject_id, entry_id) SELECT subject_id, id FROM access_log "
                                 "WHERE seq IN (1, 2)")
            conn.exec_driver_sql("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", (head.seq, head.mac, head.chain_id))
        chain.abandon()  # ... and the caller saw an error
    with store.transaction() as tx:
        tx.log_access([_row(3)])
    chain.close()
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))
    assert report.ok, report.problem
    assert (report.entries, report.chains) == (3, 2)


def test_verify_lists_the_first_problems_and_counts_the_rest(store: Store, tmp_path: Path) -> None:
    from vault.services.audit_verify import MAX_PROBLEMS

    chain = _chain(store, FakeSigner(), tmp_path, every=10_000)
    with store.transaction() as tx:
        tx.log_access([_row(n) for n in range(MAX_PROBLEMS + 50)])
    chain.close()
    with store.engine.begin() as conn:  # every entry edited: one problem each
        conn.exec_driver_sql("UPDATE access_log SET outcome = 'denied'")
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))
    assert (len(report.problems), report.unlisted, report.problem_count) == (MAX_PROBLEMS, 50, MAX_PROBLEMS + 50)
    assert [p.seq for p in report.problems] == list(range(1, MAX_PROBLEMS + 1))
    assert all("MAC mismatch" in p.what and p.entry_id is not None for p in report.problems)


@pytest.mark.parametrize("column", ["outcome", "mac"])
def test_one_edited_entry_is_one_problem(store: Store, tmp_path: Path, column: str) -> None:
    chain = _chain(store, FakeSigner(), tmp_path, every=10_000)
    with store.transaction() as tx:
        tx.log_access([_row(n) for n in range(10)])
    chain.close()
    value = "'denied'" if column == "outcome" else "x'00'"
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE access_log SET {column} = {value} WHERE seq = 4")
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(tmp_path / "cp.jsonl"))
    assert [(p.seq, p.what) for p in report.problems] == [(4, "MAC mismatch (entry edited, forged or moved)")]


def test_a_torn_append_stays_on_its_own_line_and_is_a_note(store: Store, tmp_path: Path) -> None:
    file = tmp_path / "cp.jsonl"
    chain = _chain(store, FakeSigner(), tmp_path)
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    with file.open("a") as f:  # an append cut short by a full disk: no newline, not JSON
        f.write('{"kind": "checkpoint", "chain": "')
    with store.transaction() as tx:
        tx.log_access([_row(2), _row(3)])
    chain.close()
    records = CheckpointFile(file).records()
    assert records is not None and len(records.unreadable) == 1
    assert [cp.seq for cp in records.checkpoints] == [0, 3]  # the line after the torn one is whole
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(file))
    assert report.ok, report.problem
    assert any("not a readable record" in note for note in report.notes)


def test_a_line_of_another_kind_is_kept_apart_not_malformed(store: Store, tmp_path: Path) -> None:
    file = tmp_path / "cp.jsonl"
    chain = _chain(store, FakeSigner(), tmp_path)
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    chain.close()
    with file.open("a") as f:
        f.write('{"kind": "attestation", "at": "2026-12-03T12:00:00.000000Z"}\n')
    records = CheckpointFile(file).records()
    assert records is not None and records.unreadable == [] and [k for _, k, _ in records.other] == ["attestation"]
    assert CheckpointFile(file).read() == records.checkpoints
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(file))
    assert report.ok, report.problem
    assert any("a 'attestation' record" in note for note in report.notes)
    # A restore record is a kind verify knows: one that is not validly signed is a problem.
    with file.open("a") as f:
        f.write('{"kind": "restore", "at": "2026-12-03T12:00:00.000000Z"}\n')
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(file))
    assert [str(p) for p in report.problems] == ["a restore record in the checkpoint file has an invalid signature "
                                                 "(restore of ?)"]


def test_lines_written_before_kind_existed_still_count(store: Store, tmp_path: Path) -> None:
    import json

    file = tmp_path / "cp.jsonl"
    chain = _chain(store, FakeSigner(), tmp_path)
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    chain.close()
    old_style = [json.dumps({k: v for k, v in json.loads(line).items() if k != "kind"}) for line in file.read_text().splitlines()]
    file.write_text("".join(line + "\n" for line in old_style))
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(file))
    assert report.ok and report.checkpoints == 2 and report.notes == [], (report.problem, report.notes)


def test_the_file_is_written_before_the_database(store: Store, tmp_path: Path) -> None:
    # A failed append stores nothing; the file holding what the database lacks is a note.
    file = tmp_path / "cp.jsonl"
    chain = _chain(store, FakeSigner(), tmp_path, every=10_000)
    file.unlink()
    file.mkdir()  # appends now fail
    with store.transaction() as tx:
        tx.log_access([_row(1)])
    assert chain.checkpoint() is False
    assert [cp.seq for cp in AuditRepository(store).checkpoints()] == [0]
    file.rmdir()
    assert chain.checkpoint() is True
    assert [cp.seq for cp in AuditRepository(store).checkpoints()] == [0, 1]
    chain.close()
    report = verify_log(AuditRepository(store), KEY, FakeSigner(), CheckpointFile(file))
    # The start line went with the old file: its database copy is what shows the loss.
    assert [(p.seq, p.what.split(" (")[0]) for p in report.problems] == [(0, "checkpoint in the database but not in the checkpoint file")]


def test_a_chain_whose_file_cannot_be_written_does_not_start(store: Store, tmp_path: Path) -> None:
    from vault.errors import ConfigError

    (tmp_path / "dir").mkdir()
    chain = AuditChain(KEY, AuditRepository(store), FakeSigner(), CheckpointFile(tmp_path / "dir"), lambda: NOW, 3, 3600)
    with pytest.raises(ConfigError, match="audit_checkpoint_file: cannot append"):
        chain.start()
    assert AuditRepository(store).chain_heads() == {}
