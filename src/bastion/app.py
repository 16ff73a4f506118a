"""The composition root: ``create_app(settings)`` builds the whole server from validated settings.

One ASGI application serves both surfaces: the gateway's lean pipeline answers ``/v1/*``,
``/healthz``, ``/readyz`` and ``/metrics``; everything else (``/admin/v1/*``, ``/openapi.json``)
falls through to the FastAPI admin application.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import ASGIApp

from bastion.admin.api import create_admin_app
from bastion.config import CONFIG_ENV, Settings, load_settings
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Authentication
from bastion.gateway import GatewayComponents, create_gateway
from bastion.services.identity import IdentityService
from bastion.services.runtime import Runtime
from bastion.version import __version__


class IdentityAuthenticator:
    """The gateway's Authenticator, backed by the identity service (API keys and OIDC tokens)."""

    def __init__(self, identity: IdentityService) -> None:
        self._identity = identity

    async def authenticate(self, credential: str, client_ip: str) -> Authentication:
        return await self._identity.aauthenticate(credential, client_ip)


class DatabaseReadiness:
    """``/readyz``: the database answers a trivial query within a second."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def _ping(self) -> bool:
        with self._runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True

    async def ready(self) -> bool:
        return await asyncio.wait_for(asyncio.to_thread(self._ping), timeout=1.0)


def create_app(settings: Settings, runtime: Runtime | None = None) -> ASGIApp:
    """The Bastion server for ``settings`` (opening a :class:`Runtime` unless one is given)."""
    rt = runtime or Runtime.open(settings)
    admin = create_admin_app(rt)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await rt.audit.arecord(
            AuditEvent(
                EventTag.SERVER_STARTED, "system", attributes={"version": __version__, "pid": os.getpid()}
            )
        )
        try:
            yield
        finally:
            await rt.audit.arecord(
                AuditEvent(EventTag.SERVER_STOPPED, "system", attributes={"pid": os.getpid()})
            )
            if runtime is None:
                rt.close()

    admin.router.lifespan_context = lifespan
    components = GatewayComponents(
        authenticator=IdentityAuthenticator(rt.identity),
        authorizer=rt.authorizer,
        audit=rt.audit,
        readiness=DatabaseReadiness(rt),
    )
    return create_gateway(settings, components, fallback=admin)


def create_app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory`` with several workers: settings from ``BASTION_CONFIG``/env."""
    return create_app(load_settings(os.environ.get(CONFIG_ENV)))
