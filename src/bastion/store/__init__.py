"""Persistence: SQLAlchemy 2 tables, repositories (return domain objects, never commit), engine, migrations."""
