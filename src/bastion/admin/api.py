"""The admin HTTP API under ``/admin/v1`` (OpenAPI at ``/openapi.json``).

Every route is behind authentication and a named :class:`~bastion.domain.access.Operation`
checked by the policy engine (deny by default). Blocking service calls run in the thread pool.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from bastion.admin.auth import requires
from bastion.admin.body_limit import BodyLimitMiddleware
from bastion.admin.errors import install_error_handlers
from bastion.domain.access import Operation, Resource
from bastion.domain.identity import Authentication, KeyScope, PrincipalKind, Role
from bastion.services.runtime import Runtime
from bastion.version import __version__


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrincipalIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    kind: PrincipalKind = PrincipalKind.USER
    roles: list[Role] = Field(default_factory=list)
    team: str | None = Field(default=None, max_length=200)
    attributes: dict[str, str] = Field(default_factory=dict)


class PrincipalPatch(_Body):
    roles: list[Role] | None = None
    attributes: dict[str, str] | None = None
    disabled: bool | None = None


class KeyIn(_Body):
    principal: str = Field(min_length=1, max_length=200, description="principal id or name")
    name: str = Field(min_length=1, max_length=200)
    expires_days: int | None = Field(default=None, ge=1, le=3650)
    models: list[str] = Field(default_factory=list)
    routes: list[str] = Field(default_factory=list)
    source_cidrs: list[str] = Field(default_factory=list)
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)


class RevokeIn(_Body):
    reason: str = Field(default="revoked", max_length=200)


class RotateIn(_Body):
    overlap_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)


class ExplainIn(_Body):
    principal: str = Field(min_length=1, max_length=200)
    operation: Operation
    resource_type: str = Field(min_length=1, max_length=64)
    resource_id: str = Field(min_length=1, max_length=200)
    attributes: dict[str, str] = Field(default_factory=dict)


class DecisionIn(_Body):
    key_id: str = Field(min_length=1, max_length=64)
    decision: Literal["keep", "revoke"]
    note: str | None = Field(default=None, max_length=500)


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _auth(op: Operation, resource_type: str) -> Any:
    return Depends(requires(op, resource_type))


router = APIRouter(prefix="/admin/v1")


@router.get("/whoami", tags=["identity"])
async def whoami(auth: Annotated[Authentication, _auth(Operation.MODEL_LIST, "model")]) -> dict[str, Any]:
    """Who the presented credential belongs to."""
    p = auth.principal
    return {
        "id": p.id,
        "name": p.name,
        "kind": p.kind.value,
        "roles": sorted(r.value for r in p.roles),
        "team": p.team,
        "method": auth.method.value,
        "key_id": auth.key_id,
    }


@router.get("/principals", tags=["identity"])
async def list_principals(
    request: Request, auth: Annotated[Authentication, _auth(Operation.PRINCIPAL_LIST, "principal")]
) -> list[dict[str, object]]:
    rows = await run_in_threadpool(_rt(request).identity.list_principals)
    return [p.to_dict() for p in rows]


@router.post("/principals", status_code=201, tags=["identity"])
async def create_principal(
    request: Request,
    body: PrincipalIn,
    auth: Annotated[Authentication, _auth(Operation.PRINCIPAL_CREATE, "principal")],
) -> dict[str, object]:
    rec = await run_in_threadpool(
        lambda: _rt(request).identity.create_principal(
            body.name,
            kind=body.kind,
            roles=body.roles,
            team=body.team,
            attributes=body.attributes,
            actor=auth.principal.id,
        )
    )
    return rec.to_dict()


@router.patch("/principals/{ref}", tags=["identity"])
async def update_principal(
    request: Request,
    ref: str,
    body: PrincipalPatch,
    auth: Annotated[Authentication, _auth(Operation.PRINCIPAL_UPDATE, "principal")],
) -> dict[str, object]:
    rec = await run_in_threadpool(
        lambda: _rt(request).identity.update_principal(
            ref, roles=body.roles, attributes=body.attributes, disabled=body.disabled, actor=auth.principal.id
        )
    )
    return rec.to_dict()


@router.get("/keys", tags=["keys"])
async def list_keys(
    request: Request,
    auth: Annotated[Authentication, _auth(Operation.KEY_LIST, "apikey")],
    principal: str | None = None,
    include_revoked: bool = False,
) -> list[dict[str, object]]:
    rows = await run_in_threadpool(
        lambda: _rt(request).identity.list_keys(principal, include_revoked=include_revoked)
    )
    return [k.to_dict() for k in rows]


@router.post("/keys", status_code=201, tags=["keys"])
async def create_key(
    request: Request, body: KeyIn, auth: Annotated[Authentication, _auth(Operation.KEY_CREATE, "apikey")]
) -> dict[str, object]:
    """Create a key; the response's ``key`` field is the only copy of the secret."""
    scope = KeyScope(
        models=tuple(body.models),
        routes=tuple(body.routes),
        source_cidrs=tuple(body.source_cidrs),
        requests_per_minute=body.requests_per_minute,
        tokens_per_minute=body.tokens_per_minute,
    )
    created = await run_in_threadpool(
        lambda: _rt(request).identity.create_key(
            body.principal,
            name=body.name,
            expires_in=timedelta(days=body.expires_days) if body.expires_days else None,
            scope=scope,
            actor=auth.principal.id,
        )
    )
    return {**created.key.to_dict(), "key": created.token}


