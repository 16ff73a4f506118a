"""A unary (not streamed) answer that drips: one byte a second (the read timeout between bytes ends
it), fast enough to beat the read timeout but never finishing (the whole-call deadline ends it), or
with the status line and headers themselves dripped. Each is a prompt 504 in OpenAI's error shape
and exactly one ledger event; the test's own waits are bounded by the client's timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from bastion.domain.events import EventTag
from bastion.domain.identity import Role

from .harness import CHAT_OK, BadUpstream, Live, gateway_settings, live_gateway, principal

#: (mode, seconds between bytes, what is dripped)
DRIPS = {"bodydrip1s": (1.0, "body"), "bodydripfast": (0.1, "body"), "headdrip": (0.1, "head")}


class DripUpstream(BadUpstream):
    """BadUpstream plus unary drips: a complete, valid answer sent one byte at a time."""

    async def _respond(self, mode: str, w: asyncio.StreamWriter) -> bool:
        if mode not in DRIPS:
            return await super()._respond(mode, w)
        gap, part = DRIPS[mode]
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(CHAT_OK)}\r\n\r\n"
        if part == "body":
            w.write(head.encode())
            dripped = CHAT_OK
        else:
            dripped = head.encode() + CHAT_OK
        try:
            for b in dripped:
                w.write(bytes([b]))
                await w.drain()
                await asyncio.sleep(gap)
        except ConnectionError:
            self.closed_early += 1
        return False


TIMEOUT_S, TOTAL_S = 0.5, 1.5


@pytest.fixture(scope="module")
def bad() -> Iterator[DripUpstream]:
    b = DripUpstream()
    with b:
        yield b


@pytest.fixture(scope="module")
def live(bad: DripUpstream) -> Iterator[Live]:
    # 0.1 s between bytes beats a 0.5 s read timeout; only the 1.5 s whole-call deadline ends those
    cfg = {"timeout_s": TIMEOUT_S, "total_timeout_s": TOTAL_S, "breaker_failures": 1000, "max_retries": 0}
    ups = {m: {"base_url": bad.base(m), **cfg} for m in [*DRIPS, "ok"]}
    s = gateway_settings(
        upstreams=ups,
        models={m: {"upstream": m} for m in ups},
        egress_allowlist=["127.0.0.1"],
        guards={"input": [], "output": []},
    )
    with live_gateway(s) as lv:
        lv.auth.add("k", principal("p", Role.ADMIN))
        yield lv


def post(lv: Live, model: str) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    r = httpx.post(
        lv.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer k"},
        timeout=httpx.Timeout(8.0),  # the test's bound: a hang fails with ReadTimeout, not forever
    )
    return r, time.monotonic() - t0


def test_the_same_answer_undripped_is_fine(live: Live) -> None:
    r, _ = post(live, "ok")
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "fine"


@pytest.mark.parametrize(
    ("model", "bound"), [("bodydrip1s", TIMEOUT_S), ("bodydripfast", TOTAL_S), ("headdrip", TOTAL_S)]
)
def test_unary_drip_is_a_prompt_504_with_one_ledger_event(
    live: Live, bad: DripUpstream, model: str, bound: float
) -> None:
    n, closed = len(live.audit.events), bad.closed_early
    r, took = post(live, model)
    assert r.status_code == 504, r.text
    err = r.json()["error"]
    assert err["code"] == "upstream_error" and err["type"] == "api_error"
    assert "fine" not in r.text  # no part of the dripped answer is relayed
    assert bound * 0.8 <= took < bound + 1.5, f"took {took:.2f} s"
    events = live.audit.wait_for(n + 1)
    time.sleep(0.2)  # a second event would arrive now
    assert len(live.audit.events) == n + 1, "exactly one ledger event per call"
    ev = events[-1]
    assert ev.tag is EventTag.GATEWAY_REQUEST_FAILED and ev.outcome == "error"
    assert ev.attributes["status"] == 504 and ev.attributes["model"] == model
    assert ev.attributes["stream"] is False
    # the gateway hung up on the dripping provider rather than keep the connection
    deadline = time.monotonic() + 4
    while bad.closed_early == closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bad.closed_early == closed + 1
