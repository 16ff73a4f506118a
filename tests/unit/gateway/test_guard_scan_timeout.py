"""A scan that runs in a worker thread (texts over 16 KiB) and takes longer than
``guards.scan_timeout_s`` blocks the call, input or output, unary or streamed: a stalled detector is
recorded as an error, never as passed, and never holds the call (or the event loop) hostage."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from bastion.config import GuardSettings
from bastion.detectors.interface import Detector, Direction, ScanContext
from bastion.domain.findings import Finding
from bastion.gateway.upstream import UpstreamReply
from bastion.registry import Registry
from bastion.services.guard import SCAN_TIMEOUT, GuardService

from .test_gateway_review3_support import (
    Answer,
    Gw,
    ScriptedUpstream,
    acall,
    attrs,
    body_of,
    build,
    chat_reply,
    run,
    run_session,
    settings,
    text_stream,
)

BIG = "lorem ipsum dolor " * 1_200  # 21 600 characters: scanned in a worker thread


class Stall:
    """Takes ``seconds`` over any text longer than 16 KiB (as a pathological regex might)."""

    name = "stall"
    directions = frozenset({Direction.INPUT, Direction.OUTPUT})

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stalled = threading.Event()

    def scan(self, text: str, context: ScanContext) -> Sequence[Finding]:
        if len(text) > 16_384:
            self.stalled.set()
            time.sleep(self.seconds)
        return ()


def guards(det: Detector, direction: str, timeout: float) -> tuple[dict[str, Any], GuardService]:
    """Guard settings running only ``det`` in ``direction`` (as ``gateway.guards``), and the service."""
    cfg: dict[str, Any] = {
        "input": [det.name] if direction == "input" else [],
        "output": [det.name] if direction == "output" else [],
        "scan_timeout_s": timeout,
    }
    reg: Registry[Detector] = Registry("detectors")
    reg.add(det.name, lambda: det)
    return cfg, GuardService(GuardSettings(**cfg), registry=reg)


@pytest.mark.parametrize(
    ("direction", "stream"),
    [("input", False), ("output", False), ("output", True)],
    ids=["input", "output-unary", "output-stream"],
)
def test_a_scan_past_its_timeout_blocks_and_is_recorded_as_an_error(direction: str, stream: bool) -> None:
    det = Stall(seconds=1.0)
    cfg, svc = guards(det, direction, timeout=0.2)
    prompt = BIG if direction == "input" else "hi"
    up = (
        ScriptedUpstream(events=text_stream([BIG]))
        if stream
        else ScriptedUpstream(reply=UpstreamReply(200, chat_reply(BIG)))
    )
    gw = build(settings(guards=cfg), up, guards=svc)

    async def timed(gw: Gw) -> tuple[Answer, float]:
        t0 = time.perf_counter()
        a = await acall(gw.app, body_of([{"role": "user", "content": prompt}], stream=stream))
        return a, time.perf_counter() - t0

    # (the loop's shutdown then waits for the stalled thread: the call itself does not)
    a, took = run_session(gw, timed)
    assert det.stalled.is_set()
    assert took < 0.9, f"the call waited {took:.2f} s for a scan with a 0.2 s timeout"
    if stream:
        assert not a.done()
        err = a.error_event() if a.status == 200 else a.json()
        assert err is not None and err["error"]["code"] == "content_filter"
        assert BIG[:100] not in a.text()
    else:
        assert a.status == 400 and a.json()["error"]["code"] == "content_filter"
    ev = gw.one_event()
    assert ev.outcome == "blocked"
    assert attrs(ev)["guards"][direction] == "error"
    assert f"{SCAN_TIMEOUT}:error:block" in attrs(ev)["reasons"]


def test_a_scan_within_its_timeout_passes() -> None:
    det = Stall(seconds=0.05)
    cfg, svc = guards(det, "output", timeout=5)
    gw = build(settings(guards=cfg), ScriptedUpstream(events=text_stream([BIG, " end"])), guards=svc)
    a = run(gw, body_of(stream=True))
    assert det.stalled.is_set()
    assert a.done() and a.text() == BIG + " end"
    assert attrs(gw.one_event())["guards"]["output"] == "passed"
