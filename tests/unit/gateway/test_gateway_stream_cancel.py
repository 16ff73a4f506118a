"""A streamed call ended early, driven through the ASGI app directly: by the caller disconnecting
(the call returns) or by its task being cancelled (a server giving up at shutdown: the cancellation
goes on). Either way the upstream request is cancelled and the ledger has the call's one event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
import pytest

from bastion.domain.events import EventTag

from .harness import BadUpstream, MemoryAudit, direct_gateway, gateway_settings, post_scope


@pytest.fixture(scope="module")
def bad() -> Iterator[BadUpstream]:
    with BadUpstream() as b:
        yield b


async def _call(
    bad: BadUpstream, *, disconnect: bool = False, fail_write: bool = False
) -> tuple[MemoryAudit, asyncio.Task[None], int]:
    """Start a slow streamed call; once its first events are sent, disconnect or cancel it (or, with
    ``fail_write``, let its next write fail)."""
    ups = {"slow": {"base_url": bad.base("slowstream"), "timeout_s": 5.0, "total_timeout_s": 30.0}}
    models = {"slow": {"upstream": "slow", "attributes": {"team": "shared"}}}
    settings = gateway_settings(upstreams=ups, models=models, egress_allowlist=["127.0.0.1"])
    app, audit = direct_gateway(settings)
    body = orjson.dumps({"model": "slow", "messages": [{"role": "user", "content": "x"}], "stream": True})
    first_events, gone = asyncio.Event(), asyncio.Event()
    bodies: list[bytes] = []
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not read:
            read = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(msg: MutableMapping[str, Any]) -> None:
        if msg["type"] == "http.response.body":
            if fail_write and bodies:
                raise OSError("the socket broke")
            bodies.append(msg["body"])
            first_events.set()

    scope = post_scope("/v1/chat/completions")
    before = bad.closed_early
    task = asyncio.ensure_future(app(scope, receive, send))
    await asyncio.wait_for(first_events.wait(), 5)
    if disconnect:
        gone.set()
    elif not fail_write:
        task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.done()
    assert len(audit.events) == 1, "the call's event is written before its task ends"
    assert not any(b"[DONE]" in b for b in bodies)
    return audit, task, before


def _wait_closed(bad: BadUpstream, before: int) -> None:
    deadline = time.monotonic() + 3
    while bad.closed_early == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert bad.closed_early == before + 1, "the upstream request was not cancelled"


def test_a_disconnect_ends_the_call_which_returns(bad: BadUpstream) -> None:
    audit, task, before = asyncio.run(_call(bad, disconnect=True))
    assert not task.cancelled() and task.exception() is None
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.outcome == "cancelled"
    assert "client disconnected" in event.attributes["reasons"]  # type: ignore[operator]
    _wait_closed(bad, before)


def test_a_cancelled_call_is_recorded_and_stays_cancelled(bad: BadUpstream) -> None:
    audit, task, before = asyncio.run(_call(bad, disconnect=False))
    assert task.cancelled()
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.outcome == "cancelled"
    assert event.attributes["status"] == 499
    _wait_closed(bad, before)


def test_a_relay_that_fails_unexpectedly_still_records_its_one_event(bad: BadUpstream) -> None:
    audit, task, before = asyncio.run(_call(bad, fail_write=True))
    assert not task.cancelled() and task.exception() is None
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.outcome == "error"
    assert "relay failed: OSError" in event.attributes["reasons"]  # type: ignore[operator]
    _wait_closed(bad, before)
