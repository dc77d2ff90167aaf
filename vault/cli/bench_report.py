"""`pdv bench --report-log`: what the access log costs one access report as the log grows.

A report reads the subject's entries through the per-subject index (`access_subjects`) and
checks each cited entry against its chain up to the next signed checkpoint
(vault/services/audit_cited.py); the rest of a report reads the subject's own rows, whose
cost does not depend on the log. This fills an empty database of the bench's kind with
chained, checkpointed entries (two items each, like a two-field read) until it holds each
size asked for, `accesses` of them (one item each) naming one subject and spread evenly through the log,
and times that subject's log part of the report (median of `repeats`) at each size.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from pathlib import Path

from vault.bootstrap import build_vault, utc_now
from vault.cli.bench_db_floor import empty_store
from vault.config import Settings
from vault.keys.provider import Signer
from vault.services.audit import AuditChain, CheckpointFile
from vault.services.audit_cited import verify_cited
from vault.storage.audit_log import AuditRepository, subject_items

KEY = bytes(32)  # the bench's own chain key: nothing real is chained under it
_PER_TX = 500  # entries a fill transaction writes


def _subject() -> str:
    return "sub_" + secrets.token_urlsafe(16)


def report_log_times(settings: Settings, database: str, pg_admin_url: str, sizes: list[int],
                     accesses: int = 1000, repeats: int = 5) -> dict[str, float]:
    """{"report_log_ms_<size>": median milliseconds, …}, each size on a database of its own."""
    _, signer = build_vault(settings)
    out: dict[str, float] = {}
    for size in sorted(sizes):
        ms, cited, rate = _one_size(signer, database, pg_admin_url, size, accesses, repeats)
        out[f"report_log_ms_{size}"], out[f"report_log_accesses_{size}"] = ms, cited
        out[f"report_log_fill_entries_per_s_{size}"] = rate
    return out


def _one_size(signer: Signer, database: str, pg_admin_url: str, size: int, accesses: int,
              repeats: int) -> tuple[float, int, float]:
    target = _subject()
    every = max(1, size // accesses)  # the subject's accesses, spread through the log
    with tempfile.TemporaryDirectory(prefix="pdv-bench-report-") as tmp, empty_store(database, pg_admin_url) as store:
        sink = CheckpointFile(Path(tmp) / "checkpoints.jsonl")
        repo = AuditRepository(store)
        chain = AuditChain(KEY, repo, signer, sink, utc_now, 1000, 1)
        chain.start()
        store.attach_chain(chain)
        try:
            t0 = time.perf_counter()
            for start in range(0, size, _PER_TX):
                rows = []
                at = utc_now()
                for i in range(start, min(start + _PER_TX, size)):
                    # the subject's: a one-field read; everyone else's: two fields
                    mine = i % every == 0 and i // every < accesses
                    subject, fields = (target, ("email",)) if mine else (_subject(), ("email", "phone"))
                    rows += [(at, f"r{i}", "bench-reader", "detokenize", "billing", subject, field, f"pdv_{field}", "ok")
                             for field in fields]
                with store.transaction() as tx:
                    tx.log_access(rows)
            rate = size / (time.perf_counter() - t0)
            chain.checkpoint()
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                read = {row.id: row for row in repo.subject_rows(target)}  # as the report reads them
                cited = [e for row in read.values() for e in subject_items(row, target)]
                checks = verify_cited(repo, KEY, signer, sink, list(read), read)
                times.append(time.perf_counter() - t0)
            if not cited or not all(checks.values()):
                raise RuntimeError("the bench's own log does not verify; see the log")
        finally:
            chain.close(final_checkpoint=False)
    return statistics.median(times) * 1000, len(cited), rate
