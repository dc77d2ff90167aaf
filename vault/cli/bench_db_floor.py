"""`pdv bench`'s database floor: what the database alone takes of the rows PDV writes and reads.

A batched tokenize of new subjects looks up its deterministic tokens, then commits, per
batch: a subject and a wrapped data key per record, a value row per field (a random-kind
field's with a sequential locator and check, as PDV writes it), one chained
access-log entry for the request (its items encoded, vault.storage.access_items) with a
per-subject index row per record, the answer kept for retries with a row per record, and
the chain's head. A batched detokenize reads each token's value row with its key row and
commits one entry with an index row per subject read. Here the
same rows, of the same shapes and sizes but made before the clock starts, go through the
store's own statements (COPY on PostgreSQL, executemany on SQLite), one transaction a
batch and as many at once as the bench keeps in flight, into an empty database of PDV's schema: no validation, tokens, encryption, HMACs,
policy or gRPC. No tokenize or detokenize on this machine's database can beat these rates.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from vault.catalog import TokenKind, load_catalog
from vault.crypto.locators import CHECK_BYTES
from vault.crypto.tokens import random_token
from vault.policy import DEFAULT_DOMAIN
from vault.services.tokenize_model import new_subject_id
from vault.storage import migrate
from vault.storage.engine import create_store_engine
from vault.storage.access_items import group_requests
from vault.storage.rows import ChainHead
from vault.storage.scratch import create_scratch_database, drop_database
from vault.storage.store import Store, Tx

# Sizes as PDV stores them: a sealed value is its plaintext plus format byte, key version,
# 96-bit nonce and 128-bit tag; a wrapped DEK is Transit's `vault:v1:` and base64 of 60 bytes.
SEAL_OVERHEAD = 1 + 4 + 12 + 16
WRAPPED_DEK = "vault:v1:" + "A" * 80
MAC = 32


@contextmanager
def empty_store(database: str, pg_admin_url: str) -> Iterator[Store]:
    """A store on a new, migrated database of the bench's kind, dropped afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="pdv-bench-floor-"))
    url = f"sqlite:///{workdir / 'floor.db'}" if database == "sqlite" else create_scratch_database(pg_admin_url, "pdv_floor")
    try:
        engine = create_store_engine(url)
        migrate.upgrade(engine)
        store = Store(engine)
        try:
            yield store
        finally:
            store.close()
    finally:
        if database != "sqlite":
            drop_database(pg_admin_url, url)
        shutil.rmtree(workdir, ignore_errors=True)


