"""`pdv bench`'s figures for anchoring the access log outside the database.

What one checkpoint costs (a Vault ed25519 sign, an fsync'd append to the checkpoint file,
an insert into `audit_checkpoints`), measured in this process against the bench's Vault and
an empty database of the bench's kind: wall time and this process's CPU time per checkpoint.
With the checkpoints/s a tokenize run made, the product is the share of a core anchoring
takes (the paired tokenize runs, at the defaults and with checkpoints rare, show it too).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from vault.bootstrap import build_vault, utc_now
from vault.cli.bench_db_floor import empty_store
from vault.config import Settings
from vault.services.audit import AuditChain, CheckpointFile
from vault.storage.audit_log import AuditRepository


def checkpoint_cost(settings: Settings, database: str, pg_admin_url: str, checkpoints: int = 200) -> dict[str, float]:
    """Mean wall and CPU milliseconds of one checkpoint, each after one committed log entry."""
    _, signer = build_vault(settings)
    with tempfile.TemporaryDirectory(prefix="pdv-bench-anchor-") as tmp, empty_store(database, pg_admin_url) as store:
        chain = AuditChain(bytes(32), AuditRepository(store), signer, CheckpointFile(Path(tmp) / "cp.jsonl"),
                           utc_now, 10**12, 10**6)  # no thread-driven checkpoint: only the ones timed here
        chain.start()
        store.attach_chain(chain)
        wall = cpu = 0.0
        try:
            for n in range(checkpoints):
                with store.transaction() as tx:
                    tx.log_access([(utc_now(), f"anchor-{n}", "bench", "tokenize", "bench", "sub", "email", "tok", "ok")])
                w0, c0 = time.perf_counter(), time.process_time()
                if not chain.checkpoint():
                    raise RuntimeError("a bench checkpoint failed; see the log")
                wall += time.perf_counter() - w0
                cpu += time.process_time() - c0
        finally:
            chain.close(final_checkpoint=False)
    return {"audit_checkpoint_ms": wall / checkpoints * 1000, "audit_checkpoint_cpu_ms": cpu / checkpoints * 1000}

