"""The next free locator of sequential tokens (migration 0013): reserved a block at a time."""

from __future__ import annotations

from vault.storage.store import Store

NAME = "field_values"


def reserve_block(store: Store, size: int) -> int:
    """Reserve `size` consecutive locators in a transaction of their own; the first of them.

    Each server (process) holds its own block, so concurrent writers never take the same
    locator and each appends its rows in order; a block unused when a server stops is a gap.
    """
    with store.transaction() as tx:
        m = tx.marks(1)
        ((after,),) = tx.fetch(f"UPDATE locator_blocks SET next = next + {m} WHERE name = {m} RETURNING next",
                               (size, NAME))
    return int(after) - size