@router.post("/keys/{key_id}/revoke", tags=["keys"])
async def revoke_key(
    request: Request,
    key_id: str,
    body: RevokeIn,
    auth: Annotated[Authentication, _auth(Operation.KEY_REVOKE, "apikey")],
) -> dict[str, object]:
    rec = await run_in_threadpool(
        lambda: _rt(request).identity.revoke_key(key_id, actor=auth.principal.id, reason=body.reason)
    )
    return rec.to_dict()


@router.post("/keys/{key_id}/rotate", tags=["keys"])
async def rotate_key(
    request: Request,
    key_id: str,
    body: RotateIn,
    auth: Annotated[Authentication, _auth(Operation.KEY_ROTATE, "apikey")],
) -> dict[str, object]:
    created = await run_in_threadpool(
        lambda: _rt(request).identity.rotate_key(
            key_id, overlap=timedelta(minutes=body.overlap_minutes), actor=auth.principal.id
        )
    )
    return {**created.key.to_dict(), "key": created.token}


@router.post("/policy/explain", tags=["policy"])
async def explain(
    request: Request,
    body: ExplainIn,
    auth: Annotated[Authentication, _auth(Operation.POLICY_EXPLAIN, "policy")],
) -> dict[str, Any]:
    rt = _rt(request)
    who = (await run_in_threadpool(rt.identity.get_principal, body.principal)).to_principal()
    resource = Resource(body.resource_type, body.resource_id, body.attributes)
    return rt.authorizer.explain(who, body.operation, resource).to_dict()


@router.get("/ledger/tree-head", tags=["ledger"])
async def tree_head(
    request: Request, auth: Annotated[Authentication, _auth(Operation.LEDGER_READ, "ledger")]
) -> dict[str, object]:
    """The newest signed tree head (signing one first if entries were added since)."""
    head = await run_in_threadpool(_rt(request).audit.sign_tree_head)
    return head.to_json()


@router.get("/ledger/entries", tags=["ledger"])
async def ledger_tail(
    request: Request,
    auth: Annotated[Authentication, _auth(Operation.LEDGER_READ, "ledger")],
    n: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    entries = await run_in_threadpool(_rt(request).audit.tail, n)
    return [e.to_json() for e in entries]


@router.get("/ledger/proofs/inclusion/{seq}", tags=["ledger"])
async def inclusion_proof(
    request: Request,
    seq: int,
    auth: Annotated[Authentication, _auth(Operation.LEDGER_READ, "ledger")],
    tree_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, object]:
    proof = await run_in_threadpool(_rt(request).audit.inclusion_proof, seq, tree_size)
    return proof.to_json()


@router.get("/ledger/proofs/consistency", tags=["ledger"])
async def consistency_proof(
    request: Request,
    auth: Annotated[Authentication, _auth(Operation.LEDGER_READ, "ledger")],
    old_size: Annotated[int, Query(ge=0)],
    new_size: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, object]:
    proof = await run_in_threadpool(_rt(request).audit.consistency_proof, old_size, new_size)
    return proof.to_json()


@router.post("/ledger/verify", tags=["ledger"])
async def verify(
    request: Request, auth: Annotated[Authentication, _auth(Operation.LEDGER_VERIFY, "ledger")]
) -> dict[str, Any]:
    report = await run_in_threadpool(lambda: _rt(request).audit.verify(actor=auth.principal.id))
    return report.to_json()


@router.get("/access/review", tags=["access"])
async def access_review(
    request: Request,
    auth: Annotated[Authentication, _auth(Operation.ACCESS_REVIEW, "access")],
    unused_days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> dict[str, Any]:
    review = await run_in_threadpool(lambda: _rt(request).access.review(unused_days=unused_days))
    return review.to_dict()


@router.post("/access/decisions", tags=["access"])
async def access_decide(
    request: Request,
    body: DecisionIn,
    auth: Annotated[Authentication, _auth(Operation.ACCESS_REVIEW_DECIDE, "access")],
) -> dict[str, object]:
    rec = await run_in_threadpool(
        lambda: _rt(request).access.decide_key(
            body.key_id, body.decision, reviewer=auth.principal.id, note=body.note
        )
    )
    return {**rec.to_dict(), "decision": body.decision}


def create_admin_app(runtime: Runtime) -> FastAPI:
    """The admin FastAPI application over ``runtime``'s services."""
    app = FastAPI(
        title="Bastion admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.server.max_body_bytes)
    install_error_handlers(app)
    app.include_router(router)
    return app
