"""The gateway's ledger side of a call: its one audit event (durable when configured), the sealed
prompt and response when content recording is on, its request metrics, and the caller's error answer."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bastion.config import GatewaySettings
from bastion.domain.events import AuditEvent, EventTag
from bastion.gateway.call import Call
from bastion.gateway.deadlines import Deadlines
from bastion.gateway.deps import GatewayComponents
from bastion.gateway.errors import ApiError, audit_unavailable
from bastion.gateway.intake import Send, send_json
from bastion.gateway.metrics import GatewayMetrics

log = structlog.get_logger("bastion.gateway")

#: How long a call waits for its ledger event to be committed before answering 503.
_RECORD_TIMEOUT_S = 120.0


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Collect the outcome of a ledger write nobody awaits any more (no 'never retrieved' noise)."""
    if not future.cancelled():
        future.exception()


class LedgerDeadlines(Deadlines[asyncio.Future[Any]]):
    """Fails the ledger futures calls wait on once they are ``timeout_s`` old (one timer for all)."""

    __slots__ = ()

    def __init__(self, timeout_s: float = _RECORD_TIMEOUT_S) -> None:
        super().__init__(timeout_s)

    def settled(self, item: asyncio.Future[Any]) -> bool:
        return item.done()

    def expire(self, item: asyncio.Future[Any]) -> None:
        item.set_exception(TimeoutError())


