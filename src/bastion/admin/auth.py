"""Authentication and authorization for admin routes: every route names its Operation.

Each decision (allowed or denied) is an audit event; authentication events are recorded by the
identity service itself. A missing or malformed ``Authorization`` header is a 401 and an event too.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from bastion.domain.access import Operation, Resource
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Authentication
from bastion.errors import AuthenticationError, AuthorizationError
from bastion.services.runtime import Runtime

MAX_CREDENTIAL_CHARS = 8192


def bearer_credential(request: Request) -> str | None:
    """The credential of an ``Authorization: Bearer …`` header, or ``None``."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or len(value) > MAX_CREDENTIAL_CHARS:
        return None
    return value.strip()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def requires(operation: Operation, resource_type: str) -> Callable[[Request], object]:
    """A FastAPI dependency: authenticate the caller and authorize ``operation`` on ``resource_type``."""

    async def dependency(request: Request) -> Authentication:
        rt: Runtime = request.app.state.runtime
        credential = bearer_credential(request)
        ip = client_ip(request)
        if credential is None:
            await rt.audit.arecord(
                AuditEvent(
                    EventTag.AUTHN_FAILED,
                    "anonymous",
                    target=request.url.path,
                    outcome="failure",
                    attributes={"reason": "missing_credential", "client_ip": ip, "surface": "admin"},
                )
            )
            raise AuthenticationError("missing or malformed Authorization header")
        auth = await run_in_threadpool(rt.identity.authenticate, credential, ip)
        resource = Resource(resource_type, "*")
        decision = rt.authorizer.is_authorized(auth.principal, operation, resource, scope=auth.scope)
        await rt.audit.arecord(
            AuditEvent(
                EventTag.AUTHZ_ALLOWED if decision.allowed else EventTag.AUTHZ_DENIED,
                auth.principal.id,
                target=f"{request.method} {request.url.path}",
                outcome="success" if decision.allowed else "denied",
                attributes={
                    "operation": operation.value,
                    "key_id": auth.key_id,
                    "policies": list(decision.policies),
                    "surface": "admin",
                },
            )
        )
        if not decision.allowed:
            raise AuthorizationError(f"{operation.value} is not allowed for this principal")
        return auth

    return dependency
