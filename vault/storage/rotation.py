"""Queries of KEK rotation: find wrapped keys below a KEK version, swap them optimistically.

Every write is conditional on the row still holding the wrapped text that was read
(`... AND wrapped = <old>`), so a rewrap running next to the live server never overwrites a
concurrent change: a shredded or already rewrapped row is simply not matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

from vault.domain import WrappedKey
from vault.storage.store import Store


# Named tuples, not dataclasses: a rewrap makes two of these per stored key, and a tuple is
# built several times faster than a frozen dataclass (a tenth of the rewrap's Python time).
class WrappedRow(NamedTuple):
    """One data_keys row to rewrap: its primary key, wrapped text and place in the scan order."""

    subject_id: str
    version: int
    wrapped: str
    position: tuple  # opaque: pass the last row's to keys_below to continue after it


class Rewrapped(NamedTuple):
    """A row's old wrapped text (the optimistic check) and its replacement."""

    subject_id: str
    version: int
    old: str
    new: WrappedKey
    position: tuple = ()  # the row's WrappedRow.position, when known: a faster way to the row


class RotationRepository:
    """Reads in snapshots, writes one short transaction per chunk."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._postgres = store.dialect == "postgresql"
        self._mark = "%s" if self._postgres else "?"

    def key_counts(self) -> dict[int, int]:
        """data_keys rows per KEK version."""
        with self._store.snapshot() as tx:
            rows = tx.conn.exec_driver_sql("SELECT kek_version, COUNT(*) FROM data_keys GROUP BY kek_version").fetchall()
        return {int(v): int(n) for v, n in rows}

    def secret_counts(self) -> dict[int, int]:
        """wrapped_secrets rows per KEK version (read from Vault's `vault:vN:` prefix)."""
        return dict(Counter(WrappedKey(wrapped).kek_version for _, wrapped in self.secrets()))

    def count_keys_below(self, kek_version: int) -> int:
        with self._store.snapshot() as tx:
            return int(tx.conn.exec_driver_sql(
                f"SELECT COUNT(*) FROM data_keys WHERE kek_version < {self._mark}", (kek_version,)
            ).scalar_one())

    def keys_below(self, kek_version: int, after: tuple | None, limit: int) -> list[WrappedRow]:
        """Up to `limit` rows wrapped below `kek_version`, in scan order after the position `after`.

        Both databases walk the table in the order rows sit on disk, so a chunk's updates dirty
        a few neighbouring pages instead of one random page per row (the primary-key order of
        random subject ids), and each row is found again by its physical address. A restarted
        rewrap needs no saved position: finished rows no longer match.

        SQLite walks the rowid; a rowid renumbered by VACUUM mid-scan only means a row is met in
        the next pass. PostgreSQL walks the ctid in windows of a few pages (a TID range scan
        each, so a window costs the same wherever it is), up to the table's end as it was when
        the pass began: versions that this rewrap writes further on are not read again. A row
        that a concurrent update moved behind the cursor is met in the next pass, since what is
        left is always `kek_version < latest`.
        """
        if self._postgres:
            return self._pages_below(kek_version, after, limit)
        sql = "SELECT subject_id, version, wrapped, rowid FROM data_keys WHERE kek_version < ?"
        if after is not None:
            sql += " AND rowid > ?"
        sql += " ORDER BY rowid LIMIT ?"
        params = (kek_version, *(after or ()), limit)
        with self._store.snapshot() as tx:
            rows = tx.conn.exec_driver_sql(sql, params).fetchall()
        return [WrappedRow(r[0], int(r[1]), r[2], tuple(r[3:])) for r in rows]

    def _pages_below(self, kek_version: int, after: tuple | None, limit: int) -> list[WrappedRow]:
        # position = (the row's ctid, the page where the pass ends, pages per window);
        # ctid > '(p,0)' starts at page p.
        found: list[WrappedRow] = []
        with self._store.snapshot() as tx:
            cursor = tx.conn.connection.driver_connection.cursor()
            try:
                if after is None:
                    cursor.execute(
                        "SELECT pg_relation_size('data_keys') / current_setting('block_size')::bigint, "
                        "COALESCE((SELECT reltuples / NULLIF(relpages, 0) FROM pg_class "
                        "WHERE oid = 'data_keys'::regclass AND reltuples > 0), 0)"
                    )
                    end, per_page = cursor.fetchone()
                    start, window = "(0,0)", _window_pages(limit, per_page)
                else:
                    start, end, window = after
                page = _page_of(start)
                while len(found) < limit and page < end:
                    stop = min(page + window, end)
                    cursor.execute(
                        "SELECT d.ctid::text, d.subject_id, d.version, d.wrapped FROM data_keys AS d "
                        "WHERE d.ctid > %s::tid AND d.ctid < %s::tid AND d.kek_version < %s ORDER BY d.ctid LIMIT %s",
                        (start, f"({stop},0)", kek_version, limit - len(found)),
                    )
                    rows = cursor.fetchall()
                    found += [WrappedRow(r[1], r[2], r[3], (r[0], end, window)) for r in rows]
                    if len(found) < limit:
                        start, page = f"({stop},0)", stop
            finally:
                cursor.close()
        return found

    def replace_keys(self, changes: Sequence[Rewrapped]) -> int:
        """Store each new wrapped text where the row still holds the old one; the number stored."""
        if not changes:
            return 0
        with self._store.transaction() as tx:
            if self._postgres:
                return self._replace_on_postgres(tx, changes)
            cursor = tx.conn.connection.driver_connection.cursor()
            try:
                by_rowid = [c for c in changes if c.position]
                by_key = [c for c in changes if not c.position]
                stored = 0
                if by_rowid:
                    cursor.executemany(
                        "UPDATE data_keys SET wrapped = ?, kek_version = ? "
                        "WHERE rowid = ? AND subject_id = ? AND version = ? AND wrapped = ?",
                        [(c.new.ciphertext, c.new.kek_version, c.position[0], c.subject_id, c.version, c.old) for c in by_rowid],
                    )
                    stored += cursor.rowcount
                if by_key:
                    cursor.executemany(
                        "UPDATE data_keys SET wrapped = ?, kek_version = ? WHERE subject_id = ? AND version = ? AND wrapped = ?",
                        [(c.new.ciphertext, c.new.kek_version, c.subject_id, c.version, c.old) for c in by_key],
                    )
                    stored += cursor.rowcount
                return int(stored)
            finally:
                cursor.close()

    def _replace_on_postgres(self, tx, changes: Sequence[Rewrapped]) -> int:  # type: ignore[no-untyped-def]
        # One statement per chunk (a per-row executemany costs a round trip each), its arrays
        # sent in binary (psycopg quotes text arrays element by element, in Python), first by
        # ctid: a TID lookup instead of a primary-key descent. A row a concurrent update moved
        # since it was read is not at its ctid any more (and a ctid reused after VACUUM holds
        # another wrapped text): whatever did not match is tried once more by primary key,
        # always on the same condition, so only rows still holding the old text change.
        cursor = tx.conn.connection.driver_connection.cursor()
        try:
            by_ctid = [c for c in changes if c.position]
            stored = 0
            if by_ctid:
                cursor.execute(
                    "UPDATE data_keys AS d SET wrapped = n.new, kek_version = n.kek "
                    "FROM unnest(%b::tid[], %b::text[], %b::text[], %b::int[]) AS n(at, old, new, kek) "
                    "WHERE d.ctid = n.at AND d.wrapped = n.old",
                    (
                        [c.position[0] for c in by_ctid], [c.old for c in by_ctid],
                        [c.new.ciphertext for c in by_ctid], [c.new.kek_version for c in by_ctid],
                    ),
                )
                stored = cursor.rowcount
            if stored < len(changes):
                cursor.execute(
                    "UPDATE data_keys AS d SET wrapped = n.new, kek_version = n.kek "
                    "FROM unnest(%b::text[], %b::int[], %b::text[], %b::text[], %b::int[]) "
                    "AS n(subject_id, version, old, new, kek) "
                    "WHERE d.subject_id = n.subject_id AND d.version = n.version AND d.wrapped = n.old",
                    (
                        [c.subject_id for c in changes], [c.version for c in changes], [c.old for c in changes],
                        [c.new.ciphertext for c in changes], [c.new.kek_version for c in changes],
                    ),
                )
                stored += cursor.rowcount
            return stored
        finally:
            cursor.close()

    def secrets(self) -> list[tuple[str, str]]:
        """Every (name, wrapped text) of wrapped_secrets; a handful of rows."""
        with self._store.snapshot() as tx:
            rows = tx.conn.exec_driver_sql("SELECT name, wrapped FROM wrapped_secrets ORDER BY name").fetchall()
        return [(r[0], r[1]) for r in rows]

    def replace_secret(self, name: str, old: str, new: WrappedKey) -> bool:
        """Store `new` for the secret `name` if it still holds `old`."""
        m = self._mark
        with self._store.transaction() as tx:
            result = tx.conn.exec_driver_sql(
                f"UPDATE wrapped_secrets SET wrapped = {m} WHERE name = {m} AND wrapped = {m}", (new.ciphertext, name, old)
            )
            return result.rowcount == 1


def _page_of(ctid: str) -> int:
    return int(ctid.strip("()").split(",")[0])


def _window_pages(limit: int, rows_per_page: float) -> int:
    # Pages expected to hold `limit` rows (a short data_keys row: ~45 per 8 KiB page).
    return max(1, round(limit / (rows_per_page if rows_per_page > 0 else 45)))
