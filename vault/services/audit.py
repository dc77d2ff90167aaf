"""The tamper-evident access log: this process's hash chain and its signed checkpoints.

Every writer process (server replica, `processes` worker) starts its own chain, with a
random chain id and a row in `audit_chains`. Entries are chained in the write
transaction (vault.storage.store seals them just before commit), so replicas never wait
on a shared chain lock: on PostgreSQL a single global chain would serialise every
replica's commits behind one row lock, which per-process chains avoid outright.

A background thread checkpoints the committed head every `checkpoint_entries` entries
or `checkpoint_seconds` seconds: (chain, seq, mac, time) signed by the Vault ed25519
key, appended (fsync) to a file outside the database and then stored in
`audit_checkpoints`. That bounds what can be cut from a chain's tail unnoticed (README,
"Audit"). Requests never wait for Vault; a failed checkpoint is logged and retried at
the next threshold.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from file_read_backwards import FileReadBackwards

from vault.crypto.audit import GENESIS, chain_mac, checkpoint_payload, encode_entry_items
from vault.crypto.index import derive_key
from vault.errors import ConfigError, PdvError
from vault.keys.provider import Signer
from vault.secret import SecretBytes
from vault.services.sink import append_durably
from vault.storage.audit_log import AuditRepository, Checkpoint
from vault.storage.rows import ChainHead

log = logging.getLogger("pdv.audit")

CHAIN_KEY_USE = "audit-chain"  # IndexKeys.audit_key derives with this label
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = datetime.resolution


def chain_key(index_root: SecretBytes) -> bytes:
    """The chain's HMAC key, derived from the Vault-protected index root."""
    return derive_key(index_root, CHAIN_KEY_USE)