class CallRecorder:
    """Records gateway calls in the ledger; :class:`~bastion.gateway.pipeline.Gateway` sets the state."""

    settings: GatewaySettings
    c: GatewayComponents
    metrics: GatewayMetrics
    _background: set[asyncio.Future[Any]]
    #: a sink that hands out the commit's future (AuditLog.record_future) is used without a task
    _record_future: Callable[[AuditEvent], asyncio.Future[Any]] | None
    #: the same for writes nobody waits for (``durable_audit: false``): the writer may batch them
    _record_later: Callable[[AuditEvent], asyncio.Future[Any]] | None
    #: fails a durable write's future after ``_RECORD_TIMEOUT_S`` (the call then answers 503)
    _deadlines: LedgerDeadlines

    def _spawn(self, aw: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``aw`` in a task that ``drain`` waits for."""
        task = asyncio.ensure_future(aw)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _record_waited(self, event: AuditEvent) -> bool:
        """:meth:`_record_quiet`, waited for, in a task ``drain`` waits for: a call cancelled while
        waiting stops waiting, and its write goes on (shielded)."""
        written: asyncio.Future[bool] = self._spawn(self._record_quiet(event))
        return await asyncio.shield(written)

    async def _record_quiet(self, event: AuditEvent) -> bool:
        try:
            await self.c.audit.arecord(event)
        except Exception as e:  # noqa: BLE001  the caller already has its answer; log, never leak
            log.error("audit_record_failed", tag=event.tag.value, error=type(e).__name__)
            return False
        return True

    def answer_waits_for_ledger(self, call: Call) -> bool:
        """Whether recording ``call`` may still change its answer: with ``durable_audit`` the answer
        waits for the event's commit (a failure is a 503), and so it does while sealed content is
        recorded (whose failure is a 503 too). Otherwise the event is queued and nothing waits."""
        return self.settings.durable_audit or call.prompt_body is not None

    async def _fail(self, send: Send, call: Call, e: ApiError) -> None:
        call.status = e.status
        reason = e.reason or e.message
        if reason not in call.reasons and e.status not in (400, 413, 422):
            call.reasons.append(reason)
        if e.status >= 500:
            log.warning(
                "gateway_call_failed", route=call.route, model=call.model, status=e.status, code=e.code
            )
        if not call.recorded and not await self._finish(call, e.tag, e.outcome):
            e = audit_unavailable()  # what the event says (when one was written), the caller gets
        with contextlib.suppress(OSError):
            await send_json(send, e.status, e.body(), e.headers())

    async def _finish(self, call: Call, tag: EventTag, outcome: str) -> bool:
        """Record the call's one ledger event (durably, when configured) and its metrics. False when
        the event (or the call's sealed content) could not be recorded: the caller gets a 503, and
        the metrics count that. The call is recorded once: a later error answer records nothing."""
        call.recorded = True
        ok = True
        try:
            ok = await self._record(call, tag, outcome)
            return ok
        finally:
            if not ok:
                call.status, outcome = 503, "error"
            m = self.metrics
            m.requests.labels(call.route, call.model or "-", outcome, str(call.status)).inc()
            m.latency.labels(call.route).observe(call.elapsed_us() / 1e6)

    async def _record(self, call: Call, tag: EventTag, outcome: str) -> bool:
        """The ledger side of :meth:`_finish`."""
        content_on = call.prompt_body is not None and call.auth is not None and self.c.content is not None
        if content_on:
            seal = asyncio.ensure_future(self._record_content(call))
            try:
                sealed = await asyncio.shield(seal)
            except asyncio.CancelledError:
                # cancelled while sealing (a server giving up at shutdown): the call still gets its
                # one ledger event, once the seal has settled
                self._spawn(self._record_after_seal(seal, call))
                raise
            if not sealed:
                # fail closed: the caller gets a 503, and this is the call's one ledger event
                call.status = 503
                await self._record_waited(call.event(EventTag.GATEWAY_REQUEST_FAILED, "error"))
                return False
        event = call.event(tag, outcome)
        if self.settings.durable_audit:
            if self._record_future is not None:
                return await self._record_durable(event, self._record_future)
            return await self._record_waited(event)
        if self._record_later is not None:
            self._record_detached(event, self._record_later)
        else:
            self._spawn(self._record_quiet(event))
        return True

    def _record_detached(
        self, event: AuditEvent, record_future: Callable[[AuditEvent], asyncio.Future[Any]]
    ) -> None:
        """:meth:`_record_quiet` without waiting (``durable_audit: false``) and without a task: the
        commit's future is kept until it settles (``drain`` waits for it), a failure or a timeout
        (:class:`LedgerDeadlines`) is logged from its done callback."""
        try:
            future = record_future(event)
        except Exception as e:  # noqa: BLE001  the caller already has its answer; log, never leak
            log.error("audit_record_failed", tag=event.tag.value, error=type(e).__name__)
            return
        self._deadlines.watch(future)
        self._background.add(future)
        future.add_done_callback(functools.partial(self._detached_done, event.tag.value))

    def _detached_done(self, tag: str, future: asyncio.Future[Any]) -> None:
        self._background.discard(future)
        if not future.cancelled() and (e := future.exception()) is not None:
            log.error("audit_record_failed", tag=tag, error=type(e).__name__)

    async def _record_durable(
        self, event: AuditEvent, record_future: Callable[[AuditEvent], asyncio.Future[Any]]
    ) -> bool:
        """:meth:`_record_quiet` for a sink that hands out the commit's future, awaited directly: no
        task, no shield and no timer per call. The future is this call's alone: cancelling the call
        cancels it, but the write is already queued and outlives the call (the writer skips a settled
        future); one shared timer fails it after ``_RECORD_TIMEOUT_S`` (:class:`LedgerDeadlines`)."""
        try:
            future = record_future(event)
        except Exception as e:  # noqa: BLE001  the caller gets a 503; log, never leak
            log.error("audit_record_failed", tag=event.tag.value, error=type(e).__name__)
            return False
        self._deadlines.watch(future)
        try:
            await future
        except asyncio.CancelledError:
            future.add_done_callback(_retrieve)
            raise
        except Exception as e:  # noqa: BLE001  the ledger failed or timed out: the caller gets a 503
            future.add_done_callback(_retrieve)
            log.error("audit_record_failed", tag=event.tag.value, error=type(e).__name__)
            return False
        return True

    async def _record_after_seal(self, seal: asyncio.Future[bool], call: Call) -> None:
        """The ledger event of a call cancelled while its content was being sealed: no answer went
        out (status 499); the content's digests, or that sealing failed, as the seal ended."""
        await seal
        call.status = 499
        call.reasons.append("cancelled")
        await self._record_quiet(call.event(EventTag.GATEWAY_REQUEST_FAILED, "cancelled"))

    async def _record_content(self, call: Call) -> bool:
        """Seal the call's prompt and response (``crypto.record_content``); False when that failed."""
        assert call.auth is not None and call.prompt_body is not None and self.c.content is not None
        prompt = call.prompt_body.decode("utf-8", "replace")
        response = call.response_body.decode("utf-8", "replace") if call.response_body is not None else None
        call_id = uuid.uuid4().hex
        try:
            attrs = await self.c.content.record(call.auth, call_id, prompt, response)
        except Exception as e:  # noqa: BLE001  recorded below; the response is withheld (fail closed)
            log.error("content_record_failed", error=type(e).__name__)
            call.reasons.append("content recording failed")
            call.content = {"content_recorded": False}
            return False
        call.content = {"call_id": call_id, **attrs}
        return True
