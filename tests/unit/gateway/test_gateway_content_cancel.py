"""A call cancelled while its content is being sealed (a server giving up on its tasks at shutdown)
still gets its one ledger event (cancelled, 499), written once the seal has settled."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import pytest

from bastion.domain.events import EventTag, JSONValue
from bastion.domain.identity import Authentication

from .harness import MemoryAudit, direct_gateway, gateway_settings, post_scope


class SlowVault:
    """A content recorder that takes its time (and fails when told to)."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.started = asyncio.Event()

    async def record(
        self, auth: Authentication, call_id: str, prompt: str, response: str | None
    ) -> Mapping[str, JSONValue]:
        self.started.set()
        await asyncio.sleep(0.2)
        if self.fail:
            raise OSError("vault down")
        return {"content_prompt_sha256": "p" * 64, "content_response_sha256": "r" * 64}


@pytest.mark.parametrize("fail", [False, True])
def test_a_call_cancelled_while_sealing_still_gets_its_event(fail: bool) -> None:
    async def main() -> tuple[asyncio.Task[None], MemoryAudit]:
        vault = SlowVault(fail)
        app, audit = direct_gateway(gateway_settings(), content=vault)
        body = orjson.dumps({"model": "bastion-demo", "messages": [{"role": "user", "content": "x"}]})
        sent: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(msg: MutableMapping[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                sent.append(msg["status"])

        scope = post_scope("/v1/chat/completions")
        task = asyncio.ensure_future(app(scope, receive, send))
        await asyncio.wait_for(vault.started.wait(), 5)
        task.cancel()
        await asyncio.wait([task], timeout=5)
        assert task.cancelled() and sent == []  # no answer: the call was cancelled
        await app.gateway.drain()  # waits for the event written after the seal
        return task, audit

    _, audit = asyncio.run(main())
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.outcome == "cancelled"
    assert event.attributes["status"] == 499 and "cancelled" in event.attributes["reasons"]  # type: ignore[operator]
    if fail:
        assert event.attributes["content_recorded"] is False
    else:
        assert event.attributes["content_prompt_sha256"] == "p" * 64