class DatabaseFloor:
    """Tokenize's and detokenize's rows, through the store alone (see the module doc).

    `inflight` transactions run at once, as the bench keeps that many batched calls in
    flight; each has an access-log chain of its own, so none waits on another's chain head.
    """

    def __init__(self, store: Store, purpose: str, inflight: int = 1) -> None:
        self.store, self.purpose, self.inflight = store, purpose, inflight
        self.tokens: list[str] = []  # what tokenize_rate stored, for detokenize_rate
        self.subject_of: dict[str, str] = {}
        self.located: dict[str, tuple[int, bytes]] = {}  # a sequential token's locator and check
        self._next_locator = 1
        self._catalog = load_catalog()
        self._chains = [ChainHead(secrets.token_hex(16), 0, b"\0" * MAC, new=True) for _ in range(inflight)]

    def tokenize_rate(self, records: list[dict[str, str]], batch: int) -> float:
        """Fields/s committed, `batch` records a transaction."""
        starts = range(0, len(records), batch)
        batches = [self._tokenize_rows(records[s:s + batch], s, n % self.inflight) for n, s in enumerate(starts)]

        def write(rows: tuple) -> int:
            subjects, keys, values, (log, head), request, stored, deterministic = rows
            with self.store.transaction() as tx:
                tx.existing_values(deterministic)  # a deterministic token may be stored already
                tx.queue_tokenized(subjects, keys, values, request, stored)
                tx.record_holders([(s[0], DEFAULT_DOMAIN, s[2]) for s in subjects], subjects[0][1], True)  # the ledger
                _write_log(tx, log, head)
            return len(values)

        fields, seconds = self._run(write, batches)
        return fields / seconds

    def detokenize_rate(self, batch: int) -> float:
        """Tokens/s read and logged, `batch` tokens a transaction.

        Raises:
            RuntimeError: a read did not find every token tokenize_rate stored.
        """
        now = datetime.now(timezone.utc)
        batches = [sorted(self.tokens[s:s + batch]) for s in range(0, len(self.tokens), batch)]
        work = [(tokens, self._chained(n % self.inflight, [
            (now, f"floor-read-{n}", "bench", "detokenize", self.purpose, self.subject_of[t], None, t, "ok") for t in tokens
        ])) for n, tokens in enumerate(batches)]

        def read(item: tuple) -> int:
            tokens, (log, head) = item
            with self.store.transaction() as tx:
                located = [self.located[t] for t in tokens if t in self.located]
                found = len(tx.values_for_tokens(tokens, self.purpose, None, located))
                _write_log(tx, log, head)
            return found

        found, seconds = self._run(read, work)
        if found != len(self.tokens):
            raise RuntimeError(f"the floor's reads found {found} of the {len(self.tokens)} values it stored")
        return len(self.tokens) / seconds

    def _run(self, one: Callable[[tuple], int], items: list[tuple]) -> tuple[int, float]:
        """Run `one` over `items`, `inflight` at a time, each chain's items in order; (sum of results, seconds)."""
        lanes = [items[k::self.inflight] for k in range(self.inflight)]
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.inflight) as pool:
            total = sum(pool.map(lambda lane: sum(one(item) for item in lane), lanes))
        return total, time.perf_counter() - start

    def _tokenize_rows(self, records: list[dict[str, str]], first: int, chain: int) -> tuple:
        now = datetime.now(timezone.utc)
        request_id = f"floor-{first}"
        subjects, keys, values, log, stored, deterministic = [], [], [], [], [], []
        for position, fields in enumerate(records):
            subject = new_subject_id()
            subjects.append((subject, now, "bench"))
            keys.append((subject, 1, WRAPPED_DEK, 1, len(fields), now))
            tokens = {}
            for name, value in fields.items():
                spec, token = self._catalog.field(name), random_token()
                locator = check = None
                if spec.token_kind is TokenKind.RANDOM:  # a sequential token's row, as PDV writes it (0013)
                    locator, check, self._next_locator = self._next_locator, os.urandom(CHECK_BYTES), self._next_locator + 1
                    self.located[token] = (locator, check)
                tokens[name] = token
                self.tokens.append(token)
                self.subject_of[token] = subject
                if spec.token_kind is TokenKind.DETERMINISTIC:
                    deterministic.append((token, name, subject))
                values.append((
                    subject, name, token, 1, os.urandom(len(value.encode()) + SEAL_OVERHEAD),
                    os.urandom(MAC) if spec.searchable else None,
                    self.purpose, "bench", None, now, now + spec.retention_for(self.purpose), False, DEFAULT_DOMAIN,
                    locator, check,
                ))
                log.append((now, request_id, "bench", "tokenize", self.purpose, subject, name, token, "ok"))
            stored.append((position, subject, json.dumps(tokens)))
        request = ("bench", request_id, os.urandom(MAC), json.dumps({"records": len(records), "errors": []}), now)
        return subjects, keys, values, self._chained(chain, log), request, stored, deterministic

    def _chained(self, chain: int, rows: list[tuple]) -> tuple[list[tuple], ChainHead]:
        """The request's entry with chain columns, as PDV seals it, but with its items encoded
        and a MAC drawn now: the floor neither encodes nor computes an HMAC on the clock."""
        chain_id, seq, _ = current = self._chains[chain]
        sealed = [(*row, chain_id, seq + i, os.urandom(MAC)) for i, row in enumerate(group_requests(rows), 1)]
        head = ChainHead(chain_id, seq + len(sealed), sealed[-1][-1], new=current.new)
        self._chains[chain] = ChainHead(chain_id, head.seq, head.mac)
        return sealed, head


def _write_log(tx: Tx, rows: list[tuple], head: ChainHead) -> None:
    tx.add_entries(rows)
    tx.save_chain_head(head, rows[0][0])
