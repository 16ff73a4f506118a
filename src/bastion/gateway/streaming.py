"""Streamed calls (``stream: true``): server-sent events relayed chunk by chunk, guarded on the way.

* Output guards scan incrementally (:class:`~bastion.services.guard.StreamGuard`): a block ends the
  stream with an OpenAI-style error event and no ``[DONE]``. Streaming never turns a guard off.
* Usage is always asked of the upstream (``stream_options.include_usage``) so token limits are
  charged with real counts; the usage chunk is passed on only when the caller asked for it.
* ``[DONE]`` is sent only after the call's ledger event is durable (when ``durable_audit``).
* A caller that disconnects cancels the upstream request; the ledger event is still written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import structlog

from bastion.detectors.interface import ScanContext
from bastion.domain.events import EventTag
from bastion.errors import UpstreamError
from bastion.gateway import wire
from bastion.gateway.call import NOT_CONFIGURED, Call
from bastion.gateway.errors import ApiError, audit_unavailable
from bastion.gateway.pipeline import INLINE_SCAN_CHARS, Gateway, Receive, Scope, Send
from bastion.gateway.stream_chunks import (
    META,
    chunk_refs,
    count_texts,
    drop_repeated_text,
    event_readable,
    held_whole,
    put_text,
)
from bastion.gateway.upstream import UpstreamStatusError
from bastion.services.guard import SCAN_TIMEOUT, GuardTarget
from bastion.services.stream_guard import StreamGuard

log = structlog.get_logger("bastion.gateway")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class _Blocked(Exception):
    pass


async def stream_call(
    gw: Gateway,
    scope: Scope,
    receive: Receive,
    send: Send,
    call: Call,
    data: dict[str, Any],
    kind: str,
    target: GuardTarget,
    allow_lp: bool,
    context: ScanContext | None = None,
) -> None:
    """Open the upstream stream (errors before the first byte are ordinary error responses), then relay."""
    opts = data.get("stream_options")
    want_usage = isinstance(opts, dict) and bool(opts.get("include_usage"))
    data["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    upstream = gw.upstreams[call.upstream]
    payload = wire.encode(data)
    t_up = time.perf_counter()
    try:
        up = await upstream.open_stream(wire.KIND_PATH[kind], payload)
    except UpstreamStatusError as e:
        call.upstream_status = e.reply.status
        call.steps.append("upstream")
        raise gw.upstream_failure(call, e.reply) from e
    except UpstreamError as e:
        gw.metrics.upstream_errors.labels(call.upstream, str(e.status)).inc()
        raise
    call.upstream_status = 200
    call.steps.append("upstream")
    guard = gw.guards.stream(target, context) if gw.guards.has_output else None
    relay = _Relay(gw, send, call, kind, guard, want_usage, allow_lp, t_up)
    # The relay runs in this task (no task of its own, no shield): the watcher cancels it when the
    # caller disconnects, until the call completes. A cancellation from elsewhere (a server that
    # gives up on its tasks at shutdown) ends the relay the same way: its ledger event is still
    # written (outcome cancelled), then the cancellation goes on. The watcher (a task) starts only
    # once the relay first waits for the provider: an answer that had arrived whole needs none.
    watch = functools.partial(relay.watch, receive)
    on_first_wait = getattr(up, "on_first_wait", None)  # an HTTP upstream's; others start it now
    if on_first_wait is not None:
        on_first_wait(watch)
    else:
        watch()
    try:
        await relay.run(up)
    finally:
        if relay.watcher is not None:
            relay.watcher.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


class _Relay:
    def __init__(
        self,
        gw: Gateway,
        send: Send,
        call: Call,
        kind: str,
        guard: StreamGuard | None,
        want_usage: bool,
        allow_lp: bool,
        t_up: float,
    ) -> None:
        self.gw, self.send, self.call, self.kind = gw, send, call, kind
        self.guard, self.want_usage, self.allow_lp, self.t_up = guard, want_usage, allow_lp, t_up
        self.sha = hashlib.sha256()
        self.chars = 0
        self.usage: tuple[int, int] | None = None
        self.started = False
        self.disconnected = False
        #: the upstream part is over; a disconnect no longer cancels the relay
        self.completing = False
        #: the task the relay runs in (what a disconnect cancels)
        self.task = asyncio.current_task()
        #: the payloads sent, kept only for encrypted content recording
        self.sent: list[bytes] | None = [] if call.prompt_body is not None else None
        #: cancels the relay when the caller disconnects (started by :meth:`watch`)
        self.watcher: asyncio.Future[None] | None = None
        #: the events that came with ``[DONE]``, accounted for, not sent yet (:meth:`_complete`)
        self.tail = b""
        #: with output guards: the usage event, sent after the text still held back (at ``[DONE]``)
        self.usage_event: bytes | None = None
        #: with output guards: the provider's last event (its id, created… go on released text)
        self.last: dict[str, Any] = {}
        #: an event was refused unread (invalid, unreadable, the provider's error)
        self.refused = False
        #: log-probabilities (and token ids) are withheld without the permission, and also while the
        #: guard holds text back: they would carry the tokens of text it may still redact or block
        self.strip_lp = not allow_lp or (guard is not None and guard.holdback > 0)

    def watch(self, receive: Receive) -> None:
        """Start the disconnect watcher: from now on a caller that leaves cancels the relay."""
        if self.watcher is None:
            self.watcher = asyncio.ensure_future(_wait_disconnect(receive))
            self.watcher.add_done_callback(self.on_disconnect)

    def on_disconnect(self, watcher: asyncio.Future[None]) -> None:
        """The watcher's done callback: cancel the relay if the caller left before it completed."""
        if watcher.cancelled() or watcher.exception() is not None or self.completing:
            return
        assert self.task is not None
        self.disconnected = True
        self.task.cancel()

    def _events(self, out: list[bytes]) -> bytes:
        """The queued payloads as events, accounted for (digest, recorded content): the digest of
        the payloads one after the other, whatever the batches."""
        if len(out) == 1:
            self.sha.update(out[0])
            body = b"data: " + out[0] + b"\n\n"
        else:
            self.sha.update(b"".join(out))
            body = b"data: " + b"\n\ndata: ".join(out) + b"\n\n"
        if self.sent is not None:
            self.sent.extend(out)
        return body

    async def _send_events(self, out: list[bytes]) -> None:
        """Send the queued payloads as events in one write."""
        await self._write(self._events(out))

    async def _write(self, body: bytes, *, more: bool = True) -> None:
        """Send ``body`` (the response head first, once)."""
        if not self.started:
            self.started = True
            await self.send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await self.send({"type": "http.response.body", "body": body, "more_body": more})

    async def run(self, up: Any) -> None:
        call, gw = self.call, self.gw
        tag, outcome, error = EventTag.GATEWAY_REQUEST_COMPLETED, "allowed", None
        try:
            done = await self._relay(up)
            if not done:
                raise UpstreamError("the upstream stream ended before [DONE]", status=502)
        except _Blocked:
            tag, outcome = EventTag.GATEWAY_REQUEST_BLOCKED, "blocked"
            error = ApiError(400, "the response was blocked by an output guard", "content_filter")
        except UpstreamError as e:
            gw.metrics.upstream_errors.labels(call.upstream, str(e.status)).inc()
            tag, outcome = EventTag.GATEWAY_REQUEST_FAILED, "error"
            error = ApiError(e.status, e.message, "upstream_error")
            call.reasons.append(e.message)
        except asyncio.CancelledError:
            tag, outcome = EventTag.GATEWAY_REQUEST_FAILED, "cancelled"
            call.reasons.append("client disconnected" if self.disconnected else "cancelled")
            if self.disconnected and self.task is not None:
                self.task.uncancel()  # the relay's own cancellation, handled here
        except Exception as e:  # noqa: BLE001  anything else (a failed write, a bug): still one event
            log.error("stream_relay_failed", route=call.route, model=call.model, error=type(e).__name__)
            tag, outcome = EventTag.GATEWAY_REQUEST_FAILED, "error"
            error = ApiError(502, "the stream failed in the gateway", "upstream_error")
            call.reasons.append(f"relay failed: {type(e).__name__}")
        finally:
            self.completing = True  # from here on the watcher cancels nothing
            with contextlib.suppress(Exception):
                await up.aclose()
        await self._complete(tag, outcome, error)
        if outcome == "cancelled" and not self.disconnected:
            raise asyncio.CancelledError  # cancelled from elsewhere: recorded, and it goes on

    async def _complete(self, tag: EventTag, outcome: str, error: ApiError | None) -> None:
        call, gw = self.call, self.gw
        if self.guard is not None:
            result = self.guard.result()
            state = gw._note(result, call, "output")
            if not result.acted and (outcome == "cancelled" or self.refused):
                # cut short, or an event of the answer refused unread: the guard did not see it all
                state = "incomplete" if self.chars else "not_run"
            call.guard_output = state
            if outcome == "allowed":
                call.steps.append("output_guard")
        else:
            call.guard_output = NOT_CONFIGURED
        call.set_tokens(self.usage, self.chars)
        if self.started or (error is None and outcome != "cancelled"):
            # the digest of what the caller gets; none when an error answer comes instead
            call.response_sha256 = self.sha.hexdigest()
        if self.sent is not None:
            call.response_body = b"\n".join(self.sent)
        call.status = 200 if error is None and outcome != "cancelled" else (error.status if error else 499)
        tail, self.tail = self.tail, b""
        if error is None and outcome == "allowed" and not gw.answer_waits_for_ledger(call):
            # nothing the ledger does can change the answer: it ends in one write, then is recorded
            try:
                await self._write(tail + b"data: [DONE]\n\n", more=False)
            except OSError:
                pass
            except asyncio.CancelledError:  # a server giving up on its calls: the end never left
                call.status = 499
                call.reasons.append("cancelled")
                await _settle(gw, call, EventTag.GATEWAY_REQUEST_FAILED, "cancelled")
                raise
            except Exception as e:  # noqa: BLE001  a failed write is no reason to lose the event
                log.error("stream_relay_failed", route=call.route, model=call.model, error=type(e).__name__)
            await _settle(gw, call, tag, outcome)
            return
        # a disconnect cancels nothing any more (``completing``): it cannot skip the ledger event
        durable = await _settle(gw, call, tag, outcome)
        if outcome == "cancelled":
            return
        if not durable:  # the event says 503 (when one was written): so does the caller's answer
            error = audit_unavailable()
        try:
            if error is not None:
                if not self.started:
                    from bastion.gateway.pipeline import send_json

                    await send_json(self.send, error.status, error.body(), error.headers())
                    return
                await self.send(
                    {"type": "http.response.body", "body": tail + b"data: " + error.body() + b"\n\n"}
                )
            else:
                await self._write(tail + b"data: [DONE]\n\n", more=False)
        except OSError:
            pass

    async def _relay(self, up: Any) -> bool:
        """Relay events until ``[DONE]`` (True) or the end of the stream (False).

        What one upstream read completed goes out in one write; events queued before a failure
        (a block, an invalid event) are still sent, in order, as they were when sent one by one.
        """
        call = self.call
        next_batch = up.next_batch if hasattr(up, "next_batch") else _OneByOne(up.events()).next_batch
        chunk = self._chunk
        guarded = self.guard is not None
        while (batch := await next_batch()) is not None:
            if call.ttfb_us is None:
                call.ttfb_us = int((time.perf_counter() - self.t_up) * 1_000_000)
                self.gw.metrics.upstream_latency.labels(call.upstream).observe(call.ttfb_us / 1e6)
            out: list[bytes] = []  # the payloads to send
            try:
                for payload in batch:
                    if payload == b"[DONE]":
                        self._flush_guard(out)
                        if out:
                            if self.started or not self.gw.answer_waits_for_ledger(call):
                                # kept for the last write, with [DONE] (durable: once recorded)
                                self.tail = self._events(out)
                            else:  # the answer's first events: not held back for the ledger
                                await self._send_events(out)
                        return True
                    if guarded and len(payload) > INLINE_SCAN_CHARS:  # scanned off the event loop
                        await self._chunk_in_thread(payload, out)
                    else:
                        chunk(payload, out)
            except (_Blocked, UpstreamError):
                if out:
                    await self._send_events(out)
                raise
            if out:
                await self._send_events(out)
        return False

    async def _chunk_in_thread(self, payload: bytes, out: list[bytes]) -> None:
        """:meth:`_chunk` in a worker thread, for at most ``guards.scan_timeout_s``: a scan that takes
        longer blocks the stream (the thread runs on; nothing it does reaches the caller)."""
        assert self.guard is not None
        queued: list[bytes] = []
        work = self.gw.in_scan_thread(self._chunk, payload, queued)
        try:
            await asyncio.wait_for(work, self.gw.settings.guards.scan_timeout_s)
        except TimeoutError:
            log.warning("guard_scan_timeout", direction="output", chars=len(payload))
            self.guard.fail(SCAN_TIMEOUT)
            raise _Blocked from None
        out.extend(queued)

    def _refused(self, message: str) -> UpstreamError:
        """The error for an event refused unread: the output guard did not see what it carried."""
        self.refused = True
        return UpstreamError(message, status=502)

    def _chunk(self, payload: bytes, out: list[bytes]) -> None:
        """Check one upstream event, guard it, and queue what the caller gets in ``out``."""
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise self._refused("the upstream sent an invalid stream event") from None
        if not isinstance(obj, dict):
            raise self._refused("the upstream sent an invalid stream event")
        if "error" in obj:
            raise self._refused("the upstream reported an error mid-stream")
        usage = wire.usage_of(obj) if "usage" in obj else None
        if usage is not None:
            self.usage = usage
        choices = obj.get("choices")
        # vLLM's prompt_logprobs: at the top level of a chat chunk, with or without choices
        rewritten = self.strip_lp and wire.strip_prompt_logprobs(obj)
        if self.guard is not None:
            # text repeated where the guards do not read it (OpenRouter's reasoning_details) goes
            rewritten = (self.kind == "chat" and drop_repeated_text(choices)) or rewritten
            if not event_readable(obj, self.kind):
                raise self._refused(
                    "the upstream sent a stream event with text the output guards do not read"
                )
        if not choices:
            if usage is not None and not self.want_usage:
                return
            renamed = "model" in obj and obj["model"] != self.call.model
            if renamed:  # the provider's name stays hidden
                obj["model"] = self.call.model
            if renamed or rewritten or self.guard is not None:
                payload = orjson.dumps(obj)
            if usage is not None and self.guard is not None:
                self.usage_event = payload  # last: after the text the guard still holds
                return
            out.append(payload)
            return
        if not isinstance(choices, list):  # not something to guard, count or pass on as it is
            raise self._refused("the upstream sent an invalid stream event")
        model = self.call.model
        changed = rewritten or obj.get("model") != model
        if changed:
            obj["model"] = model
        if self.guard is not None:
            self.last = obj
            if self.strip_lp:
                changed = wire.strip_logprobs(obj) or changed
            changed = self._guard_chunk(obj, choices) or changed
            if (
                changed
                and (self.started or out)
                and obj.get("usage") is None
                and all(held_whole(ch, self.kind) for ch in choices)
            ):
                return  # its text is all held back and it says nothing else (the answer has begun)
        else:
            n, stripped = count_texts(choices, self.kind, self.strip_lp)
            self.chars += n
            changed = stripped or changed
        # guarded: what leaves is what was scanned, re-encoded (a duplicate key in the provider's
        # bytes: the guard read its last value, a client may take the first)
        out.append(orjson.dumps(obj) if changed or self.guard is not None else payload)

    def _guard_chunk(self, obj: dict[str, Any], choices: list[Any]) -> bool:
        """Feed each text of the chunk to the guard; rewrite what it holds back or redacts."""
        assert self.guard is not None
        changed = False
        for ch in choices:
            if not isinstance(ch, dict):
                continue
            idx = ch.get("index", 0)
            for holder, key, channel in chunk_refs(ch, self.kind, idx):
                text = holder[key]
                self.chars += len(text)
                step = self.guard.feed(channel, text)
                if step.blocked:
                    raise _Blocked
                if step.text != text:
                    holder[key] = step.text
                    changed = True
            if ch.get("finish_reason") is not None:
                changed = self._release_held(ch, idx) or changed
        return changed

    def _release_held(self, ch: dict[str, Any], idx: int) -> bool:
        """Before a choice finishes, release what the guard still holds for it."""
        assert self.guard is not None
        held = self.guard.finish(str(idx))
        if self.guard.blocked:
            raise _Blocked
        changed = False
        for channel, step in held.items():
            if step.text:
                put_text(ch, self.kind, channel, step.text)
                changed = True
        return changed

    def _flush_guard(self, out: list[bytes]) -> None:
        """At ``[DONE]``: the text the guard still holds (in events like the provider's), then the
        usage event."""
        if self.guard is None:
            return
        rest = self.guard.finish()
        if self.guard.blocked:
            raise _Blocked
        for channel, step in rest.items():
            if not step.text:
                continue
            choice: dict[str, Any] = {"index": int(channel.split(":")[0]), "finish_reason": None}
            put_text(choice, self.kind, channel, step.text)
            obj = {
                **{k: self.last[k] for k in META if k in self.last},
                "object": "chat.completion.chunk" if self.kind == "chat" else "text_completion",
                "model": self.call.model,
                "choices": [choice],
            }
            out.append(orjson.dumps(obj))
        if self.usage_event is not None:
            out.append(self.usage_event)


async def _settle(gw: Gateway, call: Call, tag: EventTag, outcome: str) -> bool:
    """Charge the call's tokens (best effort), then record its ledger event and metrics. A
    cancellation while charging does not skip the event: it is recorded, then the cancellation
    goes on (the event is handed to the ledger before ``_finish`` first waits)."""
    try:
        with contextlib.suppress(Exception):
            await gw.charge(call)
    except asyncio.CancelledError:
        await gw._finish(call, tag, outcome)
        raise
    return await gw._finish(call, tag, outcome)


class _OneByOne:
    """Batches of one, for upstreams that only yield events one at a time."""

    def __init__(self, events: AsyncIterator[bytes]) -> None:
        self._events = events

    async def next_batch(self) -> list[bytes] | None:
        try:
            return [await anext(self._events)]
        except StopAsyncIteration:
            return None
