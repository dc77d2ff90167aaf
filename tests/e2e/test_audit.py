"""The tamper-evident access log: chained entries, signed checkpoints, `pdv audit`, fail-closed.

The log is made by a real stack (OpenBao, SQLite or PostgreSQL); tamperings are applied
to copies of the closed database (SQLite file copies, PostgreSQL template copies).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pdv_client import Record
from pdv_client.errors import PdvError

from tests.support.databases import PG_ADMIN_DSN, drop_postgres_database
from tests.support.stack import start_stack
from vault.bootstrap import build_vault
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer
from vault.services.audit import CheckpointFile
from vault.services.audit_verify import VerifyReport, verify_log
from vault.storage.audit_log import AuditRepository
from vault.storage.engine import create_store_engine
from vault.storage.store import Store

PURPOSE = "benefits_eligibility"


def person(n: int, tag: str = "") -> dict[str, str]:
    letters = "".join(chr(97 + (n // 26**j) % 26) for j in range(5))
    return {"full_name": f"Resident {tag}{letters}".title(), "email": f"r{tag}{n}@example.org", "phone": f"212{n % 10_000_000:07d}"}


@dataclass
class ClosedLog:
    """A finished access log: its database, chain key, signer and checkpoint file."""

    url: str
    key: bytes
    signer: object
    file: Path
    tokens: list[tuple[str, str]]

    def verify(self, url: str | None = None, file: Path | None | bool = True) -> VerifyReport:
        store = Store(create_store_engine(url or self.url))
        try:
            sink = CheckpointFile(self.file if file is True else (file or None))
            return verify_log(AuditRepository(store), self.key, self.signer, sink)  # type: ignore[arg-type]
        finally:
            store.close()


class _MemoSigner:
    """Checks each distinct signature with Vault once (the tampering loop repeats them)."""

    def __init__(self, signer: object) -> None:
        self._signer = signer
        self._seen: dict[tuple[bytes, str], bool] = {}

    def verify(self, payload: bytes, signature: str) -> bool:
        if (payload, signature) not in self._seen:
            self._seen[(payload, signature)] = self._signer.verify(payload, signature)  # type: ignore[attr-defined]
        return self._seen[(payload, signature)]


def make_log(openbao: OpenBaoServer, token: str, url: str, tmp: Path, records: int, batch: int,
             every: int = 500, detokenize: bool = True) -> ClosedLog:
    file = tmp / "checkpoints.jsonl"
    stack = start_stack(openbao, url, token, audit_checkpoint_file=file, audit_checkpoint_entries=every)
    tokens: list[tuple[str, str]] = []
    try:
        client = stack.client()
        for start in range(0, records, batch):
            results = client.tokenize([Record(person(i)) for i in range(start, min(records, start + batch))],
                                      purpose=PURPOSE, source="311")
            tokens += [(t, f) for r in results for f, t in r.tokens.items()]
            _await_checkpointer(stack.app.audit, every)
        if detokenize:
            client.detokenize(tokens[:50], purpose=PURPOSE)
            for t, f in tokens[50:60]:
                client.detokenize_one(t, purpose=PURPOSE)
            client.lookup("email", "r1@example.org", purpose=PURPOSE)
        key = stack.app.audit._key  # type: ignore[union-attr]
        _, signer = build_vault(stack.settings)
    finally:
        stack.stop()  # the last checkpoint is signed on close
    return ClosedLog(url, key, _MemoSigner(signer), file, tokens)


def _await_checkpointer(chain, every: int) -> None:  # type: ignore[no-untyped-def]
    """Wait (10 s at most) until the checkpoint thread has taken up the threshold the last commit
    crossed, so how many checkpoints a log gets does not depend on how that thread was scheduled
    (two quick commits could otherwise share one checkpoint)."""
    deadline = time.monotonic() + 10
    while chain._head.seq - chain._attempted >= every and time.monotonic() < deadline:
        time.sleep(0.005)


@pytest.fixture
def small_log(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> ClosedLog:
    return make_log(openbao, vault_token, database_url, tmp_path, records=300, batch=10, every=10)


def test_a_clean_log_verifies(small_log: ClosedLog) -> None:
    report = small_log.verify()
    assert report.ok, report.problem
    assert report.entries >= 300 // 10 + 12  # one entry per request
    assert report.items >= 300 * 3 + 60  # one item per field, token or query
    assert report.checkpoints >= 4 and report.chains == 1
    assert len(CheckpointFile(small_log.file).read() or []) == report.checkpoints


def test_pdv_audit_verify_query_and_export(small_log: ClosedLog, openbao: OpenBaoServer, vault_token: str,
                                           monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in (("DATABASE_URL", small_log.url), ("VAULT_ADDR", openbao.addr), ("VAULT_TOKEN", vault_token),
                        ("AUDIT_CHECKPOINT_FILE", str(small_log.file))):
        monkeypatch.setenv(f"PDV_{name}", value)
    assert pdv_main(["audit", "verify", "--local"]) == 0
    assert "audit log intact" in capsys.readouterr().out
    assert pdv_main(["audit", "export"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) >= 960 and {"at", "principal", "action", "purpose", "subject_id", "token", "chain", "seq"} <= set(lines[0])
    assert pdv_main(["audit", "query", "--action", "lookup", "--purpose", PURPOSE, "--since", "2000-01-01"]) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert found and {r["action"] for r in found} == {"lookup"}
    subject = next(r["subject_id"] for r in lines if r["action"] == "tokenize" and r["item"] > 0)
    assert pdv_main(["audit", "query", "--subject", subject, "--until", "2000-01-01"]) == 0
    assert capsys.readouterr().out == ""
    # Through the per-subject index: exactly the items of the export that name the subject.
    assert pdv_main(["audit", "query", "--subject", subject]) == 0
    mine = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(mine) >= 3 and mine == [r for r in lines if r["subject_id"] == subject]
    _tamper_sqlite_or_pg(small_log, lambda run: run("UPDATE access_log SET outcome = 'denied' WHERE id = 7"))
    assert pdv_main(["audit", "verify", "--local"]) == 1
    assert "id 7" in capsys.readouterr().err


# --- tampering ---------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def _tamper_sqlite_or_pg(log: ClosedLog, change: Callable[[Callable[..., list]], None]) -> None:
    """Apply `change` in place (the CLI test's last step)."""
    if log.url.startswith("sqlite"):
        with sqlite3.connect(_sqlite_path(log.url)) as conn:
            change(lambda sql, *p: conn.execute(sql, p).fetchall())
    else:
        with psycopg.connect(log.url.replace("postgresql://", "postgresql://", 1), autocommit=True) as conn:
            change(lambda sql, *p: _pg_rows(conn.execute(sql.replace("?", "%s"), p)))


def _pg_rows(cursor: psycopg.Cursor) -> list:
    return cursor.fetchall() if cursor.description else []


COLUMNS = ("at", "request_id", "principal", "action", "purpose", "subject_id", "field", "token", "outcome",
           "items", "chain_id", "seq", "mac")


def random_tampering(rng: random.Random, run: Callable[..., list]) -> str:
    """One random edit, deletion, insertion, swap or truncation; returns what it did."""
    ids = [r[0] for r in run("SELECT id FROM access_log ORDER BY id")]
    kind = rng.choice(["edit", "delete", "insert", "swap", "truncate"])
    if kind == "edit":
        row_id, column = rng.choice(ids), rng.choice(COLUMNS)
        if column == "at":
            run("UPDATE access_log SET at = ? WHERE id = ?", "2030-01-01 00:00:00.000000", row_id)
        elif column == "seq":
            run("UPDATE access_log SET seq = seq + ? WHERE id = ?", rng.choice([-1, 1, 2, 1000]), row_id)
        elif column == "mac":
            run("UPDATE access_log SET mac = ? WHERE id = ?", rng.randbytes(32), row_id)
        else:
            run(f"UPDATE access_log SET {column} = ? WHERE id = ?", f"forged-{rng.randrange(10**6)}", row_id)
        return f"edit {column} of id {row_id}"
    if kind == "delete":
        row_id = rng.choice(ids)
        run("DELETE FROM access_log WHERE id = ?", row_id)
        return f"delete id {row_id}"
    if kind == "insert":
        src = rng.choice(ids)
        cols = ", ".join(COLUMNS)
        new_id = max(ids) + 1 if rng.random() < 0.5 else None
        if new_id is None:  # a replayed copy, in the middle: make room by moving the rows after it up
            run("UPDATE access_log SET id = -(id + 1) WHERE id > ?", src)  # via negatives: no unique clash
            run("UPDATE access_log SET id = -id WHERE id < 0")
            new_id = src + 1
        run(f"INSERT INTO access_log (id, {cols}) SELECT ?, {cols} FROM access_log WHERE id = ?", new_id, src)
        if rng.random() < 0.5:
            run("UPDATE access_log SET outcome = 'ok', principal = 'forger' WHERE id = ?", new_id)
        return f"insert a copy of id {src} as id {new_id}"
    if kind == "swap":
        a, b = rng.sample(ids, 2)
        rows = {r[0]: r[1:] for r in run(f"SELECT id, {', '.join(COLUMNS)} FROM access_log WHERE id IN (?, ?)", a, b)}
        sets = ", ".join(f"{c} = ?" for c in COLUMNS)
        run(f"UPDATE access_log SET {sets} WHERE id = ?", *rows[b], a)
        run(f"UPDATE access_log SET {sets} WHERE id = ?", *rows[a], b)
        return f"swap ids {a} and {b}"
    # Truncate the tail, and cover it up as well as one can without the key: move the chain
    # head back to the last kept entry and drop the checkpoints past it.
    keep = rng.randrange(len(ids) - 1) if rng.random() < 0.3 else len(ids) - 1 - rng.randint(1, 20)
    cut = ids[keep]
    run("DELETE FROM access_log WHERE id > ?", cut)
    if rng.random() < 0.7:
        (chain, seq, mac), = run("SELECT chain_id, seq, mac FROM access_log WHERE id = ?", cut)
        run("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", seq, mac, chain)
        run("DELETE FROM audit_checkpoints WHERE seq > ?", seq)
    return f"truncate after id {cut}"


def test_random_tamperings_are_all_detected_on_sqlite(openbao: OpenBaoServer, vault_token: str, tmp_path: Path) -> None:
    log = make_log(openbao, vault_token, f"sqlite:///{tmp_path / 'log.db'}", tmp_path, records=200, batch=5, every=15)
    assert log.verify().ok
    rng = random.Random(20261126)
    copy = tmp_path / "copy.db"
    missed = []
    for _ in range(1000):
        for stale in (copy, copy.with_name(copy.name + "-wal"), copy.with_name(copy.name + "-shm")):
            stale.unlink(missing_ok=True)
        shutil.copyfile(_sqlite_path(log.url), copy)
        with sqlite3.connect(copy) as conn:
            what = random_tampering(rng, lambda sql, *p: conn.execute(sql, p).fetchall())
        report = log.verify(f"sqlite:///{copy}")
        if report.ok:
            missed.append(what)
    assert missed == []


@contextmanager
def pg_copy(url: str) -> Iterator[str]:
    source = url.rsplit("/", 1)[1]
    name = f"{source}_t{random.randrange(10**6)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        drop_postgres_database(name)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_representative_tamperings_are_detected_on_postgresql(small_log: ClosedLog) -> None:
    assert small_log.verify().ok
    rng = random.Random(7)
    kinds_seen = set()
    for _ in range(8):
        with pg_copy(small_log.url) as url, psycopg.connect(url, autocommit=True) as conn:
            what = random_tampering(rng, lambda sql, *p: _pg_rows(conn.execute(sql.replace("?", "%s"), p)))
            kinds_seen.add(what.split()[0])
            conn.close()
            report = small_log.verify(url)
            assert not report.ok, what
    assert len(kinds_seen) >= 3


def test_the_checkpoint_file_catches_a_covered_up_truncation(small_log: ClosedLog) -> None:
    # Remove the newest entries, rewind the chain head and delete the checkpoints past the cut:
    # the database alone now looks consistent; the file outside it does not.
    def cut(run: Callable[..., list]) -> None:
        (last_cp,) = run("SELECT max(seq) FROM audit_checkpoints")[0]
        keep = last_cp - 5
        (chain, mac), = run("SELECT chain_id, mac FROM access_log WHERE seq = ?", keep)
        run("DELETE FROM access_log WHERE seq > ?", keep)
        run("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", keep, mac, chain)
        run("DELETE FROM audit_checkpoints WHERE seq > ?", keep)

    last = max(cp.seq for cp in CheckpointFile(small_log.file).read() or [])
    _tamper_sqlite_or_pg(small_log, cut)
    assert small_log.verify(file=False).ok  # what the database alone cannot show
    report = small_log.verify()
    assert not report.ok and any(f"a signed checkpoint covers up to seq {last}" in p.what for p in report.problems)


# --- no false positives at scale, canaries, fail-closed ------------------------------------

def test_no_false_positive_on_100k_entries(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> None:
    log = make_log(openbao, vault_token, database_url, tmp_path, records=33_334, batch=2000, every=10_000, detokenize=False)
    report = log.verify()
    assert report.ok, report.problem
    assert report.items >= 100_000


def test_audit_export_holds_no_personal_value(small_log: ClosedLog, openbao: OpenBaoServer, vault_token: str,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in (("DATABASE_URL", small_log.url), ("VAULT_ADDR", openbao.addr), ("VAULT_TOKEN", vault_token)):
        monkeypatch.setenv(f"PDV_{name}", value)
    assert pdv_main(["audit", "export"]) == 0
    exported = capsys.readouterr().out + small_log.file.read_text()
    canaries = [v for i in range(300) for v in person(i).values()]
    assert [c for c in canaries if c in exported] == []


def test_a_failing_log_write_fails_the_request_and_returns_no_value(openbao: OpenBaoServer, vault_token: str,
                                                                    database_url: str, tmp_path: Path) -> None:
    stack = start_stack(openbao, database_url, vault_token)
    try:
        client = stack.client()
        (result,) = client.tokenize([Record(person(1, "fc"))], purpose=PURPOSE, source="311")
        token = result.tokens["email"]
        assert client.detokenize_one(token, purpose=PURPOSE) == "rfc1@example.org"
        with stack.app.store.engine.begin() as conn:
            if stack.app.store.dialect == "sqlite":
                conn.exec_driver_sql("CREATE TRIGGER no_log BEFORE INSERT ON access_log "
                                     "BEGIN SELECT RAISE(ABORT, 'log write refused'); END")
            else:
                conn.exec_driver_sql("CREATE FUNCTION no_log() RETURNS trigger LANGUAGE plpgsql AS "
                                     "$$ BEGIN RAISE EXCEPTION 'log write refused'; END $$")
                conn.exec_driver_sql("CREATE TRIGGER no_log BEFORE INSERT ON access_log FOR EACH STATEMENT EXECUTE FUNCTION no_log()")
        with pytest.raises(PdvError) as failure:
            client.detokenize_one(token, purpose=PURPOSE)
        with pytest.raises(PdvError):
            client.detokenize([(token, "email")], purpose=PURPOSE)
        assert "rfc1" not in str(failure.value) and "rfc1" not in stack.log.getvalue()
    finally:
        stack.stop()


def test_concurrent_replicas_write_separate_chains_that_all_verify(openbao: OpenBaoServer, vault_token: str,
                                                                   database_url: str, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    file = tmp_path / "checkpoints.jsonl"
    stacks = [start_stack(openbao, database_url, vault_token, migrate_first=(i == 0), audit_checkpoint_file=file,
                          audit_checkpoint_entries=200) for i in range(2)]
    try:
        clients = [s.client() for s in stacks]

        def work(n: int) -> None:
            client = clients[n % 2]
            (r,) = client.tokenize([Record(person(n, "rep"))], purpose=PURPOSE, source="311")
            client.detokenize_one(r.tokens["email"], purpose=PURPOSE)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(work, range(400)))
        key = stacks[0].app.audit._key  # type: ignore[union-attr]
        _, signer = build_vault(stacks[0].settings)
    finally:
        for s in stacks:
            s.stop()
    report = ClosedLog(database_url, key, signer, file, []).verify()
    assert report.ok, report.problem
    # One entry per request though group commit shares transactions: a tokenize's 3 fields, a read's 1.
    assert report.chains == 2 and (report.entries, report.items) == (400 * 2, 400 * 4)
