"""Reading and writing the ledger tables. Functions here never commit: ``services.audit`` owns transactions.

Writes go through SQLAlchemy Core on a connection inside the caller's transaction, after
:func:`lock_for_append` has serialised appenders across processes (PostgreSQL: a transaction-scoped
advisory lock; SQLite: the ``BEGIN IMMEDIATE`` the engine already issues). The SQLite ledger writer
instead appends through :class:`DbapiAppend`, the same statements on a plain DB-API cursor: a group
commit then spends no time in SQLAlchemy's connection and transaction layers.

Reads go through :class:`LedgerReader`: one consistent snapshot on a plain DB-API connection (a
deferred ``BEGIN`` on SQLite, so a long verify never holds the write lock; ``REPEATABLE READ, READ
ONLY`` on PostgreSQL), with batched fetches and a server-side cursor for full scans.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, insert, text

from bastion.errors import StoreError
from bastion.ledger.appender import AppendedEntry
from bastion.ledger.heads import TreeHead
from bastion.ledger.merkle import TILE_LEVEL, ClosedNode
from bastion.ledger.verify import EntryRecord
from bastion.store.ledger_tables import LedgerNodeRow, LedgerTreeHeadRow

#: ``pg_advisory_xact_lock`` key that serialises ledger appenders ("LEDGER" + 1).
PG_APPEND_LOCK = 0x4C4544474552_0001

_NODES = LedgerNodeRow
_HEADS = LedgerTreeHeadRow


@dataclass(frozen=True, slots=True)
class Tip:
    """The last entry of the log, as appenders need it."""

    size: int
    last_time: str
    last_leaf: bytes


def lock_for_append(conn: Connection) -> None:
    """Serialise appenders for the rest of ``conn``'s transaction (across processes)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_APPEND_LOCK})
    # SQLite: the engine began this transaction with BEGIN IMMEDIATE, which holds the write lock.


_TIP = "SELECT seq, timestamp, leaf_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1"


def read_tip(conn: Connection) -> Tip:
    """Size, last timestamp and last leaf hash, read inside the append lock."""
    row = conn.exec_driver_sql(_TIP).first()  # plain SQL, no parameters: no compile step per append
    if row is None:
        return Tip(0, "", b"")
    return Tip(int(row[0]) + 1, str(row[1]), bytes(row[2]))


_INSERT_ENTRIES = "INSERT INTO ledger_entries (seq, timestamp, tag, actor, canonical, leaf_hash) VALUES "
_VALUES_QMARK = "(?, ?, ?, ?, ?, ?)"
_VALUES_FORMAT = "(%s, %s, %s, %s, %s, %s)"


def insert_entries(conn: Connection, entries: Sequence[AppendedEntry]) -> None:
    """Insert appended entries (one executemany; plain tuples keep the hot path short)."""
    if entries:
        values = _VALUES_QMARK if conn.dialect.paramstyle == "qmark" else _VALUES_FORMAT
        conn.exec_driver_sql(
            _INSERT_ENTRIES + values, [(e.seq, e.time, e.tag, e.actor, e.data, e.leaf) for e in entries]
        )


def insert_nodes(conn: Connection, nodes: Sequence[ClosedNode]) -> None:
    """Store complete subtree hashes."""
    if nodes:
        conn.execute(insert(_NODES), [{"level": n.level, "idx": n.index, "hash": n.hash} for n in nodes])


def insert_tree_head(conn: Connection, head: TreeHead) -> None:
    """Store a signed tree head."""
    conn.execute(
        insert(_HEADS),
        {
            "tree_size": head.tree_size,
            "root_hash": head.root_hash,
            "timestamp": head.timestamp,
            "key_id": head.key_id,
            "signature": head.signature,
        },
    )


def get_tree_head(conn: Connection, tree_size: int) -> TreeHead | None:
    """The stored tree head for ``tree_size``, if any."""
    row = conn.execute(
        text(
            "SELECT tree_size, root_hash, timestamp, key_id, signature FROM ledger_tree_heads WHERE tree_size = :n"
        ),
        {"n": tree_size},
    ).first()
    return _head(row) if row is not None else None


