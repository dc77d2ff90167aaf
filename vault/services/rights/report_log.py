"""The access report's one door into the access log: a subject's entries, and whether each
entry the report cites verifies.

TEMPORARY ADAPTER, until the access-log redesign (branch h/log) lands. Then these two
functions become `AuditRepository.subject_entries(subject_id, since, until)` (read through
the per-subject index, so a report's time stays flat as the log grows) and
`vault.services.audit_verify.verify_cited(entry_ids)`; nothing else in the report changes.

Until then:
- `subject_entries` reads `AuditRepository.entries(EntryFilter(subject_id=...))`, the scan
  that exists today: its time grows with the whole log, not with the subject's entries.
- `verify_cited` checks each cited entry on its own: its MAC must be HMAC(chain key, the
  stored MAC of its chain predecessor || its own encoding). An entry edited by anyone
  without the chain key fails; an entry whose predecessor is missing (deleted) fails. What it
  cannot see, `pdv audit verify` does: a deleted entry of this subject (nothing cites it), or
  a chain rewritten wholesale by someone holding the key.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from vault.crypto.audit import GENESIS, chain_mac, encode_entry
from vault.services.audit import micros
from vault.storage.audit_log import AuditRepository, Entry, EntryFilter

METHOD = ("each cited entry's MAC recomputed from its own content and its chain predecessor's stored MAC "
          "(pdv audit verify checks the whole log, deletions included)")


def subject_entries(repo: AuditRepository, subject_id: str) -> Iterator[Entry]:
    """The subject's access-log entries, oldest first (item-level, in the `Entry` shape)."""
    return repo.entries(EntryFilter(subject_id=subject_id))


def verify_cited(repo: AuditRepository, key: bytes, cited: list[Entry]) -> dict[int, bool]:
    """Entry id -> whether that entry verifies (see the module docstring for what that proves)."""
    before = repo.macs_before(cited)
    out = {}
    for e in cited:
        if e.chain_id is None or e.seq is None or e.mac is None:
            out[e.id] = False  # written without a chain, or forged
            continue
        prev = GENESIS if e.seq <= 1 else before.get(e.id)
        if prev is None:
            out[e.id] = False
            continue
        expected = chain_mac(key, prev, encode_entry(e.chain_id, e.seq, micros(e.at), e.fields))
        out[e.id] = hmac.compare_digest(expected, e.mac)
    return out
