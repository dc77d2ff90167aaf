"""Reading the checkpoint file after restores, without Vault: which chains a database is
behind on, and which checkpoints a signed restore record supersedes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from vault.crypto.audit import checkpoint_payload
from vault.services.audit import CheckpointFile, SignedRecord
from vault.services.lifecycle.restore import RESTORE_KIND, RESTORE_TYPE, shortfalls, superseded_checkpoints
from vault.storage.audit_log import Checkpoint


class Signer:
    """Signatures are digests of the payload: only this signer makes ones that verify."""

    def sign(self, payloads: Sequence[bytes]) -> list[str]:
        return ["test:" + hashlib.sha256(p).hexdigest() for p in payloads]

    def verify(self, payload: bytes, signature: str) -> bool:
        return signature == self.sign([payload])[0]


SIGNER = Signer()
MAC = bytes(32)


def checkpoint(chain: str, seq: int, at: str = "2026-12-01T00:00:00Z", signed: bool = True) -> Checkpoint:
    signature = SIGNER.sign([checkpoint_payload(chain, seq, MAC, at)])[0] if signed else "test:forged"
    return Checkpoint(chain, seq, MAC, at, signature)


def restore(at: str, baseline: dict[str, int], signed: bool = True) -> SignedRecord:
    text = json.dumps({"type": RESTORE_TYPE, "at": at, "baseline": baseline}, sort_keys=True)
    return SignedRecord(RESTORE_KIND, text, SIGNER.sign([text.encode()])[0] if signed else "test:forged")


def heads(**seqs: int) -> dict[str, tuple[int, bytes]]:
    return {chain: (seq, MAC) for chain, seq in seqs.items()}


def behind(db: dict[str, tuple[int, bytes]], lines: list) -> list[tuple[str, int, int]]:
    return [(s.chain_id, s.has, s.needs) for s in shortfalls(db, lines, SIGNER)]


def test_a_database_behind_a_checkpoint_or_missing_its_chain_is_behind() -> None:
    lines = [checkpoint("a", 5), checkpoint("a", 10), checkpoint("b", 3)]
    assert behind(heads(a=10, b=3), lines) == []
    assert behind(heads(a=7, b=3), lines) == [("a", 7, 10)]
    assert behind(heads(a=10), lines) == [("b", None, 3)]
    # Every chain starts with a checkpoint at seq 0: a database without the chain is behind it.
    assert behind(heads(a=10, b=3), [*lines, checkpoint("c", 0)]) == [("c", None, 0)]


def test_a_checkpoint_whose_signature_fails_proves_nothing() -> None:
    lines = [checkpoint("a", 5), checkpoint("a", 10, signed=False)]
    assert behind(heads(a=7), lines) == []
    assert behind(heads(a=4), lines) == [("a", 4, 5)]


def test_a_signed_restore_supersedes_what_came_before_and_its_baseline_counts() -> None:
    lines = [checkpoint("a", 10), checkpoint("b", 3), restore("T1", {"a": 5, "r": 1})]
    assert behind(heads(a=5, r=1), lines) == []
    assert superseded_checkpoints(lines, SIGNER) == {("a", 10): "T1", ("b", 3): "T1"}
    # An older copy again, past the restore: its chain r is missing.
    found = shortfalls(heads(a=5), lines, SIGNER)
    assert [(s.chain_id, s.has, s.needs) for s in found] == [("r", None, 1)] and "the restore of T1" in str(found[0])
    # Checkpoints after the record count again.
    assert behind(heads(a=5, r=1), [*lines, checkpoint("a", 8)]) == [("a", 5, 8)]


def test_the_latest_restore_sets_the_baseline() -> None:
    lines = [checkpoint("a", 10), restore("T1", {"a": 5, "r": 1}), checkpoint("r", 4), restore("T2", {"a": 3, "s": 1})]
    assert behind(heads(a=3, s=1), lines) == []
    assert superseded_checkpoints(lines, SIGNER) == {("a", 10): "T1", ("r", 4): "T2"}


def test_a_forged_restore_record_supersedes_nothing() -> None:
    lines = [checkpoint("a", 10), restore("T1", {}, signed=False)]
    assert behind(heads(a=5), lines) == [("a", 5, 10)]
    assert superseded_checkpoints(lines, SIGNER) == {}


def test_a_torn_line_hides_none_of_the_checkpoints_after_it(tmp_path: Path) -> None:
    sink = CheckpointFile(tmp_path / "checkpoints.jsonl")
    sink.append(checkpoint("a", 5))
    with (tmp_path / "checkpoints.jsonl").open("a") as f:
        f.write('{"chain": "a", "seq": 7, "ma\n')  # a crash mid-append
    sink.append(checkpoint("a", 10))
    with pytest.raises(ValueError, match="line 2 is malformed"):
        sink.read_all()
    lines = sink.read_all(skip_malformed=True)
    assert lines is not None and behind(heads(a=7), lines) == [("a", 7, 10)]