@functools.lru_cache(maxsize=4096)  # a batch shares one timestamp
def micros(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC
    return (at - _EPOCH) // _MICROSECOND


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


CHECKPOINT_KIND = "checkpoint"
_BAD_LINE = (ValueError, KeyError, TypeError, AttributeError)


def _checkpoint(d: dict) -> Checkpoint:
    """A checkpoint line's record as a Checkpoint; raises one of _BAD_LINE when it is not one."""
    return Checkpoint(str(d["chain"]), int(d["seq"]), bytes.fromhex(d["mac"]), str(d["at"]), str(d["signature"]))


@dataclass(frozen=True)
class SignedRecord:
    """A line of the checkpoint file of another kind than a checkpoint: a Vault-signed record
    (a restore, vault.services.lifecycle.restore), its canonical JSON text and signature."""

    kind: str
    text: str
    signature: str


@dataclass
class FileRecords:
    """What the checkpoint file holds, line by line."""

    exists: bool
    checkpoints: list[Checkpoint] = field(default_factory=list)
    checkpoint_lines: list[int] = field(default_factory=list)  # the line number of each checkpoint
    # (line number, kind, record) of lines of another kind (a newer PDV's, e.g. restore records):
    # not checkpoints, and not malformed either.
    other: list[tuple[int, str, dict]] = field(default_factory=list)
    unreadable: list[int] = field(default_factory=list)  # line numbers that are no JSON record


class CheckpointFile:
    """Append-only JSON lines of signed checkpoints, outside the database.

    A line is {"kind": "checkpoint", "chain", "seq", "mac", "at", "signature"}; lines written
    before "kind" existed have none and are checkpoints too. Other kinds are kept apart
    (FileRecords.other) for the code that knows them.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def append(self, cp: Checkpoint) -> None:
        """Raises OSError when the line could not be written and synced."""
        if self.path is None:
            return
        line = json.dumps({"kind": CHECKPOINT_KIND, "chain": cp.chain_id, "seq": cp.seq, "mac": cp.mac.hex(),
                           "at": cp.at, "signature": cp.signature}, sort_keys=True) + "\n"
        append_durably(self.path, line)

    def read(self) -> list[Checkpoint] | None:
        """The file's checkpoints; None when no file is configured. Raises ValueError on a bad line."""
        records = self.records()
        if records is None:
            return None
        if records.unreadable:
            raise ValueError(f"checkpoint file line {records.unreadable[0]} is malformed")
        return records.checkpoints

    def records(self) -> FileRecords | None:
        """Every line of the file, sorted by kind; None when no file is configured."""
        if self.path is None:
            return None
        if not self.path.exists():
            return FileRecords(exists=False)
        out = FileRecords(exists=True)
        for n, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                kind = d.get("kind", CHECKPOINT_KIND)
                if kind != CHECKPOINT_KIND:
                    out.other.append((n, str(kind), d))
                    continue
                out.checkpoints.append(_checkpoint(d))
                out.checkpoint_lines.append(n)
            except _BAD_LINE:
                out.unreadable.append(n)
        return out

    def newest_first(self, chains: set[str]) -> Iterator[Checkpoint]:
        """The file's checkpoints of `chains`, last line first, read from the end of the file (it
        grows for ever; the caller usually stops after a few lines). Lines of other kinds and
        malformed ones (a line torn by a crash) are passed over: `pdv audit verify` reports them."""
        if self.path is None or not self.path.exists():
            return
        # latin-1 decodes any byte: a stray one spoils its own line's JSON, not the read.
        with FileReadBackwards(self.path, encoding="latin-1") as lines:
            for line in lines:
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    if d.get("kind", CHECKPOINT_KIND) == CHECKPOINT_KIND and d["chain"] in chains:
                        yield _checkpoint(d)
                except _BAD_LINE:
                    continue

    def append_record(self, record: SignedRecord) -> None:
        """Append a signed record of another kind (a restore) durably; raises OSError."""
        if self.path is None:
            return
        append_durably(self.path, json.dumps({"kind": record.kind, "record": record.text,
                                              "signature": record.signature}, sort_keys=True) + "\n")

    def read_all(self, skip_malformed: bool = False) -> list[Checkpoint | SignedRecord] | None:
        """Checkpoints and signed records in file order (the order restores are read in); None
        when no file is configured. Raises ValueError on a bad line, unless `skip_malformed`
        (then it is logged and left out: a line torn by a crash must not hide those after it)."""
        records = self.records()
        if records is None:
            return None
        if records.unreadable:
            if not skip_malformed:
                raise ValueError(f"checkpoint file line {records.unreadable[0]} is malformed")
            log.error("checkpoint file line(s) %s malformed: left out (pdv audit verify reports them)",
                      ", ".join(map(str, records.unreadable[:10])))
        lines: list[tuple[int, Checkpoint | SignedRecord]] = list(zip(records.checkpoint_lines, records.checkpoints))
        for n, kind, d in records.other:  # one missing its text or signature verifies as nothing
            lines.append((n, SignedRecord(kind, str(d.get("record", "")), str(d.get("signature", "")))))
        return [line for _, line in sorted(lines, key=lambda x: x[0])]


class AuditChain:
    """This process's chain: seals rows (under `lock`, held by the store until commit) and checkpoints."""

    def __init__(
        self, key: bytes, repo: AuditRepository, signer: Signer, sink: CheckpointFile,
        clock: Callable[[], datetime], checkpoint_entries: int, checkpoint_seconds: float,
    ) -> None:
        self.lock = threading.Lock()
        self._key = key
        self._repo = repo
        self._signer = signer
        self._sink = sink
        self._clock = clock
        self._every = checkpoint_entries
        self._seconds = checkpoint_seconds
        self._head = ChainHead(secrets.token_hex(16), 0, GENESIS)  # committed; replaced whole, read without a lock
        self._fresh = False  # the next seal starts a new chain (see abandon)
        self._checkpointed = 0
        self._attempted = 0  # a failed checkpoint is retried one threshold later, not on every commit
        self._unstored: list[Checkpoint] = []  # in the file, not yet in the database
        self._checkpointing = threading.Lock()  # the thread and close() never checkpoint at once
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # For the metrics: when a checkpoint last covered the head (signed and filed, or nothing new
        # to cover), and how many failed.
        self.last_checkpoint_monotonic = time.monotonic()
        self.checkpoint_failures = 0

    def __repr__(self) -> str:
        return f"AuditChain(chain_id={self.chain_id!r})"

    @property
    def unchecked_entries(self) -> int:
        """Entries committed to this chain since its last signed checkpoint (what a cut could lose unnoticed)."""
        return max(0, self._head.seq - self._checkpointed)

    @property
    def chain_id(self) -> str:
        return self._head.chain_id

    def start(self) -> None:
        """Anchor the new chain (a signed checkpoint at seq 0, in the file, then the database),
        register it and start the checkpoint thread.

        The start checkpoint means a configured checkpoint file holds a line for every process
        chain from its first moment: a missing or emptied file is then always a finding.

        Raises:
            KeyUnavailable: Vault could not sign it.
            ConfigError: the checkpoint file cannot be written.
        """
        cp = self._sign(self.chain_id, 0, GENESIS)
        try:
            self._sink.append(cp)
        except OSError as exc:
            raise ConfigError(f"audit_checkpoint_file: cannot append to {self._sink.path} ({exc.strerror})") from None
        self._repo.register_chain(self.chain_id, self._clock(), GENESIS)
        self._repo.add_checkpoint(cp)
        self.last_checkpoint_monotonic = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="pdv-audit-checkpoints", daemon=True)
        self._thread.start()

    def _sign(self, chain_id: str, seq: int, mac: bytes) -> Checkpoint:
        cp_at = iso(self._clock())
        (signature,) = self._signer.sign([checkpoint_payload(chain_id, seq, mac, cp_at)])
        return Checkpoint(chain_id, seq, mac, cp_at, signature)

    def seal(self, rows: Sequence[tuple]) -> tuple[list[tuple], ChainHead]:
        """Entries (ENTRY_COLUMNS order) with (chain id, seq, mac) appended, and the head they
        lead to (not yet committed). The MAC covers an entry's columns and its items column."""
        key = self._key
        if self._fresh:
            chain_id, seq, mac = secrets.token_hex(16), 0, GENESIS
        else:
            chain_id, seq, mac = self._head
        out, memo = [], {}  # the rows of one transaction share most of their values
        for row in rows:
            seq += 1
            mac = chain_mac(key, mac, encode_entry_items(chain_id, seq, micros(row[0]), row[1:9], row[9], memo))
            out.append((*row, chain_id, seq, mac))
        return out, ChainHead(chain_id, seq, mac, new=self._fresh)

    def advance(self, head: ChainHead) -> None:
        """The sealed rows committed: move the head, and wake the checkpointer past a threshold."""
        if head.new:
            with self._checkpointing:
                self._head, self._fresh, self._checkpointed, self._attempted = head, False, 0, 0
        else:
            self._head = head
        # A chain started after a failed write has no start checkpoint: anchor it at once.
        if head.new or head.seq - self._attempted >= self._every:
            self._wake.set()

    def abandon(self) -> None:
        """A transaction failed after its rows were sealed. It most likely rolled back, but a
        commit can fail after landing; rather than guess, the next rows start a fresh chain
        (the old one stays valid up to whatever it committed)."""
        self._fresh = True

    def checkpoint(self) -> bool:
        """Sign and store the committed head if it moved since the last checkpoint.

        Returns False (after logging why) when Vault, the database or the file failed.
        """
        with self._checkpointing:
            return self._checkpoint()

    def _checkpoint(self) -> bool:
        # The file first, then the database: a checkpoint in the database is always in the file
        # too, so one the file lacks is a deleted line, never an honest failure. A crash or a
        # failed insert between the two leaves a checkpoint the file has and the database
        # lacks, which verify checks against the log and notes (the insert is retried here).
        stored = self._store_unstored()
        chain_id, seq, mac = self._head
        if seq <= self._checkpointed:
            if stored:
                self.last_checkpoint_monotonic = time.monotonic()  # the head is covered as of now
            return stored
        self._attempted = seq
        try:
            cp = self._sign(chain_id, seq, mac)
        except PdvError as exc:
            log.error("audit checkpoint of chain %s at seq %d failed (%s); retrying at the next threshold",
                      chain_id, seq, exc)
            self.checkpoint_failures += 1
            return False
        try:
            self._sink.append(cp)
        except OSError as exc:
            log.error("could not append the audit checkpoint of chain %s at seq %d to the file (%s); "
                      "retrying at the next threshold", chain_id, seq, exc.strerror)
            self.checkpoint_failures += 1
            return False
        self._checkpointed = seq
        self.last_checkpoint_monotonic = time.monotonic()
        self._unstored.append(cp)
        return self._store_unstored()

    def _store_unstored(self) -> bool:
        """Store in the database the checkpoints already in the file; False if one failed."""
        while self._unstored:
            cp = self._unstored[0]
            try:
                self._repo.add_checkpoint(cp)
            except PdvError as exc:
                log.error("could not store the audit checkpoint of chain %s at seq %d in the database (%s); "
                          "it is in the file; retrying at the next checkpoint", cp.chain_id, cp.seq, exc)
                return False
            self._unstored.pop(0)
        return True

    def close(self, final_checkpoint: bool = True) -> None:
        """Stop the thread; checkpoint the head once more so a clean stop leaves no open tail."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if final_checkpoint:
            self.checkpoint()

    def _run(self) -> None:
        # The time bound counts from when the last checkpoint read the head, not from when it
        # finished signing: an entry committed at t is in the file by t + T + one checkpoint.
        due = time.monotonic() + self._seconds
        while not self._stop.is_set():
            self._wake.wait(timeout=max(0.0, due - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            due = time.monotonic() + self._seconds
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - the thread must outlive one bad checkpoint
                log.exception("audit checkpoint failed")
