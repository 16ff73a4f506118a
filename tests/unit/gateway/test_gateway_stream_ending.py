"""How a streamed call ends, driven through the ASGI app directly.

* ``durable_audit: false``: the events that came with ``[DONE]`` and ``[DONE]`` itself go out in one
  write, then the call is recorded; a write that fails still leaves the call's one ledger event.
* ``durable_audit: true``: ``[DONE]`` goes out only after the event is recorded: in a write of its own
  when the events that came with it are the answer's first (they are not held back), else with them.
* A call cancelled while its end is being written (a server shutting down) is still recorded, as
  cancelled.
* The disconnect watcher starts only once the relay has to wait for the provider: an answer that had
  arrived whole is relayed without asking the server about the caller again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import orjson
import pytest

from bastion.domain.events import EventTag

from .harness import BadUpstream, MemoryAudit, direct_gateway, gateway_settings, post_scope

DONE = b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def bad() -> Iterator[BadUpstream]:
    with BadUpstream() as b:
        yield b


class _Run:
    """One streamed call: the body messages sent, how often the app asked for the next request
    message, and how many ledger events existed when ``[DONE]`` was sent."""

    def __init__(self) -> None:
        self.bodies: list[MutableMapping[str, Any]] = []
        self.receives = 0
        self.events_at_done: int | None = None
        self.stalled = asyncio.Event()


async def _call(
    bad: BadUpstream,
    mode: str,
    *,
    durable: bool,
    fail_final: type[Exception] | None = None,
    stall_final: bool = False,
) -> tuple[_Run, MemoryAudit]:
    ups = {"u": {"base_url": bad.base(mode), "timeout_s": 5.0, "total_timeout_s": 30.0}}
    models = {"m": {"upstream": "u", "attributes": {"team": "shared"}}}
    settings = gateway_settings(
        upstreams=ups, models=models, egress_allowlist=["127.0.0.1"], durable_audit=durable
    )
    app, audit = direct_gateway(settings)
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True})
    run = _Run()
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        run.receives += 1
        if run.receives == 1:
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the caller stays
        return {"type": "http.disconnect"}

    async def send(msg: MutableMapping[str, Any]) -> None:
        if msg["type"] != "http.response.body":
            return
        if DONE in msg["body"]:
            run.events_at_done = len(audit.events)
            if fail_final is not None:
                raise fail_final("the final write failed")
            if stall_final:  # a caller that reads nothing more: the write waits until cancelled
                run.stalled.set()
                await never.wait()
        run.bodies.append(msg)

    try:
        task = asyncio.ensure_future(app(post_scope("/v1/chat/completions"), receive, send))
        if stall_final:
            await asyncio.wait_for(run.stalled.wait(), 10)
            task.cancel()  # the server gives up on the call (shutdown)
            await asyncio.wait([task], timeout=10)
            assert task.cancelled(), "the cancellation did not go on"
        else:
            await asyncio.wait_for(task, 10)
    finally:
        await app.gateway.drain()  # a detached ledger write settles; upstream connections close
    return run, audit


def _events(run: _Run) -> list[bytes]:
    return [e for m in run.bodies for e in m["body"].split(b"\n\n") if e]


def test_without_durable_audit_the_end_goes_out_in_one_write(bad: BadUpstream) -> None:
    run, audit = asyncio.run(_call(bad, "sse", durable=False))
    [only] = run.bodies  # the events and [DONE] together
    assert only["body"].endswith(DONE) and only["more_body"] is False
    texts = [orjson.loads(e[6:])["choices"][0]["delta"]["content"] for e in _events(run)[:-1]]
    assert "".join(texts) == "Hello world"  # as the output guards' look-behind released it
    assert run.receives == 1, "an answer that arrived whole needs no disconnect watcher"
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED and event.attributes["status"] == 200


def test_with_durable_audit_done_waits_for_the_event(bad: BadUpstream) -> None:
    run, audit = asyncio.run(_call(bad, "sse", durable=True))
    assert [m["body"] for m in run.bodies][-1] == DONE
    assert len(run.bodies) == 2 and DONE not in run.bodies[0]["body"]
    assert run.events_at_done == 1, "[DONE] was sent before the call's event was recorded"
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED


@pytest.mark.parametrize("durable", [True, False])
def test_the_events_that_come_with_done_go_out_with_it(bad: BadUpstream, durable: bool) -> None:
    run, audit = asyncio.run(_call(bad, "sse2", durable=durable))
    *first, last = [m["body"] for m in run.bodies]
    assert first and all(DONE not in b for b in first)
    assert last.endswith(DONE) and last != DONE, "the last events did not go out with [DONE]"
    texts = [orjson.loads(e[6:])["choices"][0]["delta"]["content"] for e in _events(run)[:-1]]
    assert "".join(texts) == "Hello world!"
    assert run.events_at_done == (1 if durable else 0)
    assert run.receives == 2, "the relay waited for the provider without watching for a disconnect"
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED and event.attributes["status"] == 200


def test_a_relay_that_waits_for_the_provider_watches_for_a_disconnect(bad: BadUpstream) -> None:
    run, _ = asyncio.run(_call(bad, "truncate", durable=False))
    assert run.receives == 2, "the watcher did not start when the relay waited"


@pytest.mark.parametrize("error", [OSError, RuntimeError])
def test_a_failed_final_write_still_records_the_call(bad: BadUpstream, error: type[Exception]) -> None:
    run, audit = asyncio.run(_call(bad, "sse", durable=False, fail_final=error))
    assert run.bodies == []
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_COMPLETED and event.attributes["status"] == 200


def test_a_call_cancelled_while_its_end_is_written_is_still_recorded(bad: BadUpstream) -> None:
    run, audit = asyncio.run(_call(bad, "sse", durable=False, stall_final=True))
    assert run.bodies == []
    [event] = audit.events
    assert event.tag is EventTag.GATEWAY_REQUEST_FAILED and event.outcome == "cancelled"
    assert event.attributes["status"] == 499
