"""How `pdv audit verify` prints its verdict, whether the log was read here (--local) or by the
server (AdminService.VerifyAuditLog): one wording, so an auditor's scripts read either."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def print_verdict(intact: bool, *, problem_count: int, entries: int, items: int | None, chains: int,
                  checkpoints: int, problems: Sequence[object], unlisted: int, listed_at_most: int,
                  notes: Sequence[str]) -> int:
    """Print the verdict (problems on stderr), then the notes; return the exit code (1 if tampered).
    `items` is None where the verdict does not count them (the server's answer)."""
    counted = f"{entries} entries, {items} items," if items is not None else f"{entries} entries"
    if not intact:
        print(f"audit log TAMPERED: {problem_count} problem{'s' if problem_count != 1 else ''} found "
              f"({counted} in {chains} chain(s))", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        if unlisted:
            print(f"  ... and {unlisted} more not listed (the first {listed_at_most} are)", file=sys.stderr)
    else:
        with_items = f", {items} items" if items is not None else ""
        print(f"audit log intact: {entries} entries in {chains} chain(s){with_items}, "
              f"{checkpoints} signed checkpoint(s) verified", flush=True)
    for note in notes:  # after the verdict: what an auditor reads first is intact or not
        print(f"note: {note}", file=sys.stderr)
    return 0 if intact else 1
