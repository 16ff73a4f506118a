"""Alembic environment: runs against the connection handed over by bastion.store.migrate."""

from __future__ import annotations

from alembic import context

from bastion.store.schema import all_metadata

target_metadata = all_metadata()
connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch mode for ALTER TABLE
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
