"""Fixtures for the identity-service tests: an ``IdentityService`` on the ``engine`` of tests/conftest.py
with a recording audit sink and a clock the test moves."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from bastion.services.identity import IdentityService
from support.identity import Clock, ListSink


@pytest.fixture
def sink() -> ListSink:
    return ListSink()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(engine: Engine, sink: ListSink, clock: Clock) -> IdentityService:
    """Cache TTL 5 s, ``last_used_at`` written at most once a minute."""
    return IdentityService(
        engine, sink, cache_ttl_s=5, last_used_resolution_s=60, clock=clock.wall, monotonic=clock.monotonic
    )
