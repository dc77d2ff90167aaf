"""`pdv audit verify` reports every problem it finds, not just the first (issue 11, item 5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.test_audit import ClosedLog, _tamper_sqlite_or_pg, make_log
from vault.cli.main import main as pdv_main
from vault.keys.openbao import OpenBaoServer


@pytest.fixture
def log(openbao: OpenBaoServer, vault_token: str, database_url: str, tmp_path: Path) -> ClosedLog:
    # 42 entries; checkpoints at 25 and at the close: the cut below passes only the last one.
    return make_log(openbao, vault_token, database_url, tmp_path, records=300, batch=10, every=25)


def _edit_delete_and_truncate(run: Callable[..., list]) -> dict[str, int]:
    """An edit of id 7, a deletion of id 20, and a cut of the newest entries with the chain
    head rewound and the database checkpoints past the cut deleted (a covered-up truncation)."""
    run("UPDATE access_log SET outcome = 'denied' WHERE id = 7")
    (deleted_seq,), = run("SELECT seq FROM access_log WHERE id = 20")
    run("DELETE FROM access_log WHERE id = 20")
    (last_cp,), = run("SELECT max(seq) FROM audit_checkpoints")
    keep = last_cp - 5
    (chain, mac), = run("SELECT chain_id, mac FROM access_log WHERE seq = ?", keep)
    run("DELETE FROM access_log WHERE seq > ?", keep)
    run("UPDATE audit_chains SET seq = ?, mac = ? WHERE chain_id = ?", keep, mac, chain)
    run("DELETE FROM audit_checkpoints WHERE seq > ?", keep)
    return {"deleted_seq": deleted_seq, "keep": keep, "last_cp": last_cp}


def test_an_edit_a_deletion_and_a_truncation_all_show_up_in_one_run(log: ClosedLog) -> None:
    assert log.verify().ok
    where: dict[str, int] = {}
    _tamper_sqlite_or_pg(log, lambda run: where.update(_edit_delete_and_truncate(run)))
    report = log.verify()
    assert not report.ok
    found = [str(p) for p in report.problems]
    assert any(p.entry_id == 7 and "MAC mismatch" in p.what for p in report.problems), found
    assert any(p.seq == where["deleted_seq"] + 1 and f"seq {where['deleted_seq']} missing" in p.what
               for p in report.problems), found
    assert any(p.seq == where["keep"] + 1 and f"covers up to seq {where['last_cp']}" in p.what
               for p in report.problems), found
    # One problem per tampering, not one per later entry.
    assert len(report.problems) == 3 and report.unlisted == 0, found


def test_the_cli_prints_every_problem_and_exits_1(log: ClosedLog, openbao: OpenBaoServer, vault_token: str,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in (("DATABASE_URL", log.url), ("VAULT_ADDR", openbao.addr), ("VAULT_TOKEN", vault_token),
                        ("AUDIT_CHECKPOINT_FILE", str(log.file))):
        monkeypatch.setenv(f"PDV_{name}", value)
    assert pdv_main(["audit", "verify", "--local"]) == 0
    capsys.readouterr()
    where: dict[str, int] = {}
    _tamper_sqlite_or_pg(log, lambda run: where.update(_edit_delete_and_truncate(run)))
    assert pdv_main(["audit", "verify", "--local"]) == 1
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert lines[0].startswith("audit log TAMPERED: 3 problems found"), out.err
    listed = [line.strip() for line in lines[1:] if line.startswith("  ")]
    assert len(listed) == 3, out.err
    assert any("(id 7): MAC mismatch" in line for line in listed), out.err
    assert any(f"seq {where['deleted_seq']} missing before this entry" in line for line in listed), out.err
    assert any(f"seq {where['keep'] + 1}: missing; a signed checkpoint covers up to seq {where['last_cp']}" in line
               for line in listed), out.err
    assert "intact" not in out.out
