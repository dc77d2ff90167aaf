"""Queries of KEK rotation: find wrapped keys below a KEK version, swap them optimistically.

Every write is conditional on the row still holding the wrapped text that was read
(`... AND wrapped = <old>`), so a rewrap running next to the live server never overwrites a
concurrent change: a shredded or already rewrapped row is simply not matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from vault.domain import WrappedKey
from vault.storage.store import Store


@dataclass(frozen=True, slots=True)
class WrappedRow:
    """One data_keys row to rewrap: its primary key, wrapped text and place in the scan order."""

    subject_id: str
    version: int
    wrapped: str
    position: tuple  # opaque: pass the last row's to keys_below to continue after it


@dataclass(frozen=True, slots=True)
class Rewrapped:
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

        Keyset pagination: each chunk starts where the last one ended, at index cost, and a
        restarted rewrap needs no saved position because finished rows no longer match.
        PostgreSQL walks the primary key. SQLite walks the rowid, i.e. the order rows sit on
        disk: the primary-key order of random subject ids would dirty a different page for
        nearly every row of a chunk. A rowid renumbered by VACUUM mid-scan only means a row is
        met in the next pass, since what is left is always `kek_version < latest`.
        """
        m = self._mark
        if self._postgres:
            sql = "SELECT subject_id, version, wrapped, subject_id, version FROM data_keys WHERE kek_version < %s"
            if after is not None:
                sql += " AND (subject_id, version) > (%s, %s)"  # a range on the primary key
            sql += " ORDER BY subject_id, version LIMIT %s"
        else:
            sql = "SELECT subject_id, version, wrapped, rowid FROM data_keys WHERE kek_version < ?"
            if after is not None:
                sql += " AND rowid > ?"
            sql += " ORDER BY rowid LIMIT ?"
        params = (kek_version, *(after or ()), limit)
        with self._store.snapshot() as tx:
            rows = tx.conn.exec_driver_sql(sql, params).fetchall()
        return [WrappedRow(r[0], int(r[1]), r[2], tuple(r[3:])) for r in rows]

    def replace_keys(self, changes: Sequence[Rewrapped]) -> int:
        """Store each new wrapped text where the row still holds the old one; the number stored."""
        if not changes:
            return 0
        with self._store.transaction() as tx:
            if self._postgres:
                # One statement per chunk: a per-row executemany costs a round trip each.
                result = tx.conn.exec_driver_sql(
                    "UPDATE data_keys AS d SET wrapped = n.new, kek_version = n.kek "
                    "FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::int[]) "
                    "AS n(subject_id, version, old, new, kek) "
                    "WHERE d.subject_id = n.subject_id AND d.version = n.version AND d.wrapped = n.old",
                    (
                        [c.subject_id for c in changes], [c.version for c in changes], [c.old for c in changes],
                        [c.new.ciphertext for c in changes], [c.new.kek_version for c in changes],
                    ),
                )
                return int(result.rowcount)
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
