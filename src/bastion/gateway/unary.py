"""A unary (not streamed) call after its input guards: upstream → output guards → token charge →
ledger → the answer. Streamed calls are in :mod:`bastion.gateway.streaming`."""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

import orjson

from bastion.detectors.interface import Direction, ScanContext
from bastion.domain.events import EventTag
from bastion.errors import UpstreamError
from bastion.gateway import wire
from bastion.gateway.call import NOT_CONFIGURED, Call
from bastion.gateway.errors import ApiError, audit_unavailable
from bastion.gateway.intake import Send, send_json
from bastion.services.guard import GuardTarget

if TYPE_CHECKING:
    from bastion.gateway.pipeline import Gateway


async def unary_call(
    gw: Gateway,
    send: Send,
    call: Call,
    data: dict[str, Any],
    kind: str,
    target: GuardTarget,
    allow_lp: bool,
    context: ScanContext | None,
) -> None:
    upstream = gw.upstreams[call.upstream]
    payload = wire.encode(data)
    t_up = time.perf_counter()
    try:
        reply = await upstream.send(wire.KIND_PATH[kind], payload)
    except UpstreamError as e:
        gw.metrics.upstream_errors.labels(call.upstream, str(e.status)).inc()
        raise
    finally:
        call.upstream_us = int((time.perf_counter() - t_up) * 1_000_000)
    gw.metrics.upstream_latency.labels(call.upstream).observe(call.upstream_us / 1e6)
    call.upstream_status = reply.status
    call.steps.append("upstream")
    if reply.status != 200:
        raise gw.upstream_failure(call, reply)
    try:
        resp = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        resp = None
    if isinstance(resp, dict):
        # charged before the answer is judged: the provider produced (and billed) it, whatever the
        # gateway then does with it (refuse its shape, block or redact it)
        call.set_tokens(wire.usage_of(resp), 0 if kind == "embeddings" else len(reply.body))
        await gw.charge(call)
    if not isinstance(resp, dict) or not wire.answer_readable(resp, kind):
        # not an answer, or one shaped so that a guard could miss its text: refused, never relayed
        gw.metrics.upstream_errors.labels(call.upstream, "garbage").inc()
        raise ApiError(
            502,
            "the upstream sent an invalid response",
            "upstream_error",
            tag=EventTag.GATEWAY_REQUEST_FAILED,
            outcome="error",
        )
    changed = False
    if not allow_lp and kind != "embeddings":
        changed = wire.strip_logprobs(resp)
    if gw.guards.has_output and kind != "embeddings":
        if "model" in resp:  # the caller's name for it, before the scan: the provider's never leaves
            resp["model"] = call.model
        refs = wire.output_refs(resp, kind)
        result = await gw.scan(wire.texts(refs), Direction.OUTPUT, target, context)
        call.guard_output = gw._note(result, call, "output")
        if result.blocked:
            raise ApiError(
                400,
                "the response was blocked by an output guard",
                "content_filter",
                tag=EventTag.GATEWAY_REQUEST_BLOCKED,
                outcome="blocked",
            )
        if result.redacted is not None:
            wire.replace(refs, result.redacted)
            wire.strip_logprobs(resp)  # their tokens (and token ids) would spell what was redacted
        # what leaves is what was scanned, re-encoded: the provider's bytes could say otherwise (a
        # duplicate key: the scan read its last value, a client may take the first)
        changed = True
        call.steps.append("output_guard")
    else:
        call.guard_output = NOT_CONFIGURED
    if changed or resp.get("model") != call.model:
        resp["model"] = call.model
        out = orjson.dumps(resp)
    else:
        out = reply.body  # nothing to change: pass the provider's bytes through
    call.response_sha256 = hashlib.sha256(out).hexdigest()
    if call.prompt_body is not None:
        call.response_body = out
    call.status = 200
    if not await gw._finish(call, EventTag.GATEWAY_REQUEST_COMPLETED, "allowed"):
        raise audit_unavailable()
    await send_json(send, 200, out)
