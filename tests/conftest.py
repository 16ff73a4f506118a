"""Shared fixtures: a real database per test, SQLite always and PostgreSQL when configured.

PostgreSQL tests run when ``BASTION_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it when PostgreSQL
answers on 127.0.0.1:5432). Each PostgreSQL test gets its own schema, dropped afterwards, so runs
are independent and may run side by side.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import Engine, create_engine, text

from bastion.store.engine import make_engine, normalise_url
from bastion.store.schema import create_all

POSTGRES_ENV = "BASTION_TEST_POSTGRES_URL"
REDIS_ENV = "BASTION_TEST_REDIS_URL"


def postgres_url_or_skip() -> str:
    """The PostgreSQL test URL, or skip the test with the reason."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    return url


def redis_url_or_skip() -> str:
    """The Redis test URL, or skip the test with the reason."""
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis tests need {REDIS_ENV} (e.g. redis://127.0.0.1:6379/0)")
    return url


@pytest.fixture
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped after the test)."""
    base = normalise_url(postgres_url_or_skip())
    schema = f"bastion_t_{uuid.uuid4().hex[:12]}"
    admin: Engine = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL of an empty database: SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bastion.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database with the whole schema created."""
    eng = make_engine(db_url)
    create_all(eng)
    try:
        yield eng
    finally:
        eng.dispose()
