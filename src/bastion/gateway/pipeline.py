"""The gateway pipeline: authenticate → authorise → limits → input guards → upstream → output guards
→ ledger → metrics, for one call. Every call ends in exactly one ledger event.

Plain ASGI (no framework routing or dependency injection on this path): the per-call CPU budget
is a fraction of a millisecond.

Request intake (body, JSON answers, headers) is in ``intake``; the unary call after its input guards
in ``unary`` (streamed ones in ``streaming``); each call's ledger event in ``recording``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import structlog

from bastion.config import GatewaySettings, ModelRoute
from bastion.detectors.canary import add_canary, make_canary
from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.access import Operation, Resource
from bastion.domain.events import AuditEvent, EventTag
from bastion.domain.identity import Authentication
from bastion.errors import BastionError, LimitExceeded
from bastion.gateway import wire
from bastion.gateway.call import NOT_CONFIGURED, Call
from bastion.gateway.deps import GatewayComponents
from bastion.gateway.errors import ApiError, from_bastion_error
from bastion.gateway.intake import (
    JSON_HEADERS,
    BodyDeadlines,
    ClientGone,
    Message,
    Receive,
    Scope,
    Send,
    client_cert,
    header_count,
    header_value,
    last_header_value,
    read_body,
    refuse_declared_size,
    send_json,
)
from bastion.gateway.metrics import GatewayMetrics
from bastion.gateway.provider_errors import provider_failure
from bastion.gateway.recording import CallRecorder, LedgerDeadlines
from bastion.gateway.unary import unary_call
from bastion.gateway.upstream import Upstream, UpstreamReply, build_upstreams
from bastion.services.guard import GuardResult, GuardService, GuardTarget
from bastion.services.limits import BudgetExceeded, Lease, LimiterUnavailable, LimitService

#: names that moved to intake.py stay importable from here
__all__ = [
    "JSON_HEADERS",
    "ClientGone",
    "Gateway",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "send_json",
]

log = structlog.get_logger("bastion.gateway")

_LIMITER_EVENT_INTERVAL_S = 60.0
T = TypeVar("T")
#: Texts longer than this (in total) are scanned in a worker thread, not on the event loop.
INLINE_SCAN_CHARS = 16_384
#: The gateway's own scan threads (a stalled scan holds one; it may starve only other scans).
_SCAN_THREADS = 4
_SYSTEM_ROLES = ("system", "developer")


def _system_prompt(messages: list[dict[str, Any]]) -> str | None:
    """The text of the system/developer messages, joined (None when there are none)."""
    parts: list[str] = []
    for m in messages:
        if m.get("role") in _SYSTEM_ROLES:
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts.extend(p["text"] for p in c if isinstance(p.get("text"), str))
    return "\n".join(parts) if parts else None


def _insert_canary(messages: list[dict[str, Any]], canary: str) -> None:
    """Add ``canary`` to the first system message with text content, or as a new first message."""
    for m in messages:
        if m.get("role") in _SYSTEM_ROLES and isinstance(m.get("content"), str):
            m["content"] = add_canary(m["content"], canary)
            return
    messages.insert(0, {"role": "system", "content": add_canary("", canary).strip()})


class Gateway(CallRecorder):
    """One configured gateway: its upstreams, guards, limits, metrics and components."""

    def __init__(
        self,
        settings: GatewaySettings,
        components: GatewayComponents,
        *,
        max_body_bytes: int,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.settings = settings
        self.c = components
        self.max_body = max_body_bytes
        self.body_deadlines = BodyDeadlines(body_timeout_s)
        self.metrics = GatewayMetrics()
        self.upstreams: dict[str, Upstream] = dict(
            components.upstreams or build_upstreams(settings.upstreams)
        )
        self.guards = components.guards or GuardService(settings.guards)
        self.limits = components.limits or LimitService(settings.limits)
        self.limits.on_unavailable = self._limiter_down
        self.hardening = wire.Hardening(settings.max_n, settings.max_tokens_cap)
        self.models: dict[str, ModelRoute] = dict(settings.models)
        self._resources = {
            (name, kind): Resource("model", name, {"model": name, "route": kind, **route.attributes})
            for name, route in self.models.items()
            for kind in ("chat", "completions", "embeddings")
        }
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._background: set[asyncio.Future[Any]] = set()
        self._limiter_event_at = 0.0
        self.draining = False
        # Long scans run here, not in the loop's default executor: a scan stalled past its timeout
        # keeps a thread, and may starve only other scans (which then time out and block).
        self._scan_pool = ThreadPoolExecutor(_SCAN_THREADS, thread_name_prefix="bastion-scan")
        #: a sink that hands out the commit's future (AuditLog.record_future) is used without a task
        self._record_future = getattr(components.audit, "record_future", None)
        #: the same for a write nobody waits for (durable_audit: false): the writer may batch it
        self._record_later = getattr(components.audit, "record_detached", None) or self._record_future
        self._deadlines = LedgerDeadlines()
        self.allowed_hosts = tuple(settings.guards.allowed_hosts)
        self._output_context = ScanContext(direction=Direction.OUTPUT, allowed_hosts=self.allowed_hosts)

    # -- small helpers ------------------------------------------------------------------------

    def _limiter_down(self, e: Exception) -> None:
        self.metrics.limiter_unavailable.inc()
        now = time.monotonic()
        if now - self._limiter_event_at >= _LIMITER_EVENT_INTERVAL_S:
            self._limiter_event_at = now
            event = AuditEvent(
                EventTag.GATEWAY_LIMITER_UNAVAILABLE,
                actor="system",
                target="limits",
                outcome="error",
                attributes={"mode": self.settings.limits.on_unavailable, "error": type(e).__name__},
            )
            self._spawn(self._record_quiet(event))
            log.warning(
                "limiter_unavailable", mode=self.settings.limits.on_unavailable, error=type(e).__name__
            )

    def client_ip(self, scope: Scope) -> str:
        """The caller's address: the peer's, or with ``trust_forwarded_for`` the one the trusted
        proxy in front appended to ``X-Forwarded-For``: the rightmost entry. Entries to its left
        are whatever the caller sent and prove nothing."""
        if self.settings.trust_forwarded_for:
            xff = last_header_value(scope, b"x-forwarded-for")
            if xff:
                return xff.rsplit(b",", 1)[-1].strip().decode("latin-1")[:64]
        client = scope.get("client")
        return str(client[0]) if client else ""

    async def authenticate(self, scope: Scope, call: Call) -> Authentication:
        raw = header_value(scope, b"authorization")
        if raw is not None and header_count(scope, b"authorization") > 1:
            # which credential counts would depend on who reads the request (a proxy, a WAF, us)
            raise ApiError(401, "send one Authorization header, not several", "invalid_api_key")
        cert = client_cert(scope) if raw is None else None
        if cert is None and (raw is None or not raw[:7].lower() == b"bearer " or len(raw) > 8192):
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "invalid_api_key")
        try:
            if cert is not None:  # no bearer credential, but a verified TLS client certificate (mTLS)
                auth = await self.c.authenticator.authenticate_certificate(cert, call.client_ip)
            else:
                assert raw is not None
                auth = await self.c.authenticator.authenticate(
                    raw[7:].strip().decode("latin-1"), call.client_ip
                )
        except BastionError as e:
            raise from_bastion_error(e) from e
        call.auth = auth
        call.steps.append("authn")
        return auth

    def authorize(self, auth: Authentication, call: Call, model: str, route: ModelRoute, kind: str) -> None:
        if kind not in route.kinds:
            raise ApiError(
                422, f"model {model!r} does not serve {kind}", "unsupported_model_operation", "model"
            )
        scope = auth.scope
        if not _route_in_scope(scope.routes, kind):
            call.reasons.append("key scope excludes this route")
            raise ApiError(403, "this API key may not use this route", "permission_denied")
        decision = self.c.authorizer.is_authorized(
            auth.principal, Operation.MODEL_INVOKE, self._resources[(model, kind)], scope=scope
        )
        call.policies.extend(decision.policies)
        if not decision.allowed:
            call.reasons.extend(decision.reasons)
            raise ApiError(403, f"you may not use model {model!r}", "permission_denied", "model")
        call.steps.append("authz")

    def may_invoke(self, auth: Authentication, model: str, route: ModelRoute) -> bool:
        """Whether ``auth`` may call ``model`` for any kind it serves, as :meth:`authorize` would
        decide (key scope and policy): what ``GET /v1/models`` lists."""
        az = self.c.authorizer
        return any(
            _route_in_scope(auth.scope.routes, kind)
            and az.is_authorized(
                auth.principal, Operation.MODEL_INVOKE, self._resources[(model, kind)], scope=auth.scope
            ).allowed
            for kind in route.kinds
        )

    async def crashed(self, send: Send, call: Call, e: Exception) -> None:
        """A call that failed in the gateway itself (a bug): an OpenAI-style 500, logged without
        content, and its one ledger event, instead of the server's bare error page and no event."""
        log.error("gateway_call_crashed", route=call.route, model=call.model, error=type(e).__name__)
        call.reasons.append(f"internal error: {type(e).__name__}")
        err = ApiError(
            500,
            "the gateway failed to handle this call",
            "internal_error",
            tag=EventTag.GATEWAY_REQUEST_FAILED,
            outcome="error",
        )
        try:
            await self._fail(send, call, err)
        except Exception:  # noqa: BLE001  the answer had already started: the event is what is left
            log.error("gateway_call_crashed_mid_answer", route=call.route, model=call.model)

    async def receive_body(self, scope: Scope, auth: Authentication, call: Call, receive: Receive) -> bytes:
        """The request body (413 at once when it declares a size over the limit). While it arrives it
        counts against the caller's concurrency limits, so one key cannot hold more half-sent bodies
        in memory than it may have calls in flight."""
        refuse_declared_size(scope, self.max_body)
        try:
            leave = self.limits.enter_upload(self.limits.subject(auth))
        except LimitExceeded as e:
            self.metrics.limited.labels("rate").inc()
            call.reasons.append(e.message)
            raise from_bastion_error(e) from e
        try:
            return await read_body(receive, self.max_body, self.body_deadlines)
        finally:
            leave()

    async def acquire(self, auth: Authentication, call: Call, queries: int = 1) -> Lease:
        """The call's limits, spending ``queries`` of the daily query budget (:func:`wire.queries`)."""
        try:
            lease = await self.limits.acquire(self.limits.subject(auth), queries)
        except BudgetExceeded as e:
            self.metrics.limited.labels("budget").inc()
            call.reasons.append(e.message)
            if e.first:
                await self._record_quiet(
                    AuditEvent(
                        EventTag.GATEWAY_BUDGET_EXCEEDED,
                        actor=auth.principal.id,
                        target=call.model,
                        outcome="limited",
                        attributes={"key_id": auth.key_id, "budget": "queries_per_day"},
                    )
                )
            raise from_bastion_error(e) from e
        except LimiterUnavailable as e:
            call.reasons.append("rate-limit store unavailable (fail closed)")
            raise ApiError(503, "rate limiting is unavailable", "limiter_unavailable") from e
        except BastionError as e:
            self.metrics.limited.labels("rate").inc()
            call.reasons.append(e.message)
            raise from_bastion_error(e) from e
        call.limiter_degraded = lease.degraded
        call.steps.append("limits")
        return lease

    async def scan(
        self, texts: list[str], direction: Direction, target: GuardTarget, context: ScanContext | None
    ) -> GuardResult:
        """Guards over ``texts``; long texts in a worker thread so the event loop keeps serving."""
        if sum(map(len, texts)) > INLINE_SCAN_CHARS:
            scan = self.in_scan_thread(self.guards.scan, texts, direction, target, context)
            try:
                return await asyncio.wait_for(scan, self.settings.guards.scan_timeout_s)
            except TimeoutError:  # the thread runs on; its result is not waited for
                log.warning("guard_scan_timeout", direction=direction.value, chars=sum(map(len, texts)))
                return self.guards.timed_out()
        return self.guards.scan(texts, direction, target, context)

    def in_scan_thread(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """``fn(*args)`` in the gateway's scan threads."""
        return asyncio.get_running_loop().run_in_executor(self._scan_pool, fn, *args)

    async def guard_input(self, data: dict[str, Any], kind: str, target: GuardTarget, call: Call) -> None:
        if not self.guards.has_input:
            call.guard_input = NOT_CONFIGURED
            return
        refs = wire.input_refs(data, kind, system=self.settings.guards.scan_system)
        texts = wire.texts(refs)
        if sum(map(len, texts)) > self.settings.guards.max_scan_chars:
            raise ApiError(413, "the prompt is too long to be scanned", "request_too_large")
        result = await self.scan(texts, Direction.INPUT, target, None)
        call.guard_input = self._note(result, call, "input")
        if result.redacted is not None:
            wire.replace(refs, result.redacted)
        if result.blocked:
            raise ApiError(
                400,
                "the request was blocked by an input guard",
                "content_filter",
                tag=EventTag.GATEWAY_REQUEST_BLOCKED,
                outcome="blocked",
            )
        call.steps.append("input_guard")

    def _note(self, result: GuardResult, call: Call, direction: str) -> str:
        v = result.verdict
        call.findings.extend(a.to_audit() | {"direction": direction} for a in result.acted)
        call.reasons.extend(v.reasons)
        if v.errors:
            for name in dict.fromkeys(v.errors):
                self.metrics.blocks.labels(name, direction).inc()
            return "error"
        if result.blocked:  # one block per detector that blocked the call, however many findings
            for name in dict.fromkeys(a.finding.detector for a in result.acted if a.action.value == "block"):
                self.metrics.blocks.labels(name, direction).inc()
            return "blocked"
        return {"allow": "passed", "flag": "flagged", "redact": "redacted"}[v.action.value]

    # -- the call ---------------------------------------------------------------------------------

    async def invoke(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        """Serve one POST /v1/{chat/completions,completions,embeddings}."""
        call = Call(route=kind, client_ip=self.client_ip(scope))
        self._enter()
        lease: Lease | None = None
        try:
            try:
                auth = await self.authenticate(scope, call)
                body = await self.receive_body(scope, auth, call, receive)
                call.prompt_sha256 = hashlib.sha256(body).hexdigest()
                call.request_bytes = len(body)
                if self.c.content is not None:
                    call.prompt_body = body
                data = wire.parse(body, kind)
                model = data["model"]
                route = self.models.get(model)
                if route is None:
                    raise ApiError(
                        404,
                        f"the model {model!r} does not exist",
                        "model_not_found",
                        "model",
                        reason="unknown model",  # the caller's string stays out of the ledger
                    )
                call.model, call.upstream = model, route.upstream
                self.authorize(auth, call, model, route, kind)
                if self.c.usage is not None:
                    self.c.usage.record_use(auth, model)
                lease = await self.acquire(auth, call, wire.queries(data, kind, self.hardening))
                allow_lp = self._allow_logprobs(auth, model, kind)
                call.hardening = wire.harden(data, kind, self.hardening, allow_logprobs=allow_lp)
                target = GuardTarget(kind, model, auth.principal.team)
                await self.guard_input(data, kind, target, call)
                context = self.output_context(data, kind)
                data["model"] = route.upstream_model or model
                if data.get("stream") and kind != "embeddings":
                    call.stream = True
                    from bastion.gateway.streaming import stream_call

                    await stream_call(self, scope, receive, send, call, data, kind, target, allow_lp, context)
                    return
                await unary_call(self, send, call, data, kind, target, allow_lp, context)
            except ApiError as e:
                await self._fail(send, call, e)
            except BastionError as e:
                await self._fail(send, call, from_bastion_error(e))
            except ClientGone:
                call.reasons.append("client disconnected")
                call.status = 499
                await self._finish(call, EventTag.GATEWAY_REQUEST_FAILED, "cancelled")
            except asyncio.CancelledError:
                if not call.recorded:  # cancelled while waiting (a server giving up on its calls)
                    call.reasons.append("cancelled")
                    call.status = 499
                    await self._finish(call, EventTag.GATEWAY_REQUEST_FAILED, "cancelled")
                raise
            except Exception as e:  # noqa: BLE001  a bug: still an answer and an event
                await self.crashed(send, call, e)
        finally:
            if lease is not None:
                await lease.release()
            self._leave()

    def output_context(self, data: dict[str, Any], kind: str) -> ScanContext | None:
        """What output guards know about this request: its system prompt, a fresh canary (when
        ``guards.canary``; added to the system prompt sent upstream) and the allowed hosts."""
        if not self.guards.has_output or kind == "embeddings":
            return None
        if kind != "chat":
            return self._output_context
        messages: list[dict[str, Any]] = data["messages"]
        system = _system_prompt(messages)
        canary = None
        if self.settings.guards.canary:
            canary = make_canary()
            _insert_canary(messages, canary)
        if system is None and canary is None:
            return self._output_context
        return ScanContext(
            direction=Direction.OUTPUT, system_prompt=system, canary=canary, allowed_hosts=self.allowed_hosts
        )

    def _allow_logprobs(self, auth: Authentication, model: str, kind: str) -> bool:
        res = self._resources[(model, kind)]
        return self.c.authorizer.is_authorized(
            auth.principal, Operation.MODEL_LOGPROBS, res, scope=auth.scope
        ).allowed

    async def charge(self, call: Call) -> None:
        assert call.auth is not None
        total = call.prompt_tokens + call.completion_tokens
        await self.limits.charge_tokens(self.limits.subject(call.auth), total)
        if call.prompt_tokens:
            self.metrics.tokens.labels(call.model, "prompt").inc(call.prompt_tokens)
        if call.completion_tokens:
            self.metrics.tokens.labels(call.model, "completion").inc(call.completion_tokens)

    def upstream_failure(self, call: Call, reply: UpstreamReply) -> ApiError:
        """The caller's answer for a non-2xx upstream reply (provider secrets never relayed)."""
        self.metrics.upstream_errors.labels(call.upstream, str(reply.status)).inc()
        return provider_failure(reply, getattr(self.upstreams.get(call.upstream), "secret", None))

    # -- lifecycle --------------------------------------------------------------------------------

    def _enter(self) -> None:
        self.in_flight += 1
        self.metrics.in_flight.inc()
        self._idle.clear()

    def _leave(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self) -> None:
        """Wait (up to ``drain_timeout_s``) for calls in flight, then close upstream clients."""
        self.draining = True
        try:
            async with asyncio.timeout(self.settings.drain_timeout_s):
                await self._idle.wait()
                if self._background:
                    await asyncio.gather(*self._background, return_exceptions=True)
        except TimeoutError:
            log.warning("gateway_drain_timeout", in_flight=self.in_flight)
        for up in self.upstreams.values():
            await up.aclose()
        await self.limits.close()
        self._scan_pool.shutdown(wait=False, cancel_futures=True)


def _route_in_scope(routes: tuple[str, ...], kind: str) -> bool:
    """Whether an API key scoped to ``routes`` (empty: all) may use ``kind`` (named or by path)."""
    return not routes or kind in routes or wire.KIND_PATH[kind] in routes
