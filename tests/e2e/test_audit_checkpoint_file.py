"""The checkpoint file outside the database (issue 11, item 3): `pdv audit verify` fails when
the file is missing, emptied or lacks a line, unless the config says there is no external
record; an honest failure between the file and the database write is a note, not a finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pdv_client import Record

from tests.e2e.test_audit import PURPOSE, ClosedLog, _tamper_sqlite_or_pg, make_log, person
from tests.support.stack import start_stack
from vault.bootstrap import build_vault
from vault.cli.main import main as pdv_main
from vault.errors import StoreUnavailable
from vault.keys.openbao import OpenBaoServer
from vault.services.audit import CheckpointFile


@pytest.fixture
def log(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> ClosedLog:
    return make_log(openbao, vault_token, database_url, tmp_path, records=300, batch=10, every=10)


@pytest.fixture
def verify_cli(log: ClosedLog, openbao: OpenBaoServer, vault_token: str, monkeypatch: pytest.MonkeyPatch,
               capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """`pdv audit verify` with the log's settings: (exit code, stdout, stderr)."""
    for name, value in (("DATABASE_URL", log.url), ("VAULT_ADDR", openbao.addr), ("VAULT_TOKEN", vault_token),
                        ("AUDIT_CHECKPOINT_FILE", str(log.file))):
        monkeypatch.setenv(f"PDV_{name}", value)

    def run() -> tuple[int, str, str]:
        code = pdv_main(["audit", "verify", "--local"])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _lines(log: ClosedLog) -> list[str]:
    return log.file.read_text().splitlines()


def test_a_deleted_line_an_emptied_file_and_a_missing_file_each_fail(log: ClosedLog, verify_cli) -> None:  # type: ignore[no-untyped-def]
    original = log.file.read_text()
    lines = original.splitlines()
    assert len(lines) >= 4 and verify_cli()[0] == 0
    for n in (0, len(lines) // 2, len(lines) - 1):  # the chain's start, one in the middle, the clean stop's last
        log.file.write_text("".join(line + "\n" for i, line in enumerate(lines) if i != n))
        code, _, err = verify_cli()
        seq = json.loads(lines[n])["seq"]
        assert code == 1, (n, err)
        assert f"seq {seq}: checkpoint in the database but not in the checkpoint file" in err, err
    log.file.write_text("")
    code, _, err = verify_cli()
    assert code == 1 and "is empty (no checkpoint line)" in err, err
    log.file.unlink()
    code, _, err = verify_cli()
    assert code == 1 and "is missing" in err, err
    log.file.write_text(original)
    assert verify_cli()[0] == 0


def test_verify_needs_the_config_to_say_there_is_no_external_record(log: ClosedLog, verify_cli,  # type: ignore[no-untyped-def]
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PDV_AUDIT_CHECKPOINT_FILE")
    code, out, err = verify_cli()
    assert code == 2 and "intact" not in out
    assert "audit_checkpoint_file is not set" in err and "audit_external_record = false" in err, err
    monkeypatch.setenv("PDV_AUDIT_EXTERNAL_RECORD", "false")
    code, out, err = verify_cli()
    assert code == 0 and "audit log intact" in out
    assert "no external record (audit_external_record = false)" in err
    monkeypatch.setenv("PDV_AUDIT_CHECKPOINT_FILE", str(log.file))  # both: a contradiction, refused
    assert verify_cli()[0] == 2


def test_honest_failures_between_the_two_writes_are_notes_not_findings(
    openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    file = tmp_path / "checkpoints.jsonl"
    stack = start_stack(openbao, database_url, vault_token, audit_checkpoint_file=file,
                        audit_checkpoint_entries=10**6, audit_checkpoint_seconds=3600)
    chain = stack.app.audit
    assert chain is not None
    try:
        client = stack.client()

        def tokenize(n: int) -> None:
            client.tokenize([Record(person(i, "h" + "abcd"[n - 1])) for i in range(20)], purpose=PURPOSE, source="311")

        tokenize(1)
        assert chain.checkpoint() is True  # in the file and the database
        sink_append = chain._sink.append  # type: ignore[attr-defined]

        def full_disk(cp: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(chain._sink, "append", full_disk)  # type: ignore[attr-defined]
        tokenize(2)
        assert chain.checkpoint() is False  # a failed append: in neither
        monkeypatch.setattr(chain._sink, "append", sink_append)  # type: ignore[attr-defined]

        def database_down(cp: object) -> None:
            raise StoreUnavailable("database unavailable")

        # From here on every database copy fails, as if the process died right after each
        # file append: the file gets checkpoints the database never does.
        monkeypatch.setattr(chain._repo, "add_checkpoint", database_down)  # type: ignore[attr-defined]
        tokenize(3)
        assert chain.checkpoint() is False
        tokenize(4)
        key = chain._key  # type: ignore[attr-defined]
        _, signer = build_vault(stack.settings)
    finally:
        stack.stop()  # the final checkpoint reaches the file only
    in_file = CheckpointFile(file).read() or []
    assert len(in_file) == 4  # start, first, the one after the failed append, the final one

    log = ClosedLog(database_url, key, signer, file, [])
    report = log.verify()
    assert report.ok, [str(p) for p in report.problems]
    assert any("2 checkpoint(s) in the file but not in the database" in note for note in report.notes), report.notes

    # What the file alone holds is still checked against the log: cut the tail they cover.
    def cut(run):  # type: ignore[no-untyped-def]
        (seq,), = run("SELECT max(seq) FROM audit_checkpoints")  # the last one the database has
        (chain_id, mac), = run("SELECT chain_id, mac FROM access_log WHERE seq = ?", seq)
        run("DELETE FROM access_log WHERE seq > ?", seq)
        run("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", seq, mac, chain_id)

    _tamper_sqlite_or_pg(log, cut)
    report = log.verify()
    assert any("a signed checkpoint covers up to seq" in p.what for p in report.problems), report.notes