def _head(row: Sequence[Any]) -> TreeHead:
    return TreeHead(int(row[0]), bytes(row[1]), str(row[2]), str(row[3]), bytes(row[4]))


class LedgerReader:
    """A consistent read snapshot of the ledger tables (use as a context manager).

    Also a :class:`bastion.ledger.merkle.NodeSource`, so proofs are generated straight from it.
    """

    def __init__(self, engine: Engine) -> None:
        self._sqlite = engine.dialect.name == "sqlite"
        try:
            self._raw = engine.raw_connection()
            cur = self._raw.cursor()
            if self._sqlite:
                cur.execute("BEGIN")  # deferred: a read snapshot that does not block the writer
            else:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.close()
        except Exception as e:
            raise StoreError(f"cannot read the ledger: {e.__class__.__name__}: {e}") from e

    def __enter__(self) -> LedgerReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the snapshot and give the connection back to the pool."""
        try:
            self._raw.rollback()
        finally:
            self._raw.close()

    def _sql(self, sql: str) -> str:
        return sql if self._sqlite else sql.replace("?", "%s")

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            cur = self._raw.cursor()
            cur.execute(self._sql(sql), tuple(params))
            rows = cur.fetchall()
            cur.close()
        except Exception as e:
            raise StoreError(f"reading the ledger failed: {e.__class__.__name__}: {e}") from e
        return list(rows)

    def size(self) -> int:
        """The number of entries (the last seq + 1)."""
        rows = self._all("SELECT max(seq) FROM ledger_entries")
        return 0 if rows[0][0] is None else int(rows[0][0]) + 1

    def count(self) -> int:
        """The number of rows (differs from :meth:`size` only if rows were deleted)."""
        return int(self._all("SELECT count(*) FROM ledger_entries")[0][0])

    def tree_heads(self) -> list[TreeHead]:
        """Every signed tree head, smallest first."""
        rows = self._all(
            "SELECT tree_size, root_hash, timestamp, key_id, signature FROM ledger_tree_heads ORDER BY tree_size"
        )
        return [_head(r) for r in rows]

    def latest_tree_head(self) -> TreeHead | None:
        rows = self._all(
            "SELECT tree_size, root_hash, timestamp, key_id, signature FROM ledger_tree_heads "
            "ORDER BY tree_size DESC LIMIT 1"
        )
        return _head(rows[0]) if rows else None

    def tree_head(self, tree_size: int) -> TreeHead | None:
        rows = self._all(
            "SELECT tree_size, root_hash, timestamp, key_id, signature FROM ledger_tree_heads WHERE tree_size = ?",
            (tree_size,),
        )
        return _head(rows[0]) if rows else None

    def stored_nodes(self) -> dict[tuple[int, int], bytes]:
        """Every stored complete subtree hash."""
        return {
            (int(r[0]), int(r[1])): bytes(r[2])
            for r in self._all("SELECT level, idx, hash FROM ledger_nodes")
        }

    # NodeSource
    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self._all(
            "SELECT leaf_hash FROM ledger_entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop)
        )
        return [bytes(r[0]) for r in rows]

    def stored_node(self, level: int, index: int) -> bytes | None:
        if level < TILE_LEVEL:
            return None
        rows = self._all("SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?", (level, index))
        return bytes(rows[0][0]) if rows else None

    def entry(self, seq: int) -> bytes | None:
        """The canonical bytes of entry ``seq``."""
        rows = self._all("SELECT canonical FROM ledger_entries WHERE seq = ?", (seq,))
        return bytes(rows[0][0]) if rows else None

    def tail(self, n: int) -> list[bytes]:
        """The canonical bytes of the last ``n`` entries, oldest first."""
        rows = self._all("SELECT canonical FROM ledger_entries ORDER BY seq DESC LIMIT ?", (n,))
        return [bytes(r[0]) for r in reversed(rows)]

    def scan(self, batch: int = 20_000) -> Generator[list[EntryRecord], None, None]:
        """Every entry in seq order, in batches (a server-side cursor on PostgreSQL).

        Close the generator (or exhaust it) before closing the reader.
        """
        # The indexed columns come back as one string (verify.index_key): far fewer objects per row.
        sql = (
            "SELECT seq, timestamp || '|' || tag || '|' || actor, canonical, leaf_hash "
            "FROM ledger_entries ORDER BY seq"
        )
        try:
            if self._sqlite:
                cur = self._raw.cursor()
            else:
                cur = self._raw.driver_connection.cursor(name="bastion_ledger_scan")  # type: ignore[union-attr]
            cur.execute(sql)
        except Exception as e:
            raise StoreError(f"reading the ledger failed: {e.__class__.__name__}: {e}") from e
        try:
            while True:
                try:
                    rows = cur.fetchmany(batch)
                except Exception as e:
                    raise StoreError(f"reading the ledger failed: {e.__class__.__name__}: {e}") from e
                if not rows:
                    break
                if self._sqlite:
                    yield list(rows)
                else:
                    yield [(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in rows]
        finally:
            cur.close()


_TILE_LEAVES = "SELECT leaf_hash FROM ledger_entries WHERE seq >= ? AND seq < ? ORDER BY seq"
_STORED_NODE = "SELECT hash FROM ledger_nodes WHERE level = ? AND idx = ?"
_INSERT_NODES = "INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)"
_INSERT_HEAD = "INSERT INTO ledger_tree_heads (tree_size, root_hash, timestamp, key_id, signature) VALUES (?, ?, ?, ?, ?)"


class DbapiAppend:
    """The append statements on a DB-API cursor of SQLite (``qmark`` parameters), inside a transaction
    the caller began with ``BEGIN IMMEDIATE`` (which is the append lock). Also a
    :class:`bastion.ledger.merkle.NodeSource`, for loading the right edge when another process appended.
    """

    def __init__(self, cursor: Any) -> None:
        self._cur = cursor

    def read_tip(self) -> Tip:
        """As :func:`read_tip`."""
        row = self._cur.execute(_TIP).fetchone()
        if row is None:
            return Tip(0, "", b"")
        return Tip(int(row[0]) + 1, str(row[1]), bytes(row[2]))

    def insert_entries(self, entries: Sequence[AppendedEntry]) -> None:
        """As :func:`insert_entries`."""
        if entries:
            self._cur.executemany(
                _INSERT_ENTRIES + _VALUES_QMARK,
                [(e.seq, e.time, e.tag, e.actor, e.data, e.leaf) for e in entries],
            )

    def insert_nodes(self, nodes: Sequence[ClosedNode]) -> None:
        """As :func:`insert_nodes`."""
        if nodes:
            self._cur.executemany(_INSERT_NODES, [(n.level, n.index, n.hash) for n in nodes])

    def insert_tree_head(self, head: TreeHead) -> None:
        """As :func:`insert_tree_head`."""
        self._cur.execute(
            _INSERT_HEAD, (head.tree_size, head.root_hash, head.timestamp, head.key_id, head.signature)
        )

    # NodeSource
    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        return [bytes(r[0]) for r in self._cur.execute(_TILE_LEAVES, (start, stop)).fetchall()]

    def stored_node(self, level: int, index: int) -> bytes | None:
        if level < TILE_LEVEL:
            return None
        row = self._cur.execute(_STORED_NODE, (level, index)).fetchone()
        return bytes(row[0]) if row is not None else None


class ConnectionSource:
    """A :class:`bastion.ledger.merkle.NodeSource` on a connection inside an append transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self._conn.execute(
            text("SELECT leaf_hash FROM ledger_entries WHERE seq >= :a AND seq < :b ORDER BY seq"),
            {"a": start, "b": stop},
        )
        return [bytes(r[0]) for r in rows]

    def stored_node(self, level: int, index: int) -> bytes | None:
        if level < TILE_LEVEL:
            return None
        row = self._conn.execute(
            text("SELECT hash FROM ledger_nodes WHERE level = :l AND idx = :i"), {"l": level, "i": index}
        ).first()
        return bytes(row[0]) if row is not None else None
