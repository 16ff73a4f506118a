"""Schema migrations with Alembic, driven programmatically (no alembic.ini needed).

``bastion db upgrade`` and the server's start call :func:`upgrade`. On PostgreSQL an advisory lock
makes concurrent starts of several replicas safe.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bastion.errors import StoreError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 0x62617374  # "bast"


def _config(connection: Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest migration shipped with this version of Bastion."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``; a :class:`StoreError` if that fails."""
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            command.upgrade(_config(conn), revision)
    except SQLAlchemyError as e:
        raise StoreError(f"database migration failed: {e.__class__.__name__}: {e}") from e


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the newest shipped revision."""
    return current_revision(engine) == head_revision()
