"""The gateway as an ASGI application: ``/v1/*``, ``/metrics``, ``/healthz``, ``/readyz``.

Everything else goes to ``fallback`` (the FastAPI admin app), so ``create_app`` can put the
gateway in front: ``create_gateway(settings, components, fallback=admin_app)``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog

from bastion.config import Settings
from bastion.domain.access import Operation, Resource
from bastion.domain.events import EventTag
from bastion.errors import BastionError
from bastion.gateway.call import Call
from bastion.gateway.deps import GatewayComponents
from bastion.gateway.errors import ApiError, error_body, from_bastion_error
from bastion.gateway.metrics import CONTENT_TYPE
from bastion.gateway.pipeline import ClientGone, Gateway, Receive, Scope, Send, send_json

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = structlog.get_logger("bastion.gateway")

_INVOKE = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/embeddings": "embeddings"}
_NOT_FOUND = error_body("unknown path", "invalid_request_error", "not_found")
_LIST_RESOURCE = Resource("route", "models", {"route": "models"})


class GatewayApp:
    """ASGI entry point of the gateway."""

    def __init__(
        self, gateway: Gateway, fallback: ASGIApp | None = None, *, max_header_bytes: int = 32 * 1024
    ) -> None:
        self.gateway = gateway
        self.fallback = fallback
        self.max_header_bytes = max_header_bytes
        self._created = int(time.time())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if sum(len(k) + len(v) for k, v in scope["headers"]) > self.max_header_bytes:
                await self._headers_too_large(scope, send)
                return
            path: str = scope["path"]
            if path.startswith("/v1/"):
                await self._v1(scope, receive, send, path)
                return
            if path in ("/healthz", "/readyz", "/metrics") and scope["method"] in ("GET", "HEAD"):
                await self._ops(send, path)
                return
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if self.fallback is not None:
            await self.fallback(scope, receive, send)
        elif kind == "http":
            await send_json(send, 404, _NOT_FOUND)

    async def _headers_too_large(self, scope: Scope, send: Send) -> None:
        """431 for oversized headers on any path (admin included), recorded like any refused call."""
        gw = self.gateway
        call = Call(route="headers", client_ip=gw.client_ip(scope))
        await gw._fail(
            send,
            call,
            ApiError(431, "request headers are too large", "request_header_fields_too_large"),
        )

    async def _v1(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        gw = self.gateway
        method = scope["method"]
        route = _INVOKE.get(path)
        if route is not None:
            if method != "POST":
                await self._refuse(scope, send, route, ApiError(405, "use POST", "method_not_allowed"))
                return
            if gw.draining:
                await self._refuse(
                    scope, send, route, ApiError(503, "the gateway is shutting down", "unavailable")
                )
                return
            await gw.invoke(scope, receive, send, route)
            return
        if path == "/v1/models" or path.startswith("/v1/models/"):
            if method != "GET":
                await self._refuse(scope, send, "models", ApiError(405, "use GET", "method_not_allowed"))
                return
            await self._models(scope, send, path[len("/v1/models/") :] if path != "/v1/models" else None)
            return
        # the path is not repeated anywhere (it is the caller's); "v1" keeps the metric label bounded
        await self._refuse(scope, send, "v1", ApiError(404, "unknown path", "not_found"))

    async def _refuse(self, scope: Scope, send: Send, route: str, error: ApiError) -> None:
        """Answer ``error`` before anything else is known of the call, and record it like any refusal."""
        gw = self.gateway
        await gw._fail(send, Call(route=route, client_ip=gw.client_ip(scope)), error)

    async def _models(self, scope: Scope, send: Send, one: str | None) -> None:
        """GET /v1/models: only the models this caller may invoke (one ledger event per call)."""
        gw = self.gateway
        call = Call(route="models", client_ip=gw.client_ip(scope))
        try:
            try:
                auth = await gw.authenticate(scope, call)
                az = gw.c.authorizer
                if not az.is_authorized(
                    auth.principal, Operation.MODEL_LIST, _LIST_RESOURCE, scope=auth.scope
                ).allowed:
                    raise ApiError(403, "you may not list models", "permission_denied")
                call.steps.append("authz")
                visible = [
                    {"id": name, "object": "model", "created": self._created, "owned_by": "bastion"}
                    for name, route in gw.models.items()
                    if gw.may_invoke(auth, name, route)
                ]
                if one is not None:
                    found = [m for m in visible if m["id"] == one]
                    if not found:  # the name is in the event's reasons, never a metric label
                        raise ApiError(404, f"the model {one!r} does not exist", "model_not_found", "model")
                    call.model = one
                    body = orjson.dumps(found[0])
                else:
                    body = orjson.dumps({"object": "list", "data": visible})
            except BastionError as e:
                raise from_bastion_error(e) from e
        except ApiError as e:
            await gw._fail(send, call, e)
            return
        except ClientGone:
            return
        except Exception as e:  # noqa: BLE001  a bug: still an answer and an event
            await gw.crashed(send, call, e)
            return
        call.status = 200
        if not await gw._finish(call, EventTag.GATEWAY_REQUEST_COMPLETED, "allowed"):
            await send_json(
                send, 503, error_body("the audit ledger is unavailable", "api_error", "audit_unavailable")
            )
            return
        await send_json(send, 200, body)

    async def _ops(self, send: Send, path: str) -> None:
        gw = self.gateway
        if path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}')
        elif path == "/readyz":
            ok = not gw.draining
            try:
                if ok and gw.c.readiness is not None:
                    ok = await gw.c.readiness.ready()
                if ok and gw.limits.fails_closed:  # calls would be refused while its store is down
                    ok = await gw.limits.ping()
            except Exception:  # noqa: BLE001  not ready is the answer, whatever broke
                ok = False
            await send_json(
                send, 200 if ok else 503, b'{"status":"ready"}' if ok else b'{"status":"unavailable"}'
            )
        else:
            body = gw.metrics.render()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Drain calls in flight on shutdown; pass lifespan on to the fallback app when there is one."""
        if self.fallback is None:
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await self.gateway.drain()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

        async def wrapped() -> dict[str, Any]:
            msg = await receive()
            if msg["type"] == "lifespan.shutdown":
                await self.gateway.drain()
            return dict(msg)

        await self.fallback(scope, wrapped, send)


def create_gateway(
    settings: Settings, components: GatewayComponents, *, fallback: ASGIApp | None = None
) -> GatewayApp:
    """Build the gateway from validated settings and the components the lead wires in.

    Raises :class:`~bastion.errors.ConfigError` for unusable gateway configuration (an unknown
    detector, a provider key variable that is not set).
    """
    gw = Gateway(
        settings.gateway,
        components,
        max_body_bytes=settings.server.max_body_bytes,
        body_timeout_s=settings.server.body_timeout_s,
    )
    return GatewayApp(gw, fallback, max_header_bytes=settings.server.max_header_bytes)
