"""Engine construction for SQLite (embedded default, WAL) and PostgreSQL (scale-out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bastion.errors import StoreError


def is_sqlite(url: str) -> bool:
    """True for a ``sqlite://`` URL."""
    return url.startswith("sqlite")


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` to the psycopg 3 driver; leave other URLs as they are."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the single writer; NORMAL is durable at commit in WAL mode
    # except on power loss, FULL keeps "recorded" honest even then.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the lock up front (BEGIN IMMEDIATE) so two writers never deadlock upgrading a
    # read lock; connections marked read-only begin deferred and do not block the ledger writer.
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    conn.exec_driver_sql("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")


#: Execution option for read-only work on SQLite: ``conn.execution_options(bastion_read_only=True)``.
READ_ONLY = "bastion_read_only"


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """A SQLAlchemy engine for ``url``; SQLite files get WAL and their directory is created."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise StoreError(f"database.url is not a valid database URL: {e}") from e
    if is_sqlite(url):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy emit BEGIN itself so that writers can take the lock up front (BEGIN IMMEDIATE).
        event.listen(engine, "connect", lambda c, _r: setattr(c, "isolation_level", None))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
