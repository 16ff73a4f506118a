"""The shipped Alembic migrations build exactly the schema the code expects, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from bastion.store.engine import make_engine
from bastion.store.migrate import current_revision, head_revision, is_up_to_date, upgrade
from bastion.store.schema import all_metadata


def test_upgrade_from_empty_matches_metadata(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        assert is_up_to_date(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), all_metadata())
        assert diff == [], f"models and migrations differ; add a migration: {diff}"
        upgrade(engine)  # idempotent: a second start or a second replica changes nothing
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
